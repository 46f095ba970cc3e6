"""Recurrent layers on the GPU: the twins of `nanoml.kernels.cpu.recurrent`.

Same names, arguments, gate layouts and saved activations (PyTorch's equations; ``hs``/``cs``
(T+1, B, H) time-major with the initial state first). Each function is a short host-side
sequence of launches, as on the CPU: one GEMM projects the inputs of every step up front;
each step is one GEMM ``h @ w_hh.T`` and one fused gate kernel with a thread per (sample,
unit); backward keeps every step's gate gradients so that the weight gradients are one GEMM
each at the end. The GEMMs are the tiled kernel of `nanoml.kernels.cuda.matmul`.

Arrays may be device arrays or host arrays; with host arrays every launch copies its
arguments to the GPU and back, so device arrays are the way to run fast. As on the CPU, the
caller allocates the outputs, the saved activations and the gate gradients of the backward
functions; time-major copies of the inputs, their projections and the per-step products
are allocated here.
"""

import math

from numba import cuda

from nanoml.kernels.cuda.arrays import fill
from nanoml.kernels.cuda.elementwise import DEVICE, JIT, add, copy, sigmoid_scalar
from nanoml.kernels.cuda.launch import launch_1d
from nanoml.kernels.cuda.matmul import matmul, matmul_nt, matmul_tn
from nanoml.kernels.cuda.reduce import col_sum


