"""Embedding: a learned lookup table of vectors indexed by integer ids."""

import numpy as np

from nanoml.nn.module import Module, Parameter
from nanoml.ops.nn import embedding


class Embedding(Module):
    """Maps integer ids of any shape to vectors: output shape ids.shape + (embedding_dim,).

    Initialised N(0, 1) as in PyTorch.
    """

    def __init__(self, num_embeddings, embedding_dim, rng=None):
        super().__init__()
        rng = np.random.default_rng() if rng is None else rng
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        weight = rng.standard_normal((num_embeddings, embedding_dim), dtype=np.float32)
        self.weight = Parameter(weight)

    def forward(self, ids):
        return embedding(ids, self.weight)

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}"
