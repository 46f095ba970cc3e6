"""Embedded datasets and the --set parser."""

import numpy as np
import pytest

from nanoml.data import load_dataset, train_test_split
from nanoml.errors import ParameterError
from nanoml.params import coerce, parse_literal


@pytest.mark.parametrize(
    "name, n, d, classes",
    [("iris", 150, 4, 3), ("digits", 1797, 64, 10), ("wine", 178, 13, 3),
     ("breast-cancer", 569, 30, 2), ("blobs", 1500, 2, 3), ("moons", 1000, 2, 2)],
)
def test_classification_datasets(name, n, d, classes):
    data = load_dataset(name, seed=0)
    assert data.X_train.shape[0] + data.X_test.shape[0] == n
    assert data.X_train.shape[1] == d and data.X_test.shape[1] == d
    assert len(np.unique(data.y_train)) == classes == len(np.unique(data.y_test))
    assert np.isfinite(data.X_train).all()
    again = load_dataset(name, seed=0)
    np.testing.assert_array_equal(data.X_train, again.X_train)


def test_digits_are_8x8_images_with_values_0_to_16():
    data = load_dataset("digits")
    assert data.image_shape == (1, 8, 8)
    assert data.X_train.min() == 0 and data.X_train.max() == 16


def test_quadratic_is_the_tutorials_parabola():
    data = load_dataset("quadratic", seed=1)
    residual = data.y_train - data.X_train[:, 0] ** 2
    assert abs(residual.std() - 0.1) < 0.02 and abs(residual.mean()) < 0.02


def test_split_is_stratified_and_disjoint():
    X = np.arange(100.0).reshape(-1, 1)
    y = np.repeat([0, 1], [80, 20])
    X_tr, y_tr, X_te, y_te = train_test_split(X, y, test_fraction=0.25, seed=4)
    assert np.sum(y_te == 1) == 5 and np.sum(y_te == 0) == 20
    assert not set(X_tr[:, 0]) & set(X_te[:, 0])
    assert len(X_tr) + len(X_te) == 100


def test_parse_and_coerce():
    assert parse_literal("3") == 3 and parse_literal("0.5") == 0.5
    assert parse_literal("True") is True and parse_literal("none") is None
    assert parse_literal("sgd") == "sgd"
    assert coerce("lr", "1", 0.1) == 1.0 and isinstance(coerce("lr", "1", 0.1), float)
    assert coerce("sizes", "64,32", (128,)) == (64, 32)
    with pytest.raises(ParameterError, match="expects true or false"):
        coerce("shuffle", "1", True)
