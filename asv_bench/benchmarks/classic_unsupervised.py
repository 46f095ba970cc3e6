"""Fit time of k-means, PCA and label spreading, nanoml beside scikit-learn on the same data."""

import numpy as np

from .peers import _sklearn


def _blobs(n, d=10, k=10):
    rng = np.random.default_rng(0)
    centres = rng.uniform(-10, 10, (k, d))
    return centres[rng.integers(k, size=n)] + rng.standard_normal((n, d))


def _images(n, d=784):
    """Fashion-MNIST-shaped pixels in [0, 1]: 10 prototypes varied along 20 directions."""
    rng = np.random.default_rng(0)
    prototypes = rng.random((10, d))
    varied = rng.standard_normal((n, 20)) @ (0.06 * rng.standard_normal((20, d)))
    noisy = 0.6 * prototypes[rng.integers(10, size=n)] + varied + 0.1 * rng.standard_normal((n, d))
    return np.clip(noisy, 0.0, 1.0)


class KMeansFit:
    """k=10 from the same starting centres, so both run the same number of iterations."""

    params = [["1000x10", "100000x10", "1000000x10", "60000x784"]]
    param_names = ["shape"]

    def setup(self, shape):
        from nanoml_classic.kmeans import KMeans

        n, d = (int(s) for s in shape.split("x"))
        self.X = _blobs(n, d) if d == 10 else _images(n, d)
        init = self.X[np.random.default_rng(1).choice(n, 10, replace=False)]
        self.theirs = _sklearn("cluster").KMeans(n_clusters=10, init=init, n_init=1)
        self.ours = KMeans(n_clusters=10, init=init)
        self.ours.fit(self.X[:200])  # compile (or load) the kernels untimed

    def time_nanoml(self, shape):
        self.ours.fit(self.X)

    def time_sklearn(self, shape):
        self.theirs.fit(self.X)


class PCAFit:
    params = [["1000x784", "60000x784", "1000000x10"]]
    param_names = ["shape"]

    def setup(self, shape):
        from nanoml_classic.pca import PCA

        n, d = (int(s) for s in shape.split("x"))
        self.X = _blobs(n, d) if d == 10 else _images(n, d)
        components = min(50, d - 1)
        self.theirs = _sklearn("decomposition").PCA(n_components=components)
        self.ours = PCA(n_components=components)

    def time_nanoml(self, shape):
        self.ours.fit(self.X)

    def time_sklearn(self, shape):
        self.theirs.fit(self.X)


class LabelSpreadingFit:
    """kNN graph, 10 % of the labels kept, the same masked labels for both."""

    params = [[1_000, 5_000]]
    param_names = ["rows"]

    def setup(self, rows):
        from nanoml_classic.semi_supervised import LabelSpreading

        rng = np.random.default_rng(0)
        y = rng.integers(10, size=rows)
        self.X = 2.0 * rng.standard_normal((10, 20))[y] + rng.standard_normal((rows, 20))
        self.y = np.where(rng.random(rows) < 0.1, y, -1)
        self.theirs = _sklearn("semi_supervised").LabelSpreading(kernel="knn", n_neighbors=7)
        self.ours = LabelSpreading(kernel="knn", n_neighbors=7, labelled_fraction=1.0)

    def time_nanoml(self, rows):
        self.ours.fit(self.X, self.y)

    def time_sklearn(self, rows):
        self.theirs.fit(self.X, self.y)
