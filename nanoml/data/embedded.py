"""Datasets that ship inside nanoml or are generated, so they need no network.

digits, iris, wine and breast-cancer are the UCI data as bundled with scikit-learn (BSD
licence); quadratic, blobs, moons and sine are generated from the seed.
"""

import gzip
import importlib.resources

import numpy as np

from nanoml.data import Dataset, train_test_split
from nanoml.errors import DatasetUnavailableError
from nanoml.hookimpl import hookimpl


def _read_csv(filename, has_header=True):
    """A UCI csv as bundled by scikit-learn: optional header 'n,d,class names...', then rows
    of features with the integer label last."""
    raw = importlib.resources.files("nanoml.data").joinpath("files", filename).read_bytes()
    if filename.endswith(".gz"):
        raw = gzip.decompress(raw)
    lines = raw.decode().splitlines()
    header = lines.pop(0).split(",") if has_header else []
    table = np.loadtxt(lines, delimiter=",", dtype=np.float64, ndmin=2)
    if header and int(header[0]) != table.shape[0]:
        raise DatasetUnavailableError(
            f"embedded file {filename} is damaged ({table.shape[0]} rows, header says "
            f"{header[0]}): reinstall nanoml"
        )
    return table[:, :-1], table[:, -1].astype(np.int64), tuple(header[2:])


def _table(name, filename, seed, has_header=True, **shape):
    X, y, classes = _read_csv(filename, has_header)
    X_tr, y_tr, X_te, y_te = train_test_split(X, y, seed=seed)
    return Dataset(name, "classification", X_tr, y_tr, X_te, y_te, classes, **shape)


def digits(seed=0, data_dir=None):
    """8x8 grey images of handwritten digits, 1,797 of them, pixel values 0..16."""
    data = _table("digits", "digits.csv.gz", seed, has_header=False, image_shape=(1, 8, 8))
    data.class_names = tuple(str(i) for i in range(10))
    return data


def iris(seed=0, data_dir=None):
    return _table("iris", "iris.csv", seed)


def wine(seed=0, data_dir=None):
    return _table("wine", "wine_data.csv", seed)


def breast_cancer(seed=0, data_dir=None):
    return _table("breast-cancer", "breast_cancer.csv", seed)


def quadratic(seed=0, data_dir=None, n_samples=1000, noise=0.1):
    """The y = x² regression: x uniform on [0, 2], Gaussian noise of standard deviation 0.1."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 2.0, size=(n_samples, 1))
    y = x[:, 0] ** 2 + noise * rng.standard_normal(n_samples)
    X_tr, y_tr, X_te, y_te = train_test_split(x, y, seed=seed, stratify=False)
    return Dataset("quadratic", "regression", X_tr, y_tr, X_te, y_te)


def blobs(seed=0, data_dir=None, n_samples=1500, n_features=2, centers=3, spread=1.0):
    """Isotropic Gaussian clusters with centres drawn uniformly in [-10, 10]^d."""
    rng = np.random.default_rng(seed)
    middles = rng.uniform(-10.0, 10.0, size=(centers, n_features))
    y = np.arange(n_samples) % centers
    X = middles[y] + spread * rng.standard_normal((n_samples, n_features))
    X_tr, y_tr, X_te, y_te = train_test_split(X, y, seed=seed)
    return Dataset("blobs", "classification", X_tr, y_tr, X_te, y_te)


def moons(seed=0, data_dir=None, n_samples=1000, noise=0.1):
    """Two interleaving half circles: a small non-linear classification problem."""
    rng = np.random.default_rng(seed)
    n_out = n_samples // 2
    t_out = np.linspace(0, np.pi, n_out)
    t_in = np.linspace(0, np.pi, n_samples - n_out)
    X = np.concatenate(
        [
            np.stack([np.cos(t_out), np.sin(t_out)], axis=1),
            np.stack([1 - np.cos(t_in), 0.5 - np.sin(t_in)], axis=1),
        ]
    )
    y = np.concatenate([np.zeros(n_out, np.int64), np.ones(n_samples - n_out, np.int64)])
    X = X + noise * rng.standard_normal(X.shape)
    X_tr, y_tr, X_te, y_te = train_test_split(X, y, seed=seed)
    return Dataset("moons", "classification", X_tr, y_tr, X_te, y_te)


@hookimpl
def register_datasets(register):
    register("quadratic", quadratic, "y = x² + noise, 1,000 points (the tutorial's regression)")
    register("iris", iris, "Fisher's iris: 150 flowers, 4 features, 3 species")
    register("digits", digits, "UCI handwritten digits: 1,797 8x8 images, 10 classes")
    register("wine", wine, "UCI wine: 178 samples, 13 chemical features, 3 cultivars")
    register(
        "breast-cancer", breast_cancer, "UCI breast cancer: 569 samples, 30 features, 2 classes"
    )
    register("blobs", blobs, "three Gaussian blobs in 2-D, 1,500 points")
    register("moons", moons, "two interleaving half circles, 1,000 points")
