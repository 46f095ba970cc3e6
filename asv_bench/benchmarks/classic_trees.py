"""Trees, forests, nearest neighbours and the kernel SVM, nanoml beside scikit-learn.

Each class times the same work on the same seeded data: fitting, except for k-nearest
neighbours, whose work is the prediction. The *Fashion classes fit on the first 20,000
Fashion-MNIST training images (784 pixel features) with 1 and 2 threads allowed to both,
and track both test accuracies; they run only where the files are already on disk
(Debian's ``dataset-fashion-mnist``, or ``nanoml run cnn --dataset fashion-mnist``
fetched them): a benchmark does not download.
"""

import numpy as np

from .peers import _fashion_mnist, _FitPair, _sklearn


def _classes(n, d=20, informative=10, seed=0):
    """Two classes split by a noisy hyperplane in the first `informative` features."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    w = rng.standard_normal(informative)
    return X, (X[:, :informative] @ w + rng.standard_normal(n) > 0).astype(np.int64)


class DecisionTreeFit(_FitPair):
    params = [[1_000, 10_000, 100_000]]

    def setup(self, rows):
        from nanoml_classic.tree import DecisionTreeClassifier

        self.theirs = _sklearn("tree").DecisionTreeClassifier(random_state=0)
        self.X, self.y = _classes(rows)
        self.ours = DecisionTreeClassifier()
        self._warm()


class RandomForestFit(_FitPair):
    params = [[1_000, 20_000]]

    def setup(self, rows):
        from nanoml_classic.forest import RandomForestClassifier

        # both use the two cores: nanoml grows trees on a thread pool
        self.theirs = _sklearn("ensemble").RandomForestClassifier(random_state=0, n_jobs=2)
        self.X, self.y = _classes(rows)
        self.ours = RandomForestClassifier()
        self._warm()


class SVCFit(_FitPair):
    params = [[1_000, 5_000]]

    def setup(self, rows):
        from nanoml_classic.svm import SVC

        self.theirs = _sklearn("svm").SVC()
        self.X, self.y = _classes(rows)
        self.ours = SVC()
        self._warm()


class KNeighborsPredict:
    """10,000 queries against a training set of `rows` samples, k = 5."""

    params = [[10_000, 100_000]]
    param_names = ["rows"]

    def setup(self, rows):
        from nanoml_classic.neighbors import KNeighborsClassifier

        X, y = _classes(rows + 10_000)
        self.queries = X[rows:]
        self.theirs = _sklearn("neighbors").KNeighborsClassifier().fit(X[:rows], y[:rows])
        self.ours = KNeighborsClassifier().fit(X[:rows], y[:rows])
        self.ours.predict(self.queries[:10])  # compile (or load) the kernels untimed

    def time_nanoml(self, rows):
        self.ours.predict(self.queries)

    def time_sklearn(self, rows):
        self.theirs.predict(self.queries)


class _FashionPair:
    """Fit on 20,000 Fashion-MNIST images; `threads` is what both libraries may use."""

    params = [[1, 2]]
    param_names = ["threads"]
    timeout = 900
    rounds = 1
    repeat = 1
    number = 1

    def setup(self, threads):
        import numba

        self.data = _fashion_mnist()
        self.X = self.data.X_train[:20_000].astype(np.float64)
        self.y = self.data.y_train[:20_000]
        numba.set_num_threads(threads)
        self._models(threads)
        self.ours.fit(self.X[:200], self.y[:200])  # compile (or load) the kernels untimed

    def time_nanoml(self, threads):
        self.ours.fit(self.X, self.y)

    def time_sklearn(self, threads):
        from threadpoolctl import threadpool_limits

        with threadpool_limits(threads):
            self.theirs.fit(self.X, self.y)

    def track_accuracy_nanoml(self, threads):
        return self.ours.fit(self.X, self.y).score(self.data.X_test, self.data.y_test)

    def track_accuracy_sklearn(self, threads):
        return self.theirs.fit(self.X, self.y).score(self.data.X_test, self.data.y_test)

    track_accuracy_nanoml.unit = track_accuracy_sklearn.unit = "test accuracy"


class DecisionTreeFashion(_FashionPair):
    def _models(self, threads):
        from nanoml_classic.tree import DecisionTreeClassifier

        self.ours = DecisionTreeClassifier()
        self.theirs = _sklearn("tree").DecisionTreeClassifier(random_state=0)


class RandomForestFashion(_FashionPair):
    def _models(self, threads):
        from nanoml_classic.forest import RandomForestClassifier

        self.ours = RandomForestClassifier(n_estimators=50)
        self.theirs = _sklearn("ensemble").RandomForestClassifier(
            n_estimators=50, random_state=0, n_jobs=threads)
