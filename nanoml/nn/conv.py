"""Convolution and pooling layers over (N, C, H, W) images."""

import numpy as np

from nanoml.errors import InputError
from nanoml.nn import init
from nanoml.nn.module import Module, Parameter
from nanoml.ops.conv import as_pair, avg_pool2d, conv2d, max_pool2d
from nanoml.ops.conv_pool import conv2d_max_pool_relu


class Conv2d(Module):
    """2-D convolution, weight of shape (out_channels, in_channels, KH, KW) as in PyTorch.

    `kernel_size`, `stride` and `padding` are ints or (height, width) pairs. Weights are
    He-uniform over the fan-in in_channels*KH*KW (suits the ReLU that usually follows), bias
    zero, as `Linear` does.
    """

    def __init__(
        self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, rng=None
    ):
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise InputError(f"Conv2d {name} must be a positive int, got {value!r}")
        kh, kw = as_pair(kernel_size, "Conv2d kernel_size", 1)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = (kh, kw)
        self.stride = as_pair(stride, "Conv2d stride", 1)
        self.padding = as_pair(padding, "Conv2d padding", 0)
        fan_in = in_channels * kh * kw
        self.weight = Parameter(init.he_uniform((out_channels, in_channels, kh, kw), fan_in, rng))
        self.bias = Parameter(np.zeros(out_channels, dtype=np.float32)) if bias else None

    def forward(self, x):
        return conv2d(x, self.weight, self.bias, self.stride, self.padding)

    def extra_repr(self):
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}"
        )


class ConvPoolReLU2d(Conv2d):
    """Conv2d (stride 1, no padding), then max pooling over non-overlapping `pool` windows,
    then ReLU, fused into one op (`nanoml.ops.conv_pool`): the layer stack of a typical first
    convolution, faster than the three layers. Its parameters are Conv2d's.
    """

    def __init__(self, in_channels, out_channels, kernel_size, pool, bias=True, rng=None):
        super().__init__(in_channels, out_channels, kernel_size, bias=bias, rng=rng)
        self.pool = as_pair(pool, "ConvPoolReLU2d pool", 1)

    def forward(self, x):
        return conv2d_max_pool_relu(x, self.weight, self.bias, self.pool)

    def extra_repr(self):
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"pool={self.pool}, bias={self.bias is not None}"
        )


class MaxPool2d(Module):
    """Max over each window; `stride` defaults to `kernel_size` (non-overlapping windows)."""

    def __init__(self, kernel_size, stride=None):
        super().__init__()
        self.kernel_size = as_pair(kernel_size, "MaxPool2d kernel_size", 1)
        self.stride = self.kernel_size if stride is None else as_pair(stride, "MaxPool2d stride", 1)

    def forward(self, x):
        return max_pool2d(x, self.kernel_size, self.stride)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


class AvgPool2d(Module):
    """Mean over each window; `stride` defaults to `kernel_size` (non-overlapping windows)."""

    def __init__(self, kernel_size, stride=None):
        super().__init__()
        self.kernel_size = as_pair(kernel_size, "AvgPool2d kernel_size", 1)
        self.stride = self.kernel_size if stride is None else as_pair(stride, "AvgPool2d stride", 1)

    def forward(self, x):
        return avg_pool2d(x, self.kernel_size, self.stride)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}"
