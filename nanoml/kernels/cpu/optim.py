"""Fused optimizer updates: one pass over a parameter's flat array per step.

Each kernel reads the gradient and the caller-owned state buffers once and writes the
parameter and state in place, where a NumPy version would make several temporaries.
Scalars are converted to the parameter's dtype first: float32 parameters then get float32
arithmetic (as in PyTorch) and the loops vectorise at full SIMD width; a Python float would
otherwise turn every operation into float64.

The updates are memory-bound (Adam reads four arrays and writes three). From
`PARALLEL_MIN` values on, a parameter is updated in blocks on every thread, where one core's
memory bandwidth would otherwise bound the step; below that, waking the threads costs
more than the pass. Each value is computed the same way on either route.
"""

import numba
import numpy as np
from numba import prange

from nanoml.kernels.cpu.elementwise import PARALLEL_MIN

_BLOCK = 1 << 14

# fastmath off: the updates have no reductions to reassociate, the loops vectorise without
# it, and approximate sqrt/division would drift from the reference optimizers.
# error_model="numpy": division gives inf/NaN as in NumPy instead of a zero check per
# element, which would stop the loops from vectorising.


@numba.njit(cache=True, fastmath=False, parallel=False, error_model="numpy")
def _sgd(param, grad, momentum_buf, lr, momentum, weight_decay, nesterov):
    """SGD with optional L2 weight decay, momentum and Nesterov momentum (PyTorch's rule).

    d = grad + weight_decay * param; buf = momentum * buf + d; the step is buf, or
    d + momentum * buf with Nesterov. With momentum == 0, `momentum_buf` is not touched
    (it may be empty).
    """
    real = param.dtype.type
    lr_, mu, wd = real(lr), real(momentum), real(weight_decay)
    if momentum == 0:
        for i in range(param.shape[0]):
            param[i] -= lr_ * (grad[i] + wd * param[i])
    elif nesterov:
        for i in range(param.shape[0]):
            d = grad[i] + wd * param[i]
            buf = mu * momentum_buf[i] + d
            momentum_buf[i] = buf
            param[i] -= lr_ * (d + mu * buf)
    else:
        for i in range(param.shape[0]):
            buf = mu * momentum_buf[i] + grad[i] + wd * param[i]
            momentum_buf[i] = buf
            param[i] -= lr_ * buf


@numba.njit(cache=True, fastmath=False, parallel=False, error_model="numpy")
def _adam(
    param, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, weight_decay, decoupled, step
):
    """One Adam step (decoupled=False: L2 decay added to the gradient) or AdamW (True).

    `step` counts from 1 and sets the bias corrections 1 - beta**step.
    """
    real = param.dtype.type
    one = real(1)
    b1, b2, eps_ = real(beta1), real(beta2), real(eps)
    step_size = real(lr / (1 - beta1**step))
    inv_sqrt_bc2 = real(1 / np.sqrt(1 - beta2**step))
    # Both variants in one branch-free loop: AdamW shrinks the parameter, Adam adds the
    # decay to the gradient; the unused coefficient is an exact no-op (x * 1, g + 0 * p).
    shrink = real(1 - lr * weight_decay) if decoupled else one
    l2 = real(0) if decoupled else real(weight_decay)
    for i in range(param.shape[0]):
        p = param[i] * shrink
        g = grad[i] + l2 * p
        m = b1 * exp_avg[i] + (one - b1) * g
        v = b2 * exp_avg_sq[i] + (one - b2) * g * g
        exp_avg[i] = m
        exp_avg_sq[i] = v
        param[i] = p - step_size * m / (np.sqrt(v) * inv_sqrt_bc2 + eps_)


@numba.njit(cache=True, fastmath=False, parallel=False, error_model="numpy")
def _rmsprop(param, grad, square_avg, momentum_buf, lr, alpha, eps, weight_decay, momentum):
    """RMSprop (PyTorch's rule, not centred): avg = alpha*avg + (1-alpha)*g², step g/(√avg+eps).

    With momentum > 0 the step goes through `momentum_buf`; otherwise that buffer is not
    touched (it may be empty).
    """
    real = param.dtype.type
    one = real(1)
    lr_, a, eps_, wd, mu = real(lr), real(alpha), real(eps), real(weight_decay), real(momentum)
    for i in range(param.shape[0]):
        g = grad[i] + wd * param[i]
        avg = a * square_avg[i] + (one - a) * g * g
        square_avg[i] = avg
        step = g / (np.sqrt(avg) + eps_)
        if momentum != 0:
            step = mu * momentum_buf[i] + step
            momentum_buf[i] = step
        param[i] -= lr_ * step


# The kernels: a small parameter on the calling thread, a large one in blocks on every
# thread. A state buffer that the update does not touch may be empty: its slices are too.


@numba.njit(cache=True)
def _block(k, n):
    """Bounds of the k-th block of n values."""
    return k * _BLOCK, min(n, k * _BLOCK + _BLOCK)


@numba.njit(cache=True, parallel=True)
def sgd_update(param, grad, momentum_buf, lr, momentum, weight_decay, nesterov):
    """`_sgd` over the whole of `param`."""
    n = param.shape[0]
    if n < PARALLEL_MIN:
        _sgd(param, grad, momentum_buf, lr, momentum, weight_decay, nesterov)
        return
    for k in prange((n + _BLOCK - 1) // _BLOCK):
        lo, hi = _block(k, n)
        _sgd(param[lo:hi], grad[lo:hi], momentum_buf[lo:hi], lr, momentum, weight_decay,
             nesterov)


@numba.njit(cache=True, parallel=True)
def adam_update(param, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, weight_decay,
                decoupled, step):
    """`_adam` over the whole of `param`."""
    n = param.shape[0]
    if n < PARALLEL_MIN:
        _adam(param, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, weight_decay,
              decoupled, step)
        return
    for k in prange((n + _BLOCK - 1) // _BLOCK):
        lo, hi = _block(k, n)
        _adam(param[lo:hi], grad[lo:hi], exp_avg[lo:hi], exp_avg_sq[lo:hi], lr, beta1, beta2,
              eps, weight_decay, decoupled, step)


@numba.njit(cache=True, parallel=True)
def rmsprop_update(param, grad, square_avg, momentum_buf, lr, alpha, eps, weight_decay,
                   momentum):
    """`_rmsprop` over the whole of `param`."""
    n = param.shape[0]
    if n < PARALLEL_MIN:
        _rmsprop(param, grad, square_avg, momentum_buf, lr, alpha, eps, weight_decay, momentum)
        return
    for k in prange((n + _BLOCK - 1) // _BLOCK):
        lo, hi = _block(k, n)
        _rmsprop(param[lo:hi], grad[lo:hi], square_avg[lo:hi], momentum_buf[lo:hi], lr, alpha,
                 eps, weight_decay, momentum)
