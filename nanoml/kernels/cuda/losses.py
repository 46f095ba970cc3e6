"""Softmax cross-entropy on the GPU: the twins of `nanoml.kernels.cpu.losses`.

The forward runs one thread per row, as rows are short (one entry per class) and a batch
has many of them; the backward runs one thread per entry.
"""

import math

from numba import cuda

from nanoml.kernels.cuda.elementwise import JIT
from nanoml.kernels.cuda.launch import launch_1d


@cuda.jit(**JIT)
def softmax_xent_forward_kernel(logits, labels, probs_out, losses_out):
    """Row i: softmax into `probs_out`, logsumexp(row) - row[label] into `losses_out`."""
    i = cuda.grid(1)
    if i < logits.shape[0]:
        c = logits.shape[1]
        peak = logits[i, 0]
        for j in range(1, c):
            if logits[i, j] > peak:
                peak = logits[i, j]
        # Summed in the logits' dtype (the CPU kernel sums in float64): over a row of class
        # scores the two differ by float32 rounding, and float64 is slow on most GPUs.
        total = logits.dtype.type(0)
        for j in range(c):
            e = math.exp(logits[i, j] - peak)
            probs_out[i, j] = e
            total += e
        inv = logits.dtype.type(1) / total
        for j in range(c):
            probs_out[i, j] *= inv
        losses_out[i] = math.log(total) + peak - logits[i, labels[i]]


def softmax_xent_forward(logits, labels, probs_out, losses_out):
    """Row-wise softmax of `logits` (N, C) into `probs_out` and -log p[label] into `losses_out`.

    Computed as logsumexp(row) - row[label] with the row maximum subtracted first, so large
    logits never overflow. `labels` are integers in [0, C), checked by the caller.
    """
    launch_1d(softmax_xent_forward_kernel, logits.shape[0], logits, labels, probs_out, losses_out)


@cuda.jit(**JIT)
def softmax_xent_backward_kernel(probs, labels, scale, grad_out):
    """Entry k of the flattened (N, C) gradient: scale * (probs - onehot(labels))."""
    k = cuda.grid(1)
    c = probs.shape[1]
    if k < probs.shape[0] * c:
        i = k // c
        j = k - i * c
        g = probs[i, j] * scale
        grad_out[i, j] = g - scale if j == labels[i] else g


def softmax_xent_backward(probs, labels, scale, grad_out):
    """d(scale * sum of losses)/d(logits) = scale * (probs - onehot(labels)), into `grad_out`."""
    launch_1d(softmax_xent_backward_kernel, probs.size, probs, labels, probs.dtype.type(scale),
              grad_out)


@cuda.jit(**JIT)
def distill_forward_kernel(logits, teacher, labels, temperature, alpha, grad_out, losses_out):
    """Row i: the distillation loss into `losses_out[i]`, its gradient into `grad_out[i]`."""
    i = cuda.grid(1)
    if i < logits.shape[0]:
        c = logits.shape[1]
        one = logits.dtype.type(1)
        inv_t = one / temperature
        soft = one - alpha
        peak = logits[i, 0]
        t_peak = teacher[i, 0]
        for j in range(1, c):
            peak = max(peak, logits[i, j])
            t_peak = max(t_peak, teacher[i, j])
        total = logits.dtype.type(0)
        total_s = logits.dtype.type(0)
        total_t = logits.dtype.type(0)
        for j in range(c):
            total += math.exp(logits[i, j] - peak)
            total_s += math.exp((logits[i, j] - peak) * inv_t)
            total_t += math.exp((teacher[i, j] - t_peak) * inv_t)
        lse = math.log(total) + peak
        lse_s = math.log(total_s) + peak * inv_t
        lse_t = math.log(total_t) + t_peak * inv_t
        kl = logits.dtype.type(0)
        for j in range(c):
            log_q_t = teacher[i, j] * inv_t - lse_t
            log_q_s = logits[i, j] * inv_t - lse_s
            q_t = math.exp(log_q_t)
            if q_t > 0:
                kl += q_t * (log_q_t - log_q_s)
            grad_out[i, j] = (alpha * math.exp(logits[i, j] - lse)
                              + soft * temperature * (math.exp(log_q_s) - q_t))
        grad_out[i, labels[i]] -= alpha
        losses_out[i] = alpha * (lse - logits[i, labels[i]]) + soft * temperature * temperature * kl


def distill_forward(logits, teacher, labels, temperature, alpha, grad_out, losses_out):
    """Hinton et al.'s distillation loss per row into `losses_out`, its gradient into `grad_out`.

    Row i: alpha * CE(softmax(z), label) + (1 - alpha) * T² * KL(softmax(t/T) || softmax(z/T))
    for student logits z and teacher t (logits, or log-probabilities with -inf for a zero
    probability); its gradient with respect to z is alpha * (softmax(z) - onehot(label)) +
    (1 - alpha) * T * (softmax(z/T) - softmax(t/T)), kept for the backward pass.
    """
    kind = logits.dtype.type
    launch_1d(distill_forward_kernel, logits.shape[0], logits, teacher, labels,
              kind(temperature), kind(alpha), grad_out, losses_out)
