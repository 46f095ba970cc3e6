"""Softmax cross-entropy kernels: one pass over each row, probabilities kept for backward."""

import numba
import numpy as np
from numba import prange

# fastmath off: the max-shift is what keeps exp() finite, and inf/NaN logits must show up
# in the loss rather than be optimised away. error_model="numpy": inf/NaN, not exceptions,
# as in the NumPy code around it.
_JIT = {"cache": True, "fastmath": False, "error_model": "numpy"}
# Rows are short (classes): the forward spreads rows over the threads only from this many
# logits on (a language model's batch: 3,200 rows of 105 characters), where the scalar
# exp() of every logit costs milliseconds; below, waking the threads would cost more.
PARALLEL_MIN = 1 << 16


@numba.njit(**_JIT)
def _softmax_xent_row(logits, labels, probs_out, losses_out, i):
    c = logits.shape[1]
    peak = logits[i, 0]
    for j in range(1, c):
        if logits[i, j] > peak:
            peak = logits[i, j]
    total = 0.0
    for j in range(c):
        e = np.exp(logits[i, j] - peak)
        probs_out[i, j] = e
        total += e
    inv = 1.0 / total
    for j in range(c):
        probs_out[i, j] *= inv
    losses_out[i] = np.log(total) + peak - logits[i, labels[i]]


@numba.njit(parallel=True, **_JIT)
def softmax_xent_forward(logits, labels, probs_out, losses_out):
    """Row-wise softmax of `logits` (N, C) into `probs_out` and -log p[label] into `losses_out`.

    Computed as logsumexp(row) - row[label] with the row maximum subtracted first, so large
    logits never overflow. `labels` are integers in [0, C), checked by the caller. Each
    row is computed alike on any thread.
    """
    n, c = logits.shape
    if n * c < PARALLEL_MIN:
        for i in range(n):
            _softmax_xent_row(logits, labels, probs_out, losses_out, i)
    else:
        for i in prange(n):
            _softmax_xent_row(logits, labels, probs_out, losses_out, i)


@numba.njit(cache=True, fastmath=False, parallel=False, error_model="numpy")
def softmax_xent_backward(probs, labels, scale, grad_out):
    """d(scale * sum of losses)/d(logits) = scale * (probs - onehot(labels)), into `grad_out`."""
    n, c = probs.shape
    for i in range(n):
        for j in range(c):
            grad_out[i, j] = probs[i, j] * scale
        grad_out[i, labels[i]] -= scale


@numba.njit(cache=True, fastmath=False, parallel=False, error_model="numpy")
def distill_forward(logits, teacher, labels, temperature, alpha, grad_out, losses_out):
    """Hinton et al.'s distillation loss per row into `losses_out`, its gradient into `grad_out`.

    Row i: alpha * CE(softmax(z), label) + (1 - alpha) * T² * KL(softmax(t/T) || softmax(z/T))
    for student logits z and teacher t (logits, or log-probabilities with -inf for a zero
    probability); its gradient with respect to z is alpha * (softmax(z) - onehot(label)) +
    (1 - alpha) * T * (softmax(z/T) - softmax(t/T)), kept for the backward pass. Log-sum-exps
    are taken with the row maximum subtracted, so large logits never overflow.
    """
    n, c = logits.shape
    inv_t = 1.0 / temperature
    hard = alpha
    soft = 1.0 - alpha
    for i in range(n):
        peak = logits[i, 0]
        t_peak = teacher[i, 0]
        for j in range(1, c):
            peak = max(peak, logits[i, j])
            t_peak = max(t_peak, teacher[i, j])
        total = 0.0
        total_s = 0.0
        total_t = 0.0
        for j in range(c):
            total += np.exp(logits[i, j] - peak)
            total_s += np.exp((logits[i, j] - peak) * inv_t)
            total_t += np.exp((teacher[i, j] - t_peak) * inv_t)
        lse = np.log(total) + peak
        lse_s = np.log(total_s) + peak * inv_t
        lse_t = np.log(total_t) + t_peak * inv_t
        kl = 0.0
        for j in range(c):
            log_q_t = teacher[i, j] * inv_t - lse_t
            log_q_s = logits[i, j] * inv_t - lse_s
            q_t = np.exp(log_q_t)
            if q_t > 0.0:  # a zero teacher probability adds 0 * log 0 = 0
                kl += q_t * (log_q_t - log_q_s)
            grad_out[i, j] = (hard * np.exp(logits[i, j] - lse)
                              + soft * temperature * (np.exp(log_q_s) - q_t))
        grad_out[i, labels[i]] -= hard
        losses_out[i] = hard * (lse - logits[i, labels[i]]) + soft * temperature * temperature * kl
