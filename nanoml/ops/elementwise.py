"""Elementwise ops: broadcasting arithmetic, comparisons, unary math and activations.

On the CPU NumPy already vectorises these, so they stay NumPy: a kernel would only add
dispatch cost. Python scalars join arrays as NumPy "weak" scalars, so float32 stays float32;
arrays and other constants are cast to the tensor's dtype for the same reason. On the cuda
device each op is one launch of a `nanoml.kernels.cuda` elementwise kernel (see `_cuda_*`).
"""

import numpy as np
from scipy import special

from nanoml import cuda_arrays
from nanoml.ops.placement import host_only, on_cuda, same_device
from nanoml.tensor import Tensor, apply


def constant_like(value, like):
    """A non-Tensor operand as a constant Tensor of `like`'s dtype and device (no gradient
    flows to it)."""
    host = Tensor(value, dtype=like.data.dtype)
    if isinstance(like.data, np.ndarray):
        return host
    if host.data.ndim == 0:
        return Tensor(cuda_arrays.constant(host.data.item(), host.data.dtype))
    return Tensor(cuda_arrays.to_device(host.data))


def _operands(a, b):
    """Both operands as Tensors on one device; a constant takes the dtype and device of the
    Tensor beside it."""
    if not isinstance(a, Tensor):
        a = constant_like(a, b)
    if not isinstance(b, Tensor):
        b = constant_like(b, a)
    if type(a.data) is not type(b.data):
        same_device("an arithmetic op", a, b)
    return a, b


def _cuda_arith(name, a, b):
    """a <name> b (add, sub, mul, div) on the cuda device, with its backward."""
    ca = cuda_arrays
    x, y = a.data, b.data
    out = ca.binary(name, x, y)

    def backward(g):
        ga = gb = None
        if a.requires_grad:
            ga = ca.unbroadcast(
                ca.binary(name, g, y) if name in ("mul", "div") else g, x.shape
            )
        if b.requires_grad:
            if name == "add":
                gb = g
            elif name == "sub":
                gb = ca.scale(g, -1)
            elif name == "mul":
                gb = ca.binary("mul", g, x)
            else:
                gb = ca.scale(ca.binary("div", ca.binary("mul", g, out), y), -1)
            gb = ca.unbroadcast(gb, y.shape)
        return ga, gb

    return apply(out, (a, b), backward)


def _cuda_activation(name, x, backward_name):
    """An activation on the cuda device; its backward kernel takes the input (relu) or the
    output (tanh, sigmoid) and the output gradient; exp's gradient is g * exp(x)."""
    out = cuda_arrays.unary(name, x.data)
    saved = x.data if name == "relu" else out
    return apply(out, (x,), lambda g: (cuda_arrays.binary(backward_name, saved, g),))


def unbroadcast(grad, shape):
    """Sum `grad` over the axes that broadcasting stretched, giving an array of `shape`."""
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1
    )
    return grad.sum(axis=axes, keepdims=True).reshape(shape)


# -- arithmetic ----------------------------------------------------------------------------
def add(a, b):
    """a + b, broadcasting; each gradient is summed back to its operand's shape."""
    a, b = _operands(a, b)
    if on_cuda(a):
        return _cuda_arith("add", a, b)

    def backward(g):
        return unbroadcast(g, a.data.shape), unbroadcast(g, b.data.shape)

    return apply(a.data + b.data, (a, b), backward)


def sub(a, b):
    """a - b, broadcasting."""
    a, b = _operands(a, b)
    if on_cuda(a):
        return _cuda_arith("sub", a, b)

    def backward(g):
        return unbroadcast(g, a.data.shape), unbroadcast(-g, b.data.shape)

    return apply(a.data - b.data, (a, b), backward)


def rsub(a, b):
    """b - a (the reflected form of `sub`)."""
    return sub(b, a)


def mul(a, b):
    """a * b, broadcasting."""
    a, b = _operands(a, b)
    if on_cuda(a):
        return _cuda_arith("mul", a, b)

    def backward(g):
        ga = unbroadcast(g * b.data, a.data.shape) if a.requires_grad else None
        gb = unbroadcast(g * a.data, b.data.shape) if b.requires_grad else None
        return ga, gb

    return apply(a.data * b.data, (a, b), backward)


def div(a, b):
    """a / b, broadcasting."""
    a, b = _operands(a, b)
    if on_cuda(a):
        return _cuda_arith("div", a, b)
    out = a.data / b.data

    def backward(g):
        ga = unbroadcast(g / b.data, a.data.shape) if a.requires_grad else None
        gb = unbroadcast(-g * out / b.data, b.data.shape) if b.requires_grad else None
        return ga, gb

    return apply(out, (a, b), backward)


def rdiv(a, b):
    """b / a (the reflected form of `div`)."""
    return div(b, a)


def pow(a, b):
    """a ** b; a Python-number exponent takes the cheap path (no log, any sign of a)."""
    if isinstance(b, np.generic):
        b = b.item()  # a NumPy float64 scalar would promote float32 data
    if isinstance(a, Tensor) and on_cuda(a) and isinstance(b, (int, float)) and b == 2:
        return mul(a, a)
    if isinstance(b, (int, float)) and isinstance(a, Tensor):
        host_only(a, "pow")
        x = a.data

        def backward_scalar(g):
            return (g * (b * x ** (b - 1)),)

        return apply(x**b, (a,), backward_scalar)
    a, b = _operands(a, b)
    host_only(a, "pow")
    out = a.data**b.data

    def backward(g):
        ga = gb = None
        if a.requires_grad:
            ga = unbroadcast(g * b.data * a.data ** (b.data - 1), a.data.shape)
        if b.requires_grad:
            gb = unbroadcast(g * out * np.log(a.data), b.data.shape)
        return ga, gb

    return apply(out, (a, b), backward)


