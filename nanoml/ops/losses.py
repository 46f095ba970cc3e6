"""Loss functions: each returns a one-element Tensor, the mean over the batch.

Targets may be arrays or Tensors; predictions are Tensors. Cross-entropy's forward and
backward are kernels of the backend's table (one pass per row), as is the distillation
loss's forward (which keeps each row's gradient); binary cross-entropy is one
fused elementwise primitive each way; the rest are compositions of ops. `nanoml.losses` is
the public name of this module.
"""

import numpy as np

from nanoml import backend
from nanoml.autograd import Tensor, apply
from nanoml.errors import InputError, ParameterError
from nanoml.ops.elementwise import constant_like, exp, relu


def _target(target, pred, name="target"):
    """`target` as a Tensor of `pred`'s dtype, shape and device (a constant unless it is a
    Tensor)."""
    if not isinstance(target, Tensor):
        target = constant_like(target, pred)
    backend.common(name, pred, target)
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


def _labels(labels, n, n_classes, xp):
    """Integer class labels as a C-contiguous int64 array of length n on `xp`'s device,
    each in [0, n_classes).

    Labels already on that device (int64, shape (n,)) are taken as they are when it is not
    the host: whoever put them there checked their range once (as
    `nanoml.validation.encode_labels` does for the deep learners before training), instead
    of once per batch.
    """
    if isinstance(labels, Tensor):
        labels = labels.data
    source = backend.of(labels)
    if source is xp and not xp.host:
        if labels.dtype != np.int64 or tuple(labels.shape) != (n,):
            raise InputError(f"labels on the device must be int64 of shape ({n},), got "
                             f"{labels.dtype} of shape {tuple(labels.shape)}")
        return labels
    labels = np.asarray(source.to_host(labels))
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
    return xp.from_host(np.ascontiguousarray(labels, dtype=np.int64))


def cross_entropy(logits, labels):
    """Softmax cross-entropy of (N, C) logits against integer labels, mean over N.

    Numerically stable for any logit size (log-sum-exp with the row maximum subtracted).
    """
    if logits.ndim != 2:
        raise InputError(f"cross_entropy expects logits of shape (N, C), got {logits.shape}")
    xp = backend.of(logits.data)
    data = xp.contiguous(logits.data)
    n, c = data.shape
    labels = _labels(labels, n, c, xp)
    probs = xp.empty_like(data)
    losses = xp.empty(n, data.dtype)
    xp.kernels.softmax_xent_forward(data, labels, probs, losses)

    def backward(g):
        grad = xp.empty_like(probs)
        scale, rest = xp.host_scale(g, n)
        xp.kernels.softmax_xent_backward(probs, labels, scale, grad)
        return (grad if rest is None else xp.mul(grad, rest),)

    # sum / n is np.mean's own arithmetic on the CPU, without its dispatch cost.
    return apply(xp.divide_by(xp.sum(losses), n), (logits,), backward)


def binary_cross_entropy(logits, target):
    """Binary cross-entropy of logits against targets in [0, 1], mean over all elements.

    Uses max(z, 0) - z*y + log(1 + exp(-|z|)), which never overflows; the gradient is
    (sigmoid(z) - y) / n.
    """
    target = _target(target, logits)
    xp = backend.of(logits.data)
    z, y = logits.data, target.data
    n = z.size

    def backward(g):
        scaled = xp.divide_by(g, n)
        gz = gy = None
        if logits.requires_grad:
            gz = xp.mul(xp.binary_cross_entropy_backward(z, y), scaled)
        if target.requires_grad:
            gy = xp.mul(xp.neg(z), scaled)
        return gz, gy

    return apply(xp.mean(xp.binary_cross_entropy(z, y)), (logits, target), backward)


def kl_divergence(mu, logvar):
    """KL(N(mu, exp(logvar)) || N(0, 1)): summed over the latent axes, mean over the batch.

    The VAE's regulariser: -1/2 * sum(1 + logvar - mu² - exp(logvar)) per sample.
    """
    per_element = (mu * mu + exp(logvar) - logvar - 1) * 0.5
    return per_element.sum() / mu.shape[0]


def hinge(scores, target):
    """Binary hinge loss mean(max(0, 1 - y * s)) with targets y in {-1, +1}."""
    backend.of(scores.data).require_numpy("hinge")
    target = _target(target, scores)
    if not np.all(np.abs(target.data) == 1):
        raise InputError("hinge targets must be -1 or +1")
    return relu(1 - target * scores).mean()


def _teacher(teacher, logits, xp):
    """Teacher outputs as a C-contiguous array of the logits' dtype, shape and device.

    Outputs already on a device that is not the host are taken as they are (checked once,
    before training, as labels are); on the host NaN and +inf are refused here.
    """
    if isinstance(teacher, Tensor):
        teacher = teacher.data
    source = backend.of(teacher)
    if source is xp and not xp.host:
        if tuple(teacher.shape) != logits.shape or teacher.dtype != logits.dtype:
            raise InputError(f"teacher outputs on the device must be {logits.dtype} of shape "
                             f"{logits.shape}, got {teacher.dtype} of shape {teacher.shape}")
        return teacher
    teacher = np.asarray(source.to_host(teacher))
    if teacher.shape != logits.shape:
        raise InputError(f"teacher outputs have shape {teacher.shape} but the logits have shape "
                         f"{logits.shape}")
    if np.isnan(teacher).any() or np.isposinf(teacher).any():
        raise InputError("teacher outputs must be logits or log-probabilities, without NaN "
                         "or +inf")
    return xp.from_host(np.ascontiguousarray(teacher, dtype=logits.dtype))


def distillation(logits, labels, teacher, temperature=4.0, alpha=0.1):
    """Knowledge-distillation loss of Hinton, Vinyals and Dean (2015), mean over the batch.

    alpha * CE(softmax(z), labels) + (1 - alpha) * T² * KL(softmax(t / T) || softmax(z / T))
    for (N, C) student logits z and teacher outputs t: a deep teacher's logits, or a
    classical one's log-probabilities (-inf where a probability is 0). The T² keeps the
    soft term's gradient the same size whatever the temperature T; `alpha` weighs the
    hard labels. The forward kernel keeps each row's gradient for the backward pass.
    """
    if logits.ndim != 2:
        raise InputError(f"distillation expects logits of shape (N, C), got {logits.shape}")
    if not temperature > 0:
        raise ParameterError(f"temperature must be > 0, got {temperature!r}",
                             argument="temperature")
    if not 0 <= alpha <= 1:
        raise ParameterError(f"alpha must be in [0, 1], got {alpha!r}", argument="alpha")
    xp = backend.of(logits.data)
    data = xp.contiguous(logits.data)
    n, c = data.shape
    labels = _labels(labels, n, c, xp)
    teacher = _teacher(teacher, logits, xp)
    row_grads = xp.empty_like(data)
    losses = xp.empty(n, data.dtype)
    xp.kernels.distill_forward(data, teacher, labels, float(temperature), float(alpha),
                               row_grads, losses)

    def backward(g):
        scale, rest = xp.host_scale(g, n)
        grad = xp.scale(row_grads, scale)
        return (grad if rest is None else xp.mul(grad, rest),)

    return apply(xp.divide_by(xp.sum(losses), n), (logits,), backward)
