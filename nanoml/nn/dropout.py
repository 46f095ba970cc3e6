"""Dropout layer."""

import numpy as np

from nanoml.nn.module import Module
from nanoml.ops.nn import dropout


class Dropout(Module):
    """Zero elements with probability `p` while training (scaling the rest); identity in eval.

    `rng` (an np.random.Generator) makes the masks reproducible.
    """

    def __init__(self, p=0.5, rng=None):
        super().__init__()
        self.p = p
        self.rng = np.random.default_rng() if rng is None else rng

    def forward(self, x):
        return dropout(x, self.p, self.training, self.rng)

    def extra_repr(self):
        return f"p={self.p}"
