"""Softmax cross-entropy kernels: one pass over each row, probabilities kept for backward."""

import numba
import numpy as np
from numba import prange, types
from numba.extending import overload

# fastmath off: the max-shift is what keeps exp() finite, and inf/NaN logits must show up
# in the loss rather than be optimised away. error_model="numpy": inf/NaN, not exceptions,
# as in the NumPy code around it.
_JIT = {"cache": True, "fastmath": False, "error_model": "numpy"}
# Rows are short (classes): the forward spreads rows over the threads only from this many
# logits on (a language model's batch: 3,200 rows of 105 characters); below, waking the
# threads would cost more.
PARALLEL_MIN = 1 << 16

# exp of a float32 at most 0 (a logit minus its row's maximum), as Cephes' expf computes it:
# x = n ln 2 + r with |r| <= ln 2 / 2, e^r by a degree-7 polynomial, 2^n from its bits. libm's
# expf is a call per logit that keeps the row loop scalar; this vectorises (about 1 ulp).
_LOG2E = np.float32(1.44269504088896341)
_LN2_HI = np.float32(0.693359375)
_LN2_LO = np.float32(-2.12194440e-4)
_HALF = np.float32(0.5)
_ONE = np.float32(1)
_EXP_FLOOR = np.float32(-87.33654)  # ln(2^-126): below it the result is 0 (no subnormals)
_EXP_BIAS = np.int32(127)  # float32's exponent bias and mantissa width
_MANTISSA_BITS = np.int32(23)


@numba.njit(cache=True, error_model="numpy")
def _exp_f32_nonpositive(x):
    vanishes = x < _EXP_FLOOR  # -inf (a masked logit) gives exactly 0, as NumPy's exp does
    x = _EXP_FLOOR if vanishes else x  # NaN passes both comparisons
    x = np.float32(0) if x > 0 else x
    n = np.floor(x * _LOG2E + _HALF)
    r = x - n * _LN2_HI - n * _LN2_LO
    p = np.float32(1.9875691500e-4) * r + np.float32(1.3981999507e-3)
    p = p * r + np.float32(8.3334519073e-3)
    p = p * r + np.float32(4.1665795894e-2)
    p = p * r + np.float32(1.6666665459e-1)
    p = p * r + np.float32(5.0000001201e-1)
    p = p * r * r + r + _ONE
    k = np.int32(n) if n == n else np.int32(0)  # NaN: p is NaN already
    # 2^k from its bits (k in [-126, 0]); a table lookup is a gather, which AVX2 lacks.
    scale = np.int32((k + _EXP_BIAS) << _MANTISSA_BITS).view(np.float32)
    return np.float32(0) if vanishes else p * scale


def _exp_shifted(x):
    """exp(x) for x <= 0 (or NaN): the polynomial in float32, NumPy's exp in float64."""
    return np.exp(x)


@overload(_exp_shifted)
def _exp_shifted_overload(x):
    if x == types.float32:
        return lambda x: _exp_f32_nonpositive(x)
    return lambda x: np.exp(x)


@numba.njit(**_JIT)
def _exp_minus(out, values, peak):
    """``out = exp(values - peak)`` for 1-D views, ``peak`` at least every value (one loop
    over two arrays, which LLVM vectorises)."""
    for j in range(out.size):
        out[j] = _exp_shifted(values[j] - peak)


@numba.njit(cache=True, error_model="numpy", fastmath={"reassoc"})
def _row_total(values):
    """Sum of a non-empty row in its own dtype, in any order (so that it vectorises)."""
    total = values[0]
    for j in range(1, values.size):
        total += values[j]
    return total


@numba.njit(**_JIT)
def _softmax_xent_row(logits, labels, probs_out, losses_out, i):
    c = logits.shape[1]
    peak = logits[i, 0]
    for j in range(1, c):
        if logits[i, j] > peak:
            peak = logits[i, j]
    row = probs_out[i]
    _exp_minus(row, logits[i], peak)
    total = _row_total(row)
    inv = _ONE / total
    for j in range(c):
        row[j] *= inv
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
