"""The `sine` dataset: a seeded synthetic time series cut into forecasting windows."""

import numpy as np

from nanoml.data import Dataset

WINDOW = 20


def sine(seed=0, data_dir=None, n_points=2000, noise=0.1):
    """Noisy sum of two sines (periods 50 and 23 steps, random phases); each sample is a
    window of 20 steps and its target the value that follows. The first 75 % of the windows
    train and the rest test, in time order, so no test target lies inside a training window.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(n_points + WINDOW)
    phases = rng.uniform(0, 2 * np.pi, size=2)
    series = (np.sin(2 * np.pi * t / 50 + phases[0])
              + 0.5 * np.sin(2 * np.pi * t / 23 + phases[1])
              + noise * rng.standard_normal(t.shape))
    windows = np.lib.stride_tricks.sliding_window_view(series[:-1], WINDOW)
    X, y = np.ascontiguousarray(windows), series[WINDOW:]
    n_train = int(0.75 * n_points)
    return Dataset("sine", "regression", X[:n_train], y[:n_train], X[n_train:], y[n_train:],
                   sequence_shape=(WINDOW, 1))