@cuda.jit(**JIT)
def swap01_kernel(src, dst):
    """``dst[i, j] = src[j, i]`` for 3-D arrays: (B, T, I) to (T, B, I) and back."""
    k = cuda.grid(1)
    if k < dst.size:
        D0, D1, D2 = dst.shape
        c = k % D2
        j = (k // D2) % D1
        i = k // (D2 * D1)
        dst[i, j, c] = src[j, i, c]


def _time_major(x):
    """A (T, B, I) device copy of (B, T, I) `x`."""
    B, T, n_in = x.shape
    x_tm = cuda.device_array((T, B, n_in), x.dtype)
    launch_1d(swap01_kernel, x.size, x, x_tm)
    return x_tm


def _input_projection(x, w_ih, xw):
    """``xw[t, b] = w_ih @ x[b, t]`` for every step in one GEMM."""
    B, T, n_in = x.shape
    matmul_nt(_time_major(x).reshape(T * B, n_in), w_ih, xw.reshape(T * B, xw.shape[2]))


def _weight_grads(dgx, dgh, x, hs, w_ih, dx, dw_ih, dw_hh, db_ih, db_hh):
    """Gradients of the weights, biases and (unless ``dx`` is None) the input.

    ``dgx``/``dgh`` (T, B, G) are the gradients of the gate pre-activations on the input and
    hidden paths (the same array for RNN and LSTM).
    """
    T, B, G = dgx.shape
    n_in = x.shape[2]
    dgx2 = dgx.reshape(T * B, G)
    dgh2 = dgh.reshape(T * B, G)
    matmul_tn(dgx2, _time_major(x).reshape(T * B, n_in), dw_ih)
    matmul_tn(dgh2, hs[:T].reshape(T * B, hs.shape[2]), dw_hh)
    col_sum(dgx2, db_ih)
    col_sum(dgh2, db_hh)
    if dx is not None:
        dx_tm = cuda.device_array((T, B, n_in), dx.dtype)
        matmul(dgx2, w_ih, dx_tm.reshape(T * B, n_in))
        launch_1d(swap01_kernel, dx.size, dx_tm, dx)


@cuda.jit(**DEVICE)
def _units(h):
    """This thread's (sample, unit) of a (B, H) array: (in range, b, j)."""
    k = cuda.grid(1)
    H = h.shape[1]
    return k < h.shape[0] * H, k // H, k % H


# ---------------------------------------------------------------------------------------------
# RNN (tanh): h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)


@cuda.jit(**JIT)
def rnn_step_kernel(pre, rec, b_ih, b_hh, h_next, out, t):
    """One step: ``h_next = tanh(pre + rec + b_ih + b_hh)``, also stored as ``out[:, t]``."""
    ok, b, j = _units(h_next)
    if ok:
        h = math.tanh(pre[b, j] + rec[b, j] + (b_ih[j] + b_hh[j]))
        h_next[b, j] = h
        out[b, t, j] = h


def rnn_forward(x, w_ih, w_hh, b_ih, b_hh, h0, out, h_n, hs):
    """Run the sequence; fills ``out`` (B, T, H), ``h_n`` (B, H) and ``hs`` (T+1, B, H)."""
    B, T, _ = x.shape
    H = h0.shape[1]
    pre = cuda.device_array((T, B, H), x.dtype)
    _input_projection(x, w_ih, pre)
    rec = cuda.device_array((B, H), x.dtype)
    copy(h0, hs[0])
    for t in range(T):
        matmul_nt(hs[t], w_hh, rec)
        launch_1d(rnn_step_kernel, B * H, pre[t], rec, b_ih, b_hh, hs[t + 1], out, t)
    copy(hs[T], h_n)


@cuda.jit(**JIT)
def rnn_step_backward_kernel(h, dout, t, dh, dpre):
    """``dpre = (dh + dout[:, t]) * (1 - h²)`` for the step's output ``h``."""
    ok, b, j = _units(h)
    if ok:
        hv = h[b, j]
        dpre[b, j] = (dh[b, j] + dout[b, t, j]) * (h.dtype.type(1) - hv * hv)


def rnn_backward(dout, dh_n, x, w_ih, w_hh, hs, dpre, dx, dh0, dw_ih, dw_hh, db_ih, db_hh):
    """Backpropagate through time from ``dout`` (B, T, H) and ``dh_n`` (B, H).

    ``dpre`` (T, B, H) is scratch for the pre-activation gradients. Writes every gradient
    array; ``dx`` may be None when the input needs no gradient.
    """
    B, T, _ = x.shape
    H = hs.shape[2]
    dh = dh0  # the gradient reaching h_t; h0's in the end
    copy(dh_n, dh)
    for t in range(T - 1, -1, -1):
        launch_1d(rnn_step_backward_kernel, B * H, hs[t + 1], dout, t, dh, dpre[t])
        matmul(dpre[t], w_hh, dh)
    _weight_grads(dpre, dpre, x, hs, w_ih, dx, dw_ih, dw_hh, db_ih, db_hh)


# ---------------------------------------------------------------------------------------------
# LSTM: gates i, f, g, o; c_t = f * c_{t-1} + i * g; h_t = o * tanh(c_t)


@cuda.jit(**JIT)
def lstm_step_kernel(gt, rec, b_ih, b_hh, c_prev, h_next, c_next, out, t):
    """One step: `gt` (B, 4H) holds the input projection and gets the activated gates."""
    ok, b, j = _units(h_next)
    if ok:
        H = h_next.shape[1]
        i = sigmoid_scalar(gt[b, j] + rec[b, j] + (b_ih[j] + b_hh[j]))
        f = sigmoid_scalar(gt[b, H + j] + rec[b, H + j] + (b_ih[H + j] + b_hh[H + j]))
        g = math.tanh(gt[b, 2 * H + j] + rec[b, 2 * H + j] + (b_ih[2 * H + j] + b_hh[2 * H + j]))
        o = sigmoid_scalar(gt[b, 3 * H + j] + rec[b, 3 * H + j]
                           + (b_ih[3 * H + j] + b_hh[3 * H + j]))
        c = f * c_prev[b, j] + i * g
        h = o * math.tanh(c)
        gt[b, j] = i
        gt[b, H + j] = f
        gt[b, 2 * H + j] = g
        gt[b, 3 * H + j] = o
        c_next[b, j] = c
        h_next[b, j] = h
        out[b, t, j] = h


def lstm_forward(x, w_ih, w_hh, b_ih, b_hh, h0, c0, out, h_n, c_n, hs, cs, gates):
    """Run the sequence; fills ``out``, ``h_n``, ``c_n`` and the saved activations.

    Saved for backward: ``hs``/``cs`` (T+1, B, H) hidden and cell states including the
    initial ones, ``gates`` (T, B, 4H) the activated gates i, f, g, o.
    """
    B, T, _ = x.shape
    H = h0.shape[1]
    _input_projection(x, w_ih, gates)
    rec = cuda.device_array((B, 4 * H), x.dtype)
    copy(h0, hs[0])
    copy(c0, cs[0])
    for t in range(T):
        matmul_nt(hs[t], w_hh, rec)
        launch_1d(lstm_step_kernel, B * H, gates[t], rec, b_ih, b_hh, cs[t], hs[t + 1],
                  cs[t + 1], out, t)
    copy(hs[T], h_n)
    copy(cs[T], c_n)


@cuda.jit(**JIT)
def lstm_step_backward_kernel(gt, c_prev, c_next, dout, t, dh, dc, dgt):
    """Gate gradients `dgt` (B, 4H) of one step; `dc` becomes the gradient of c_{t-1}."""
    ok, b, j = _units(dh)
    if ok:
        H = dh.shape[1]
        one = dh.dtype.type(1)
        i = gt[b, j]
        f = gt[b, H + j]
        g = gt[b, 2 * H + j]
        o = gt[b, 3 * H + j]
        tc = math.tanh(c_next[b, j])
        dht = dh[b, j] + dout[b, t, j]
        dct = dc[b, j] + dht * o * (one - tc * tc)
        dgt[b, j] = dct * g * i * (one - i)
        dgt[b, H + j] = dct * c_prev[b, j] * f * (one - f)
        dgt[b, 2 * H + j] = dct * i * (one - g * g)
        dgt[b, 3 * H + j] = dht * tc * o * (one - o)
        dc[b, j] = dct * f


def lstm_backward(dout, dh_n, dc_n, x, w_ih, w_hh, hs, cs, gates, dg,
                  dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh):
    """Backpropagate through time from ``dout`` (B, T, H), ``dh_n`` and ``dc_n`` (B, H).

    ``dg`` (T, B, 4H) is scratch for the gate gradients. Writes every gradient array; ``dx``
    may be None when the input needs no gradient.
    """
    B, T, _ = x.shape
    H = hs.shape[2]
    dh, dc = dh0, dc0  # the gradients reaching h_t and c_t; h0's and c0's in the end
    copy(dh_n, dh)
    copy(dc_n, dc)
    for t in range(T - 1, -1, -1):
        launch_1d(lstm_step_backward_kernel, B * H, gates[t], cs[t], cs[t + 1], dout, t, dh, dc,
                  dg[t])
        matmul(dg[t], w_hh, dh)
    _weight_grads(dg, dg, x, hs, w_ih, dx, dw_ih, dw_hh, db_ih, db_hh)


# ---------------------------------------------------------------------------------------------
# GRU: gates r, z, n; n = tanh(W_in x + b_in + r * (W_hn h + b_hn)); h = (1 - z) n + z h_{t-1}


@cuda.jit(**JIT)
def gru_step_kernel(gt, rec, b_ih, b_hh, h_prev, h_next, hn, out, t):
    """One step: `gt` (B, 3H) holds the input projection and gets the activated gates."""
    ok, b, j = _units(h_next)
    if ok:
        H = h_next.shape[1]
        one = h_next.dtype.type(1)
        r = sigmoid_scalar(gt[b, j] + b_ih[j] + rec[b, j] + b_hh[j])
        z = sigmoid_scalar(gt[b, H + j] + b_ih[H + j] + rec[b, H + j] + b_hh[H + j])
        hn_tj = rec[b, 2 * H + j] + b_hh[2 * H + j]
        n = math.tanh(gt[b, 2 * H + j] + b_ih[2 * H + j] + r * hn_tj)
        h = (one - z) * n + z * h_prev[b, j]
        gt[b, j] = r
        gt[b, H + j] = z
        gt[b, 2 * H + j] = n
        hn[b, j] = hn_tj
        h_next[b, j] = h
        out[b, t, j] = h


def gru_forward(x, w_ih, w_hh, b_ih, b_hh, h0, out, h_n, hs, gates, hn):
    """Run the sequence; fills ``out``, ``h_n`` and the saved activations.

    Saved for backward: ``hs`` (T+1, B, H) hidden states including h0, ``gates`` (T, B, 3H)
    the activated gates r, z, n, and ``hn`` (T, B, H) the hidden path of n, W_hn h + b_hn.
    """
    B, T, _ = x.shape
    H = h0.shape[1]
    _input_projection(x, w_ih, gates)
    rec = cuda.device_array((B, 3 * H), x.dtype)
    copy(h0, hs[0])
    for t in range(T):
        matmul_nt(hs[t], w_hh, rec)
        launch_1d(gru_step_kernel, B * H, gates[t], rec, b_ih, b_hh, hs[t], hs[t + 1], hn[t],
                  out, t)
    copy(hs[T], h_n)


@cuda.jit(**JIT)
def gru_step_backward_kernel(gt, hn, h_prev, dout, t, dh, direct, dgx, dgh):
    """Gate gradients of one step on the input (`dgx`) and hidden (`dgh`) paths.

    `dh` is the gradient reaching h_t through W_hh, `direct` the one through z * h_t; the
    latter becomes that of h_{t-1}.
    """
    ok, b, j = _units(dh)
    if ok:
        H = dh.shape[1]
        one = dh.dtype.type(1)
        r = gt[b, j]
        z = gt[b, H + j]
        n = gt[b, 2 * H + j]
        dht = dh[b, j] + direct[b, j] + dout[b, t, j]
        dn = dht * (one - z) * (one - n * n)
        dr = dn * hn[b, j] * r * (one - r)
        dz = dht * (h_prev[b, j] - n) * z * (one - z)
        dgx[b, j] = dr
        dgx[b, H + j] = dz
        dgx[b, 2 * H + j] = dn
        dgh[b, j] = dr
        dgh[b, H + j] = dz
        dgh[b, 2 * H + j] = dn * r
        direct[b, j] = dht * z


def gru_backward(dout, dh_n, x, w_ih, w_hh, hs, gates, hn, dgx, dgh,
                 dx, dh0, dw_ih, dw_hh, db_ih, db_hh):
    """Backpropagate through time from ``dout`` (B, T, H) and ``dh_n`` (B, H).

    ``dgx``/``dgh`` (T, B, 3H) are scratch for the gate gradients on the input and hidden
    paths, which differ only in the n gate (the hidden one is scaled by r). Writes every
    gradient array; ``dx`` may be None when the input needs no gradient.
    """
    B, T, _ = x.shape
    H = hs.shape[2]
    dh = dh0  # the gradient reaching h_t through W_hh (and, plus `direct`, h0's in the end)
    direct = cuda.device_array((B, H), x.dtype)
    copy(dh_n, dh)
    fill(direct, 0)
    for t in range(T - 1, -1, -1):
        launch_1d(gru_step_backward_kernel, B * H, gates[t], hn[t], hs[t], dout, t, dh, direct,
                  dgx[t], dgh[t])
        matmul(dgh[t], w_hh, dh)
    add(dh, direct, dh0)
    _weight_grads(dgx, dgh, x, hs, w_ih, dx, dw_ih, dw_hh, db_ih, db_hh)
