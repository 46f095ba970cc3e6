"""Weight initialisers: float32 arrays drawn from a caller's np.random.Generator.

Layers take an optional `rng`, so a whole model is reproducible from one seed.
"""

import numpy as np


def _generator(rng):
    return np.random.default_rng() if rng is None else rng


def uniform(shape, bound, rng=None):
    """U(-bound, bound) samples as float32 (the base of the initialisers below)."""
    return _generator(rng).uniform(-bound, bound, size=shape).astype(np.float32)


def he_uniform(shape, fan_in, rng=None):
    """He (Kaiming) uniform: variance 2/fan_in, for layers followed by ReLU."""
    return uniform(shape, np.sqrt(6.0 / fan_in), rng)


def glorot_uniform(shape, fan_in, fan_out, rng=None):
    """Glorot (Xavier) uniform: variance 2/(fan_in + fan_out), for tanh/sigmoid layers."""
    return uniform(shape, np.sqrt(6.0 / (fan_in + fan_out)), rng)
