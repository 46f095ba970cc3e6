"""Softmax cross-entropy kernels: one pass over each row, probabilities kept for backward."""

import numba
import numpy as np


# fastmath off: the max-shift is what keeps exp() finite, and inf/NaN logits must show up
# in the loss rather than be optimised away. error_model="numpy": inf/NaN, not exceptions,
# as in the NumPy code around it. Rows are short (classes), so no prange.
@numba.njit(cache=True, fastmath=False, parallel=False, error_model="numpy")
def softmax_xent_forward(logits, labels, probs_out, losses_out):
    """Row-wise softmax of `logits` (N, C) into `probs_out` and -log p[label] into `losses_out`.

    Computed as logsumexp(row) - row[label] with the row maximum subtracted first, so large
    logits never overflow. `labels` are integers in [0, C), checked by the caller.
    """
    n, c = logits.shape
    for i in range(n):
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


@numba.njit(cache=True, fastmath=False, parallel=False, error_model="numpy")
def softmax_xent_backward(probs, labels, scale, grad_out):
    """d(scale * sum of losses)/d(logits) = scale * (probs - onehot(labels)), into `grad_out`."""
    n, c = probs.shape
    for i in range(n):
        for j in range(c):
            grad_out[i, j] = probs[i, j] * scale
        grad_out[i, labels[i]] -= scale
