"""Activation layers: stateless wrappers around the elementwise and softmax ops."""

from nanoml.nn.module import Module
from nanoml.ops.elementwise import leaky_relu, relu, sigmoid, tanh
from nanoml.ops.reduce import softmax


class ReLU(Module):
    """max(x, 0) elementwise."""

    def forward(self, x):
        return relu(x)


class LeakyReLU(Module):
    """x where x > 0, else negative_slope * x."""

    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        return leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class Sigmoid(Module):
    """1 / (1 + exp(-x)) elementwise."""

    def forward(self, x):
        return sigmoid(x)


class Tanh(Module):
    """tanh(x) elementwise."""

    def forward(self, x):
        return tanh(x)


class Softmax(Module):
    """Softmax along `axis` (the last by default)."""

    def __init__(self, axis=-1):
        super().__init__()
        self.axis = axis

    def forward(self, x):
        return softmax(x, self.axis)