def rpow(a, b):
    """b ** a (the reflected form of `pow`)."""
    return pow(b, a) if isinstance(b, Tensor) else pow(constant_like(b, a), a)


def neg(a):
    """-a."""
    if on_cuda(a):
        return apply(cuda_arrays.scale(a.data, -1), (a,), lambda g: (cuda_arrays.scale(g, -1),))
    return apply(-a.data, (a,), lambda g: (-g,))


# -- comparisons: no gradient, boolean data ------------------------------------------------
def _compare(ufunc):
    def compare(a, b):
        host_only(a, ufunc.__name__)
        other = b.data if isinstance(b, Tensor) else b
        return apply(ufunc(a.data, other), (), None)

    compare.__name__ = ufunc.__name__
    compare.__doc__ = f"Elementwise {ufunc.__name__} as a boolean tensor (no gradient)."
    return compare


lt = _compare(np.less)
le = _compare(np.less_equal)
gt = _compare(np.greater)
ge = _compare(np.greater_equal)
eq = _compare(np.equal)
ne = _compare(np.not_equal)


# -- unary math ----------------------------------------------------------------------------
def exp(x):
    """e ** x."""
    if on_cuda(x):
        return _cuda_activation("exp", x, "mul")
    out = np.exp(x.data)
    return apply(out, (x,), lambda g: (g * out,))


def log(x):
    """Natural logarithm."""
    if on_cuda(x):
        return apply(cuda_arrays.unary("log", x.data), (x,),
                     lambda g: (cuda_arrays.binary("div", g, x.data),))
    return apply(np.log(x.data), (x,), lambda g: (g / x.data,))


def sqrt(x):
    """Square root."""
    if on_cuda(x):
        root = cuda_arrays.unary("sqrt", x.data)
        return apply(root, (x,),
                     lambda g: (cuda_arrays.binary("div", cuda_arrays.scale(g, 0.5), root),))
    out = np.sqrt(x.data)
    return apply(out, (x,), lambda g: (g * 0.5 / out,))


def abs(x):
    """|x|; the gradient at 0 is 0."""
    if on_cuda(x):
        return apply(cuda_arrays.unary("absolute", x.data), (x,), lambda g: (
            cuda_arrays.binary("mul", g, cuda_arrays.unary("sign", x.data)),))
    return apply(np.abs(x.data), (x,), lambda g: (g * np.sign(x.data),))


def clip(x, low=None, high=None):
    """Values limited to [low, high]; the gradient is zero where a bound was hit."""
    if on_cuda(x):
        return _cuda_clip(x, low, high)
    data = x.data

    def backward(g):
        inside = np.ones(data.shape, dtype=bool)
        if low is not None:
            inside &= data >= low
        if high is not None:
            inside &= data <= high
        return (g * inside,)

    return apply(np.clip(data, low, high), (x,), backward)


def _cuda_clip(x, low, high):
    ca = cuda_arrays
    data = x.data
    out = data
    if low is not None:
        out = ca.binary("maximum", out, ca.constant(float(low), data.dtype))
    if high is not None:
        out = ca.binary("minimum", out, ca.constant(float(high), data.dtype))
    if out is data:
        out = ca.copy(data)
    # The gradient passes where clipping changed nothing (x == out, NaN excluded), as the
    # CPU's low <= x <= high does.
    return apply(out, (x,), lambda g: (ca.binary("mul", g, ca.binary("equal", data, out)),))


# -- activations ---------------------------------------------------------------------------
def tanh(x):
    """Hyperbolic tangent."""
    if on_cuda(x):
        return _cuda_activation("tanh", x, "tanh_backward")
    out = np.tanh(x.data)
    return apply(out, (x,), lambda g: (g * (1 - out * out),))


def sigmoid(x):
    """1 / (1 + exp(-x)), computed without overflow for large |x|."""
    if on_cuda(x):
        return _cuda_activation("sigmoid", x, "sigmoid_backward")
    out = special.expit(x.data)
    return apply(out, (x,), lambda g: (g * out * (1 - out),))


def relu(x):
    """max(x, 0); the gradient at 0 is 0."""
    if on_cuda(x):
        return _cuda_activation("relu", x, "relu_backward")
    data = x.data
    return apply(np.maximum(data, 0), (x,), lambda g: (g * (data > 0),))


def leaky_relu(x, negative_slope=0.01):
    """x where x > 0, else negative_slope * x."""
    if on_cuda(x):
        slope = cuda_arrays.constant(float(negative_slope), x.data.dtype)
        return apply(cuda_arrays.binary("leaky_relu", x.data, slope), (x,), lambda g: (
            cuda_arrays.binary("mul", g, cuda_arrays.binary("leaky_relu_slope", x.data, slope)),))
    data = x.data
    positive = data > 0
    out = np.where(positive, data, data * negative_slope)
    return apply(out, (x,), lambda g: (np.where(positive, g, g * negative_slope),))
