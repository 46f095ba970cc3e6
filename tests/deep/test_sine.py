"""The `sine` forecasting dataset the deep plugin registers."""

import numpy as np

from nanoml.data import load_dataset


def test_windows_are_followed_by_their_target():
    data = load_dataset("sine", seed=3)
    assert data.task == "regression" and data.sequence_shape == (20, 1)
    assert data.X_train.shape == (1500, 20) and data.X_test.shape == (500, 20)
    X = np.concatenate([data.X_train, data.X_test])
    y = np.concatenate([data.y_train, data.y_test])
    # Each window is the previous one shifted by a step, with the previous target appended.
    np.testing.assert_array_equal(X[1:, :-1], X[:-1, 1:])
    np.testing.assert_array_equal(X[1:, -1], y[:-1])


def test_seeded():
    a, b, c = (load_dataset("sine", seed=s) for s in (0, 0, 1))
    np.testing.assert_array_equal(a.X_train, b.X_train)
    assert not np.allclose(a.X_train, c.X_train)
