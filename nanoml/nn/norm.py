"""Batch normalisation layers; running statistics are buffers, so state_dict saves them."""

import numpy as np

from nanoml.errors import InputError
from nanoml.nn.module import Module, Parameter
from nanoml.ops.nn import batch_norm


class _BatchNorm(Module):
    expected_ndim = ()

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.weight = Parameter(np.ones(num_features, dtype=np.float32)) if affine else None
        self.bias = Parameter(np.zeros(num_features, dtype=np.float32)) if affine else None
        self.register_buffer("running_mean", np.zeros(num_features, dtype=np.float32))
        self.register_buffer("running_var", np.ones(num_features, dtype=np.float32))

    def forward(self, x):
        if x.ndim not in self.expected_ndim:
            ndims = " or ".join(map(str, self.expected_ndim))
            raise InputError(
                f"{type(self).__name__} expects input with {ndims} dimensions, got shape {x.shape}"
            )
        return batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias, self.training,
            self.momentum, self.eps,
        )

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) or (N, C, L) input, per channel C."""

    expected_ndim = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, C, H, W) input, per channel C."""

    expected_ndim = (4,)
