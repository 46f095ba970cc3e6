"""PCA, logistic regression, k-nearest neighbours and k-means on Fashion-MNIST (784 pixel
features in [0, 1], float32 as nanoml's loader gives them), nanoml beside scikit-learn,
both allowed 1 and then 2 threads: numba's and BLAS's for nanoml; BLAS's, OpenMP's and
``n_jobs`` for scikit-learn.

Runs only where the files are already on disk (Debian's ``dataset-fashion-mnist``, or
``nanoml run cnn --dataset fashion-mnist`` fetched them): a benchmark does not download.
The synthetic benchmarks of the same learners are in classic_linear, classic_trees and
classic_unsupervised.
"""

import numpy as np

from .peers import _fashion_mnist, _numba_threads, _sklearn, _ThreadedPair


class _RealPair(_ThreadedPair):
    """setup loads the data and calls `_models(threads)` for `self.ours` and `self.theirs`;
    each timing runs `_work(model)` once under both libraries' thread limit."""

    params = [[1, 2]]
    param_names = ["threads"]
    timeout = 1800
    rounds = 1
    repeat = (1, 3, 60.0)
    number = 1

    def setup(self, threads):
        self.data = _fashion_mnist()
        self._models(threads)
        self._warm()  # compile (or load) the kernels untimed
        self.numba_threads = _numba_threads(threads)



class _Accuracy:
    """Test accuracy on the 10,000 test images (the first 2,000 for k-NN) of both models."""

    def track_accuracy_nanoml(self, threads):
        return self._accuracy(self.ours)

    def track_accuracy_sklearn(self, threads):
        return self._accuracy(self.theirs)

    track_accuracy_nanoml.unit = track_accuracy_sklearn.unit = "test accuracy"


class PCAFashion(_RealPair):
    """50 components of the 60,000 training images."""

    def _models(self, threads):
        from nanoml_classic.pca import PCA

        self.ours = PCA(n_components=50)
        self.theirs = _sklearn("decomposition").PCA(n_components=50)

    def _warm(self):
        self.ours.fit(self.data.X_train[:1000])

    def _work(self, model):
        model.fit(self.data.X_train)


class LogisticRegressionFashion(_Accuracy, _RealPair):
    """C=1, 100 L-BFGS iterations on the 60,000 training images."""

    def _models(self, threads):
        from nanoml_classic.logistic import LogisticRegression

        self.ours = LogisticRegression(C=1.0, max_iter=100)
        self.theirs = _sklearn("linear_model").LogisticRegression(C=1.0, max_iter=100)

    def _warm(self):
        self.ours.fit(self.data.X_train[:200], self.data.y_train[:200])

    def _work(self, model):
        model.fit(self.data.X_train, self.data.y_train)

    def _accuracy(self, model):
        self._work(model)
        return model.score(self.data.X_test, self.data.y_test)


class KNeighborsFashion(_Accuracy, _RealPair):
    """k=5: predict 2,000 test images against the first 20,000 training images."""

    def _models(self, threads):
        from nanoml_classic.neighbors import KNeighborsClassifier

        X, y = self.data.X_train[:20_000], self.data.y_train[:20_000]
        self.queries = self.data.X_test[:2_000]
        self.ours = KNeighborsClassifier(n_neighbors=5).fit(X, y)
        self.theirs = _sklearn("neighbors").KNeighborsClassifier(
            n_neighbors=5, n_jobs=threads).fit(X, y)

    def _warm(self):
        self.ours.predict(self.queries[:10])

    def _work(self, model):
        model.predict(self.queries)

    def _accuracy(self, model):
        return float(np.mean(model.predict(self.queries) == self.data.y_test[:2_000]))


class KMeansFashion(_RealPair):
    """k=10 on the 60,000 training images from the same starting centres, so both run the
    same iterations."""

    def _models(self, threads):
        from nanoml_classic.kmeans import KMeans

        X = self.data.X_train
        init = X[np.random.default_rng(1).choice(X.shape[0], 10, replace=False)]
        self.ours = KMeans(n_clusters=10, init=init)
        self.theirs = _sklearn("cluster").KMeans(n_clusters=10, init=init, n_init=1)

    def _warm(self):
        self.ours.fit(self.data.X_train[:200])

    def _work(self, model):
        model.fit(self.data.X_train)
