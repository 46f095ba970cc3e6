"""Histogram gradient boosting on Fashion-MNIST, nanoml beside scikit-learn's
HistGradientBoostingClassifier with the same settings (100 iterations, learning rate 0.1,
31 leaves, 20 samples a leaf, no L2, 255 bins, no early stopping), both allowed 1 and then
2 threads: numba's and BLAS's for nanoml, OpenMP's for scikit-learn.

Runs only where the files are already on disk (Debian's ``dataset-fashion-mnist``, or
``nanoml run cnn --dataset fashion-mnist`` fetched them): a benchmark does not download.
"""

import numpy as np

from .peers import _fashion_mnist, _numba_threads, _sklearn, _ThreadedPair

ITERATIONS = 100


class GradientBoostingFashion(_ThreadedPair):
    params = [[20_000, 60_000], [1, 2]]
    param_names = ["rows", "threads"]
    timeout = 1800
    rounds = 1
    repeat = 1
    number = 1

    def setup(self, rows, threads):
        from nanoml_classic.boosting import GradientBoostingClassifier

        self.data = _fashion_mnist()
        self.X = self.data.X_train[:rows].astype(np.float64)
        self.y = self.data.y_train[:rows]
        self.ours = GradientBoostingClassifier(max_iter=ITERATIONS, early_stopping=False)
        self.theirs = _sklearn("ensemble").HistGradientBoostingClassifier(
            max_iter=ITERATIONS, early_stopping=False, random_state=0)
        GradientBoostingClassifier(max_iter=2).fit(self.X[:500], self.y[:500])  # compile
        self.numba_threads = _numba_threads(threads)

    def track_accuracy_nanoml(self, rows, threads):
        return self.ours.fit(self.X, self.y).score(self.data.X_test, self.data.y_test)

    def track_accuracy_sklearn(self, rows, threads):
        return self.theirs.fit(self.X, self.y).score(self.data.X_test, self.data.y_test)

    track_accuracy_nanoml.unit = track_accuracy_sklearn.unit = "test accuracy"
