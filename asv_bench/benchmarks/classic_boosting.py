"""Histogram gradient boosting on Fashion-MNIST, nanoml beside scikit-learn's
HistGradientBoostingClassifier: 100 iterations, no early stopping, both on 2 threads.

Runs only where the files are already on disk (Debian's ``dataset-fashion-mnist``, or
``nanoml run cnn --dataset fashion-mnist`` fetched them): a benchmark does not download.
"""

import numpy as np

from .peers import _sklearn

ITERATIONS = 100


class GradientBoostingFashion:
    params = [[20_000, 60_000]]
    param_names = ["rows"]
    timeout = 1800
    rounds = 1
    repeat = 1
    number = 1

    def setup(self, rows):
        from nanoml_classic.boosting import GradientBoostingClassifier

        from nanoml.data import load_dataset
        from nanoml.data.mnist import local_files

        if local_files("fashion-mnist") is None:
            raise NotImplementedError("Fashion-MNIST is not on disk")
        self.data = load_dataset("fashion-mnist")
        self.X = self.data.X_train[:rows].astype(np.float64)
        self.y = self.data.y_train[:rows]
        self.ours = GradientBoostingClassifier(max_iter=ITERATIONS, early_stopping=False)
        self.theirs = _sklearn("ensemble").HistGradientBoostingClassifier(
            max_iter=ITERATIONS, early_stopping=False, random_state=0)
        GradientBoostingClassifier(max_iter=2).fit(self.X[:500], self.y[:500])  # compile

    def time_nanoml(self, rows):
        from threadpoolctl import threadpool_limits

        with threadpool_limits(2):
            self.ours.fit(self.X, self.y)

    def time_sklearn(self, rows):
        from threadpoolctl import threadpool_limits

        with threadpool_limits(2):
            self.theirs.fit(self.X, self.y)

    def track_accuracy_nanoml(self, rows):
        return self.ours.fit(self.X, self.y).score(self.data.X_test, self.data.y_test)

    def track_accuracy_sklearn(self, rows):
        return self.theirs.fit(self.X, self.y).score(self.data.X_test, self.data.y_test)

    track_accuracy_nanoml.unit = track_accuracy_sklearn.unit = "test accuracy"
