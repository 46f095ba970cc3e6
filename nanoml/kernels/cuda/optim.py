"""Fused optimizer updates on the GPU: one thread per element of a parameter's flat array.

The twins of `nanoml.kernels.cpu.optim`, same names and arguments. The host function turns
the hyperparameters into the per-step coefficients the CPU kernel computes (bias
corrections, decay factors), each converted to the parameter's dtype so that float32
parameters get float32 arithmetic, and launches one kernel over every element.
"""

import math

import numpy as np
from numba import cuda

from nanoml.kernels.cuda.elementwise import JIT
from nanoml.kernels.cuda.launch import launch_1d


@cuda.jit(**JIT)
def sgd_update_kernel(param, grad, momentum_buf, lr, momentum, weight_decay, use_momentum,
                      nesterov):
    """One SGD step of element i; `momentum_buf` is only touched when `use_momentum`."""
    i = cuda.grid(1)
    if i < param.shape[0]:
        d = grad[i] + weight_decay * param[i]
        if use_momentum:
            buf = momentum * momentum_buf[i] + d
            momentum_buf[i] = buf
            d = d + momentum * buf if nesterov else buf
        param[i] -= lr * d


def sgd_update(param, grad, momentum_buf, lr, momentum, weight_decay, nesterov):
    """SGD with optional L2 weight decay, momentum and Nesterov momentum (PyTorch's rule).

    With momentum == 0, `momentum_buf` is not touched (it may be empty).
    """
    real = np.dtype(param.dtype).type
    launch_1d(
        sgd_update_kernel, param.shape[0],
        param, grad, momentum_buf, real(lr), real(momentum), real(weight_decay),
        momentum != 0, bool(nesterov),
    )


@cuda.jit(**JIT)
def adam_update_kernel(param, grad, exp_avg, exp_avg_sq, shrink, l2, beta1, one_minus_beta1,
                       beta2, one_minus_beta2, step_size, inv_sqrt_bc2, eps):
    """One Adam/AdamW step of element i from coefficients precomputed on the host."""
    i = cuda.grid(1)
    if i < param.shape[0]:
        p = param[i] * shrink
        g = grad[i] + l2 * p
        m = beta1 * exp_avg[i] + one_minus_beta1 * g
        v = beta2 * exp_avg_sq[i] + one_minus_beta2 * g * g
        exp_avg[i] = m
        exp_avg_sq[i] = v
        param[i] = p - step_size * m / (math.sqrt(v) * inv_sqrt_bc2 + eps)


def adam_update(
    param, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, weight_decay, decoupled, step
):
    """One Adam step (decoupled=False: L2 decay added to the gradient) or AdamW (True).

    `step` counts from 1 and sets the bias corrections 1 - beta**step.
    """
    real = np.dtype(param.dtype).type
    # As in the CPU kernel: AdamW shrinks the parameter, Adam adds the decay to the
    # gradient, and the unused coefficient is an exact no-op (x * 1, g + 0 * p).
    shrink = real(1 - lr * weight_decay) if decoupled else real(1)
    l2 = real(0) if decoupled else real(weight_decay)
    b1, b2 = real(beta1), real(beta2)
    launch_1d(
        adam_update_kernel, param.shape[0],
        param, grad, exp_avg, exp_avg_sq, shrink, l2, b1, real(1) - b1, b2, real(1) - b2,
        real(lr / (1 - beta1**step)), real(1 / math.sqrt(1 - beta2**step)), real(eps),
    )


@cuda.jit(**JIT)
def rmsprop_update_kernel(param, grad, square_avg, momentum_buf, lr, alpha, one_minus_alpha,
                          eps, weight_decay, momentum, use_momentum):
    """One RMSprop step of element i; `momentum_buf` is only touched when `use_momentum`."""
    i = cuda.grid(1)
    if i < param.shape[0]:
        g = grad[i] + weight_decay * param[i]
        avg = alpha * square_avg[i] + one_minus_alpha * g * g
        square_avg[i] = avg
        step = g / (math.sqrt(avg) + eps)
        if use_momentum:
            step = momentum * momentum_buf[i] + step
            momentum_buf[i] = step
        param[i] -= lr * step


def rmsprop_update(param, grad, square_avg, momentum_buf, lr, alpha, eps, weight_decay, momentum):
    """RMSprop (PyTorch's rule, not centred): avg = alpha*avg + (1-alpha)*g², step g/(√avg+eps).

    With momentum > 0 the step goes through `momentum_buf`; otherwise that buffer is not
    touched (it may be empty).
    """
    real = np.dtype(param.dtype).type
    a = real(alpha)
    launch_1d(
        rmsprop_update_kernel, param.shape[0],
        param, grad, square_avg, momentum_buf, real(lr), a, real(1) - a, real(eps),
        real(weight_decay), real(momentum), momentum != 0,
    )
