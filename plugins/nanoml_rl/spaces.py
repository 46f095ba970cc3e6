"""Action and observation spaces, as Gymnasium describes them: shape, dtype and bounds."""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Discrete:
    """The integers 0 .. n-1 (one action, or one observation of a grid world)."""

    n: int
    shape = ()
    dtype = np.dtype(np.int64)

    def sample(self, rng, size):
        return rng.integers(0, self.n, size=size)

    def describe(self):
        return f"Discrete({self.n})"


@dataclasses.dataclass(frozen=True)
class Box:
    """Real vectors of `shape` between `low` and `high` (either may be infinite)."""

    low: np.ndarray
    high: np.ndarray
    dtype = np.dtype(np.float32)

    @property
    def shape(self):
        return self.low.shape

    def sample(self, rng, size):
        low = np.maximum(self.low, -1e6)  # unbounded axes draw from a wide, finite range
        high = np.minimum(self.high, 1e6)
        return rng.uniform(low, high, size=(size, *self.shape)).astype(self.dtype)

    def describe(self):
        bounds = lambda a: np.array2string(a, precision=3, separator=", ")  # noqa: E731
        return f"Box({bounds(self.low)}, {bounds(self.high)}, {self.shape})"


def box(low, high):
    """A float32 Box from sequences of bounds."""
    return Box(np.asarray(low, dtype=np.float32), np.asarray(high, dtype=np.float32))
