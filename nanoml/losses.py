"""Loss functions: each returns a one-element Tensor, the mean over the batch.

Targets may be arrays or Tensors; predictions are Tensors. Cross-entropy's forward and
backward are Numba kernels (one pass per row); the rest are compositions of ops or short
fused NumPy expressions.
"""

import numpy as np
from scipy.special import expit

from nanoml import cuda_arrays
from nanoml.errors import InputError
from nanoml.kernels import cpu
from nanoml.ops.elementwise import constant_like, exp, relu
from nanoml.ops.placement import host_only, on_cuda, same_device
from nanoml.tensor import Tensor, apply


def _target(target, pred, name="target"):
    """`target` as a Tensor of `pred`'s dtype, shape and device (a constant unless it is a
    Tensor)."""
    if not isinstance(target, Tensor):
        target = constant_like(target, pred)
    same_device(name, pred, target)
    if target.shape != pred.shape:
        raise InputError(
            f"{name} has shape {target.shape} but the predictions have shape {pred.shape}"
        )
    return target


def mse(pred, target):
    """Mean squared error."""
    diff = pred - _target(target, pred)
    return (diff * diff).mean()


def mae(pred, target):
    """Mean absolute error."""
    return (pred - _target(target, pred)).abs().mean()


def _labels(labels, n, n_classes):
    """Integer class labels as a C-contiguous int64 array of length n, each in [0, n_classes).

    Labels already on the device (int64, shape (n,)) are taken as they are: whoever put
    them there checked their range once (as `nanoml.validation.encode_labels` does for the
    deep learners before training), instead of once per batch.
    """
    if isinstance(labels, Tensor):
        labels = labels.data
    if cuda_arrays.is_device_array(labels):
        if labels.dtype != np.int64 or tuple(labels.shape) != (n,):
            raise InputError(f"labels on the device must be int64 of shape ({n},), got "
                             f"{labels.dtype} of shape {tuple(labels.shape)}")
        return labels
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        if labels.dtype.kind == "f" and np.all(labels == np.round(labels)):
            labels = labels.astype(np.int64)
        else:
            raise InputError(f"labels must be integer class indices, got dtype {labels.dtype}")
    if labels.shape != (n,):
        raise InputError(f"labels must have shape ({n},) to match the logits, got {labels.shape}")
    if n and (labels.min() < 0 or labels.max() >= n_classes):
        raise InputError(
            f"labels must be in [0, {n_classes}), got values from {labels.min()} to "
            f"{labels.max()}"
        )
    return np.ascontiguousarray(labels, dtype=np.int64)


def cross_entropy(logits, labels):
    """Softmax cross-entropy of (N, C) logits against integer labels, mean over N.

    Numerically stable for any logit size (log-sum-exp with the row maximum subtracted).
    """
    if logits.ndim != 2:
        raise InputError(f"cross_entropy expects logits of shape (N, C), got {logits.shape}")
    if on_cuda(logits):
        return _cuda_cross_entropy(logits, labels)
    data = np.ascontiguousarray(logits.data)
    n, c = data.shape
    labels = _labels(labels, n, c)
    probs = np.empty_like(data)
    losses = np.empty(n, dtype=data.dtype)
    cpu.softmax_xent_forward(data, labels, probs, losses)

    def backward(g):
        grad = np.empty_like(probs)
        cpu.softmax_xent_backward(probs, labels, float(g) / n, grad)
        return (grad,)

    # sum / n is np.mean's own arithmetic, without its dispatch cost (a tenth of the op).
    return apply(np.asarray(losses.sum() / n), (logits,), backward)


def _cuda_cross_entropy(logits, labels):
    ca = cuda_arrays
    data = logits.data
    n, c = data.shape
    labels = _labels(labels, n, c)
    if not ca.is_device_array(labels):
        labels = ca.to_device(labels)
    probs, losses = ca.empty_like(data), ca.empty(n, data.dtype)
    ca.kernels().softmax_xent_forward(data, labels, probs, losses)

    def backward(g):
        grad = ca.empty_like(probs)
        ca.kernels().softmax_xent_backward(probs, labels, 1.0 / n, grad)
        return (ca.binary("mul", grad, g),)

    return apply(ca.scale(ca.reduce_sum(losses), 1.0 / n), (logits,), backward)


def binary_cross_entropy(logits, target):
    """Binary cross-entropy of logits against targets in [0, 1], mean over all elements.

    Uses max(z, 0) - z*y + log(1 + exp(-|z|)), which never overflows; the gradient is
    (sigmoid(z) - y) / n.
    """
    target = _target(target, logits)
    if on_cuda(logits):
        return _cuda_binary_cross_entropy(logits, target)
    z, y = logits.data, target.data
    loss = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
    n = z.size

    def backward(g):
        gz = (expit(z) - y) * (g / n) if logits.requires_grad else None
        gy = -z * (g / n) if target.requires_grad else None
        return gz, gy

    return apply(loss.mean(), (logits, target), backward)


def _cuda_binary_cross_entropy(logits, target):
    ca = cuda_arrays
    z, y = logits.data, target.data
    n = z.size
    loss = ca.scale(ca.reduce_sum(ca.binary("binary_cross_entropy", z, y)), 1.0 / n)

    def backward(g):
        scaled = ca.scale(g, 1.0 / n)
        gz = gy = None
        if logits.requires_grad:
            gz = ca.binary("mul", ca.binary("binary_cross_entropy_backward", z, y), scaled)
        if target.requires_grad:
            gy = ca.binary("mul", ca.scale(z, -1), scaled)
        return gz, gy

    return apply(loss, (logits, target), backward)


def kl_divergence(mu, logvar):
    """KL(N(mu, exp(logvar)) || N(0, 1)): summed over the latent axes, mean over the batch.

    The VAE's regulariser: -1/2 * sum(1 + logvar - mu² - exp(logvar)) per sample.
    """
    per_element = (mu * mu + exp(logvar) - logvar - 1) * 0.5
    return per_element.sum() / mu.shape[0]


def hinge(scores, target):
    """Binary hinge loss mean(max(0, 1 - y * s)) with targets y in {-1, +1}."""
    host_only(scores, "hinge")
    target = _target(target, scores)
    if not np.all(np.abs(target.data) == 1):
        raise InputError("hinge targets must be -1 or +1")
    return relu(1 - target * scores).mean()
