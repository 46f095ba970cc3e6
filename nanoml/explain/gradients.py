"""Gradient attributions through nanoml's autodiff: saliency, gradient x input, SmoothGrad and
integrated gradients.

As in Captum, each method is a class built from a forward function (a Tensor of rows ->
a Tensor of outputs, one column per output) with one ``attribute(inputs, target=...)``;
`target` picks the output explained per row (default: the largest, the predicted class).
Inputs and attributions are float rows (samples, features); `network_forward` makes a
deep learner's forward function over rows in the units of its training data.
"""

import contextlib

import numpy as np

from nanoml.errors import InputError
from nanoml.tensor import Tensor, no_grad
from nanoml.validation import check_number

# Rows (or path points) per forward and backward pass: bounds the memory of every method,
# whatever the number of integration steps or noise samples.
BATCH = 256


def network_forward(model):
    """A fitted deep learner's network as a forward function over rows in the units of its
    training data: scaled and shaped as the learner does it, then its outputs (logits, or
    the scaled prediction of a regressor)."""
    model.check_fitted()
    offset, scale, shape = model.x_offset_, model.x_scale_, model.input_shape_
    device = next(model.module_.parameters()).device
    model.module_.eval()

    def forward(x):
        scaled = (x - offset) / scale
        if shape is not None:
            scaled = scaled.reshape(x.shape[0], *shape)
        return model.module_(scaled.to(device)).cpu()

    return forward


@contextlib.contextmanager
def frozen(module):
    """The parameters of `module` require no gradient inside: input gradients then cost
    no weight gradients."""
    params = list(module.parameters())
    kept = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad = False
    try:
        yield module
    finally:
        for p, flag in zip(params, kept, strict=True):
            p.requires_grad = flag


def outputs(forward, inputs):
    """forward over `inputs` in batches, without a graph; -> float64 (rows, outputs)."""
    parts = []
    with no_grad():
        for start in range(0, len(inputs), BATCH):
            out = forward(Tensor(inputs[start:start + BATCH]))
            parts.append(np.asarray(out.data, np.float64).reshape(out.shape[0], -1))
    return np.concatenate(parts)


def targets(forward, inputs, target):
    """The output index explained for each row: `target` (an int or one per row), or each
    row's largest output."""
    n = len(inputs)
    if target is None:
        return np.argmax(outputs(forward, inputs), axis=1)
    target = np.broadcast_to(np.asarray(target), (n,))
    if not np.issubdtype(target.dtype, np.integer):
        raise InputError(f"target must be output indices (integers), got {target.dtype}",
                         argument="target")
    return target.astype(np.int64)


def gradient(forward, points, target):
    """d output[target] / d input at each row of `points` (one batch); -> (gradients,
    outputs[target]) as float64."""
    x = Tensor(points, requires_grad=True)
    out = forward(x)
    out = out.reshape(out.shape[0], -1)
    seed = np.zeros(out.shape, np.float32)
    rows = np.arange(out.shape[0])
    seed[rows, target] = 1.0
    out.backward(seed)
    return np.asarray(x.grad, np.float64), np.asarray(out.data, np.float64)[rows, target]


def _rows(inputs):
    inputs = np.asarray(inputs, np.float32)
    if inputs.ndim != 2 or inputs.shape[0] == 0:
        raise InputError(f"inputs must be a non-empty 2-D array of rows, got shape "
                         f"{inputs.shape}", argument="inputs")
    return inputs


def _batched_gradients(forward, inputs, target):
    grads = np.empty(inputs.shape)
    for start in range(0, len(inputs), BATCH):
        part = slice(start, start + BATCH)
        grads[part] = gradient(forward, inputs[part], target[part])[0]
    return grads


class Saliency:
    """The absolute gradient of the target output with respect to each input (Simonyan
    et al. 2014): which inputs a small change would move the output most."""

    def __init__(self, forward):
        self.forward = forward

    def attribute(self, inputs, target=None):
        inputs = _rows(inputs)
        target = targets(self.forward, inputs, target)
        return np.abs(_batched_gradients(self.forward, inputs, target))


class InputXGradient:
    """Gradient times input: the first-order contribution of each input to the output."""

    def __init__(self, forward):
        self.forward = forward

    def attribute(self, inputs, target=None):
        inputs = _rows(inputs)
        target = targets(self.forward, inputs, target)
        return inputs * _batched_gradients(self.forward, inputs, target)


class SmoothGrad:
    """The gradient averaged over `samples` noisy copies of each input (Smilkov et al.
    2017), the noise's standard deviation `noise` times the row's value range; it damps
    the gradient's pixel-to-pixel jitter."""

    def __init__(self, forward):
        self.forward = forward

    def attribute(self, inputs, target=None, samples=25, noise=0.15, seed=0):
        inputs = _rows(inputs)
        check_number("samples", samples, low=1, integer=True)
        check_number("noise", noise, low=0)
        target = targets(self.forward, inputs, target)
        rng = np.random.default_rng(seed)
        sigma = noise * (inputs.max(axis=1) - inputs.min(axis=1))
        total = np.zeros(inputs.shape)
        for _ in range(samples):
            noisy = inputs + rng.standard_normal(inputs.shape) * sigma[:, None]
            total += _batched_gradients(self.forward, noisy.astype(np.float32), target)
        return total / samples


class IntegratedGradients:
    """Integrated gradients (Sundararajan et al. 2017): (x - baseline) times the gradient
    averaged along the straight path from the baseline to x.

    The path integral is a `steps`-point Gauss-Legendre rule. Path points of all rows are
    evaluated `BATCH` at a time and their gradients summed as they come, so memory does
    not grow with `steps`. Completeness: the attributions of a row sum to F(x) -
    F(baseline); ``return_convergence_delta=True`` also returns each row's shortfall.
    """

    def __init__(self, forward):
        self.forward = forward

    def attribute(self, inputs, target=None, baselines=None, steps=50,
                  return_convergence_delta=False):
        inputs = _rows(inputs)
        check_number("steps", steps, low=1, integer=True)
        base = np.zeros_like(inputs) if baselines is None else \
            np.broadcast_to(np.asarray(baselines, np.float32), inputs.shape)
        target = targets(self.forward, inputs, target)
        nodes, weights = np.polynomial.legendre.leggauss(steps)
        alphas, weights = (nodes + 1) / 2, weights / 2
        n = len(inputs)
        total = np.zeros(inputs.shape)
        # point p is row p // steps at step p % steps
        for start in range(0, n * steps, BATCH):
            p = np.arange(start, min(start + BATCH, n * steps))
            row, step = p // steps, p % steps
            alpha = alphas[step].astype(np.float32)[:, None]
            points = base[row] + alpha * (inputs[row] - base[row])
            weighted = weights[step, None] * gradient(self.forward, points, target[row])[0]
            first = np.flatnonzero(np.r_[True, row[1:] != row[:-1]])  # rows are runs
            total[row[first]] += np.add.reduceat(weighted, first, axis=0)
        attributions = (inputs - base) * total
        if not return_convergence_delta:
            return attributions
        rows = np.arange(n)
        change = (outputs(self.forward, inputs)[rows, target]
                  - outputs(self.forward, np.ascontiguousarray(base))[rows, target])
        return attributions, attributions.sum(axis=1) - change
