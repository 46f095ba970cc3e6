"""Recurrent kernels: RNN (tanh), LSTM and GRU over a whole sequence, forward and backward.

Gate layout and equations follow PyTorch: LSTM gates (i, f, g, o), GRU gates (r, z, n) with
the hidden bias of n inside the reset product, ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``.
Shapes: ``x`` (B, T, I), ``w_ih`` (G*H, I), ``w_hh`` (G*H, H), ``b_ih``/``b_hh`` (G*H,),
``h0``/``c0`` (B, H), ``out`` (B, T, H). Every array is C-contiguous and of one float dtype.

Layout and work split:
- States are kept time-major (``hs`` is (T+1, B, H) with ``hs[0] = h0``), so that each step's
  hidden state is one contiguous (B, H) block.
- The batch rows are split into chunks of one matmul tile's height, spread over the threads
  (``prange``): the rows' recurrences are independent, so each chunk runs the whole sequence
  with no synchronisation per step. An RNN or LSTM step is one small product,
  ``[x_t, h_{t-1}] @ [w_ih, w_hh].T``, straight into the saved gate buffer, then fused passes
  over the gates; a GRU step is two (its n gate needs the hidden part alone). The products
  use the register-tiled GEMM of `nanoml.kernels.cpu.gemm` (BLAS threading does not pay at
  these sizes; the tile height costs no GEMM speed). The weights are packed into panels once
  per call: unpacked, the rows of a power-of-two-wide weight lie a page apart, so that each
  step reads them past the L1 and the TLB.
- Backward keeps every step's gate gradients, so that the weight gradients are GEMMs over
  all steps at the end, through `nanoml.kernels.cpu.matmul.matmul` (which packs the
  transposed gate gradients); bias gradients are summed per chunk on the way.
The caller allocates the outputs, the saved activations and the large scratch (the gate
gradients, as arguments of the backward kernels); small per-call scratch is allocated here.

Policy for every kernel: ``cache=True``; ``error_model="numpy"`` so that float division does
not carry a zero check, which lets LLVM vectorise the gate loops; of ``fastmath`` only
``contract`` (multiply-adds fused; NaN still propagates); constants typed ``float32`` (an
integer 1 beside a float32 promotes the loop to float64, at half the vector width);
``parallel=True`` on the entry points, with few parallel regions per call (each
costs a wake-up of every thread), and results identical for any thread count (tested).
"""

import math

import numba
import numpy as np
from numba import prange, types
from numba.extending import overload

from nanoml.kernels.cpu.buffers import copy, zeros
from nanoml.kernels.cpu.gemm import (
    COLUMN_BYTES,
    ROWS,
    matmul,
    matmul_packed,
    pack,
    pack_panel,
)
from nanoml.kernels.cpu.matmul import matmul as threaded_matmul

_JIT = {"cache": True, "error_model": "numpy", "fastmath": {"contract"}}
# 1 of the arrays' own float type: float32 keeps float32 loops in float32, and float64
# arithmetic takes it exactly.
_ONE = np.float32(1)


def _tanh(x):
    """tanh: the library function in float64, a vectorisable rational in float32."""
    return math.tanh(x)


def _sigmoid(x):
    """Logistic function with the same precision split as `_tanh`."""
    return 1.0 / (1.0 + math.exp(-x))


@numba.njit(**_JIT)
def _tanh_f32(x):
    # Eigen's rational approximation of tanh on [-7.9, 7.9] (about 4e-7 absolute error):
    # libm's tanhf/expf are scalar calls that keep the gate loops from vectorising and
    # cost 10-20x more. The clamps are written so that NaN passes through.
    c = np.float32(7.90531110763549805)
    x = c if x > c else x
    x = -c if x < -c else x
    x2 = x * x
    p = x2 * np.float32(-2.76076847742355e-16) + np.float32(2.00018790482477e-13)
    p = x2 * p + np.float32(-8.60467152213735e-11)
    p = x2 * p + np.float32(5.12229709037114e-08)
    p = x2 * p + np.float32(1.48572235717979e-05)
    p = x2 * p + np.float32(6.37261928875436e-04)
    p = x2 * p + np.float32(4.89352455891786e-03)
    q = x2 * np.float32(1.19825839466702e-06) + np.float32(1.18534705686654e-04)
    q = x2 * q + np.float32(2.26843463243900e-03)
    q = x2 * q + np.float32(4.89352518554385e-03)
    return x * p / q


@overload(_tanh)
def _tanh_overload(x):
    if x == types.float32:
        return lambda x: _tanh_f32(x)
    return lambda x: math.tanh(x)


@overload(_sigmoid)
def _sigmoid_overload(x):
    if x == types.float32:
        half = np.float32(0.5)
        return lambda x: half + half * _tanh_f32(half * x)
    return lambda x: 1.0 / (1.0 + math.exp(-x))


# Row helpers. Each loop runs from 0 over 1-D views, writes one or two arrays and reads few,
# and no output is also passed as an input: that is what lets LLVM vectorise it (offset
# ranges, many arrays per loop or an output that may overlap an input fall back to scalar
# code, 2-7x slower here).


@numba.njit(**_JIT)
def _sigmoid_add(z, a, b):
    for j in range(z.size):
        z[j] = _sigmoid(z[j] + a[j] + b[j])


@numba.njit(**_JIT)
def _sigmoid_bias(z, b):
    for j in range(z.size):
        z[j] = _sigmoid(z[j] + b[j])


@numba.njit(**_JIT)
def _tanh_bias(z, b):
    for j in range(z.size):
        z[j] = _tanh(z[j] + b[j])


@numba.njit(**_JIT)
def _accumulate(total, a):
    for j in range(total.size):
        total[j] += a[j]


@numba.njit(**_JIT)
def _prepare(w_ih, w_hh, b_ih, b_hh):
    """A GRU's weights: w_ih.T made contiguous for `matmul`, w_hh.T packed for
    `matmul_packed` (a narrow input's products are too short for packing to pay), and the
    summed bias."""
    return np.ascontiguousarray(w_ih.T), pack(w_hh.T), b_ih + b_hh


@numba.njit(**_JIT)
def _stacked(w_ih, w_hh):
    """``[w_ih, w_hh].T`` (I+H, G) packed for `matmul_packed` (see `gemm.pack`), read straight
    from the two weights, and the step's input ``[x_t, h_{t-1}]`` is multiplied in one product."""
    n_in = w_ih.shape[1]
    step = COLUMN_BYTES // w_ih.itemsize
    packed = np.empty(((w_ih.shape[0] + step - 1) // step, n_in + w_hh.shape[1], step),
                      w_ih.dtype)
    for m in range(packed.shape[0]):
        pack_panel(w_ih.T, m, packed[:, :n_in])
        pack_panel(w_hh.T, m, packed[:, n_in:])
    return packed


@numba.njit(**_JIT)
def _step_input(xh, x, hs, t, b0):
    """``xh[i] = [x[b0+i, t], hs[t, b0+i]]`` for the chunk's rows: one step's product operand."""
    n_in = x.shape[2]
    for i in range(xh.shape[0]):
        copy(xh[i, :n_in], x[b0 + i, t])
        copy(xh[i, n_in:], hs[t, b0 + i])


@numba.njit(**_JIT)
def _set_first(states, first):
    """``states[0] = first`` for a (T+1, B, H) stack of states."""
    for b in range(first.shape[0]):
        copy(states[0, b], first[b])


@numba.njit(**_JIT)
def _finish(states, final):
    """``final = states[-1]`` for a (T+1, B, H) stack of states."""
    for b in range(final.shape[0]):
        copy(final[b], states[-1, b])


@numba.njit(**_JIT)
def _time_major(x):
    """A (T, B, I) copy of ``x`` (B, T, I)."""
    B, T, n_in = x.shape
    x_tm = np.empty((T, B, n_in), x.dtype)
    for t in range(T):
        for b in range(B):
            copy(x_tm[t, b], x[b, t])
    return x_tm


@numba.njit(**_JIT)
def _sum_rows(parts, total):
    total[:] = 0
    for k in range(parts.shape[0]):
        _accumulate(total, parts[k])


@numba.njit(parallel=True, **_JIT)
def _step_inputs(x, hs):
    """Every step's product operand ``[x_t, h_{t-1}]``, as a (T, B, I+H) array."""
    T, B, n_in = hs.shape[0] - 1, x.shape[0], x.shape[2]
    xh = np.empty((T, B, n_in + hs.shape[2]), x.dtype)
    for t in prange(T):
        _step_input(xh[t], x, hs, t, 0)
    return xh


@numba.njit(parallel=True, **_JIT)
def _split_columns(both, left, right):
    """``left, right = both[:, :n], both[:, n:]`` with n the columns of `left`."""
    n = left.shape[1]
    for j in prange(both.shape[0]):
        copy(left[j], both[j, :n])
        copy(right[j], both[j, n:])


@numba.njit(parallel=True, **_JIT)
def _input_grad(dgx, w_ih, dx):
    """``dx[:, t] = dgx[t] @ w_ih`` for every step."""
    for t in prange(dgx.shape[0]):
        matmul(dgx[t], w_ih, dx[:, t, :])


@numba.njit(**_JIT)
def _shared_weight_grads(dg, db, x, hs, w_ih, dx, dw_ih, dw_hh, db_ih, db_hh):
    """Gradients of the weights, biases and (unless ``dx`` is None) the input of an RNN or
    LSTM, whose input and hidden paths share the gate gradients ``dg`` (T, B, G) (``db``
    their per-chunk sums).

    Both weights' gradients are one threaded GEMM over all steps, ``dg.T @ [x_t, h_{t-1}]``,
    so that the transposed ``dg``, the largest operand, is packed once (see
    `nanoml.kernels.cpu.matmul.matmul`).
    """
    T, B, G = dg.shape
    _sum_rows(db, db_ih)
    copy(db_hh, db_ih)  # the two paths' biases meet the same gate gradients
    xh = _step_inputs(x, hs)
    dw = np.empty((G, xh.shape[2]), x.dtype)
    threaded_matmul(dg.reshape(T * B, G).T, xh.reshape(T * B, xh.shape[2]), dw)
    _split_columns(dw, dw_ih, dw_hh)
    if dx is not None:
        _input_grad(dg, w_ih, dx)


@numba.njit(**_JIT)
def _split_weight_grads(dgx, dgh, db_x, db_h, x, hs, w_ih, dx, dw_ih, dw_hh, db_ih, db_hh):
    """The same for a GRU, whose gate gradients differ on the input (``dgx``) and hidden
    (``dgh``) paths: one threaded GEMM over all steps for each weight."""
    T, B, G = dgx.shape
    _sum_rows(db_x, db_ih)
    _sum_rows(db_h, db_hh)
    threaded_matmul(dgx.reshape(T * B, G).T, _time_major(x).reshape(T * B, x.shape[2]), dw_ih)
    threaded_matmul(dgh.reshape(T * B, G).T, hs[:T].reshape(T * B, hs.shape[2]), dw_hh)
    if dx is not None:
        _input_grad(dgx, w_ih, dx)


# ---------------------------------------------------------------------------------------------
# RNN (tanh): h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)


@numba.njit(parallel=True, **_JIT)
def rnn_forward(x, w_ih, w_hh, b_ih, b_hh, h0, out, h_n, hs):
    """Run the sequence; fills ``out`` (B, T, H), ``h_n`` (B, H) and ``hs`` (T+1, B, H)."""
    B, T, n_in = x.shape
    H = h0.shape[1]
    w, bias = _stacked(w_ih, w_hh), b_ih + b_hh
    _set_first(hs, h0)
    for chunk in prange(-(-B // ROWS)):
        b0, b1 = chunk * ROWS, min(B, chunk * ROWS + ROWS)
        xh = np.empty((b1 - b0, n_in + H), x.dtype)
        for t in range(T):
            _step_input(xh, x, hs, t, b0)
            matmul_packed(xh, w, hs[t + 1, b0:b1])
            for b in range(b0, b1):
                _tanh_bias(hs[t + 1, b], bias)
                copy(out[b, t], hs[t + 1, b])
    _finish(hs, h_n)


@numba.njit(**_JIT)
def _rnn_cell_backward(dpre, dh, dout, h):
    for j in range(dpre.size):
        dpre[j] = (dh[j] + dout[j]) * (_ONE - h[j] * h[j])


@numba.njit(parallel=True, **_JIT)
def rnn_backward(dout, dh_n, x, w_ih, w_hh, hs, dpre, dx, dh0, dw_ih, dw_hh, db_ih, db_hh):
    """Backpropagate through time from ``dout`` (B, T, H) and ``dh_n`` (B, H).

    ``dpre`` (T, B, H) is scratch for the pre-activation gradients. Writes every gradient
    array; ``dx`` may be None when the input needs no gradient.
    """
    B, T, _ = x.shape
    H = hs.shape[2]
    n_chunks = -(-B // ROWS)
    w_hh_p = pack(w_hh)
    db = zeros((n_chunks, H), x.dtype)
    for chunk in prange(n_chunks):
        b0, b1 = chunk * ROWS, min(B, chunk * ROWS + ROWS)
        dh = dh0[b0:b1]  # the gradient reaching h_t; h0's in the end
        for b in range(b0, b1):
            copy(dh0[b], dh_n[b])
        for t in range(T - 1, -1, -1):
            for b in range(b0, b1):
                _rnn_cell_backward(dpre[t, b], dh0[b], dout[b, t], hs[t + 1, b])
                _accumulate(db[chunk], dpre[t, b])
            matmul_packed(dpre[t, b0:b1], w_hh_p, dh)
    _shared_weight_grads(dpre, db, x, hs, w_ih, dx, dw_ih, dw_hh, db_ih, db_hh)


# ---------------------------------------------------------------------------------------------
# LSTM: gates i, f, g, o; c_t = f * c_{t-1} + i * g; h_t = o * tanh(c_t)


@numba.njit(**_JIT)
def _lstm_cell(gates, c_prev, c, h):
    """Cell and hidden state from one row of activated gates (i, f, g, o)."""
    H = c.size
    i, f, g, o = gates[:H], gates[H:2 * H], gates[2 * H:3 * H], gates[3 * H:]
    for j in range(H):
        cj = f[j] * c_prev[j] + i[j] * g[j]
        c[j] = cj
        h[j] = o[j] * _tanh(cj)


@numba.njit(parallel=True, **_JIT)
def lstm_forward(x, w_ih, w_hh, b_ih, b_hh, h0, c0, out, h_n, c_n, hs, cs, gates):
    """Run the sequence; fills ``out``, ``h_n``, ``c_n`` and the saved activations.

    Saved for backward: ``hs``/``cs`` (T+1, B, H) hidden and cell states including the
    initial ones, ``gates`` (T, B, 4H) the activated gates i, f, g, o.
    """
    B, T, n_in = x.shape
    H = h0.shape[1]
    w, bias = _stacked(w_ih, w_hh), b_ih + b_hh
    _set_first(hs, h0)
    _set_first(cs, c0)
    for chunk in prange(-(-B // ROWS)):
        b0, b1 = chunk * ROWS, min(B, chunk * ROWS + ROWS)
        xh = np.empty((b1 - b0, n_in + H), x.dtype)
        for t in range(T):
            _step_input(xh, x, hs, t, b0)
            matmul_packed(xh, w, gates[t, b0:b1])  # activated in place below
            for b in range(b0, b1):
                g = gates[t, b]
                _sigmoid_bias(g[:2 * H], bias[:2 * H])
                _tanh_bias(g[2 * H:3 * H], bias[2 * H:3 * H])
                _sigmoid_bias(g[3 * H:], bias[3 * H:])
                _lstm_cell(g, cs[t, b], cs[t + 1, b], hs[t + 1, b])
                copy(out[b, t], hs[t + 1, b])
    _finish(hs, h_n)
    _finish(cs, c_n)


@numba.njit(**_JIT)
def _lstm_cell_backward(dg, dc, dh, gates, c_prev, c):
    """Gate gradients of one row; `dc` goes from step t's to step t-1's in place.

    Four loops of few arrays each: one loop writing dg and dc together does not vectorise.
    """
    H = dc.size
    gi, gf, gg, go = gates[:H], gates[H:2 * H], gates[2 * H:3 * H], gates[3 * H:]
    di, df, dgg, do = dg[:H], dg[H:2 * H], dg[2 * H:3 * H], dg[3 * H:]
    for j in range(H):
        do[j] = _tanh(c[j])  # parked in `do` for the next loop
    for j in range(H):
        tc = do[j]
        o = go[j]
        dc[j] += dh[j] * o * (_ONE - tc * tc)
        do[j] = dh[j] * tc * o * (_ONE - o)
    for j in range(H):
        i = gi[j]
        g = gg[j]
        di[j] = dc[j] * g * i * (_ONE - i)
        dgg[j] = dc[j] * i * (_ONE - g * g)
    for j in range(H):
        f = gf[j]
        df[j] = dc[j] * c_prev[j] * f * (_ONE - f)
        dc[j] *= f


@numba.njit(parallel=True, **_JIT)
def lstm_backward(dout, dh_n, dc_n, x, w_ih, w_hh, hs, cs, gates, dg,
                  dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh):
    """Backpropagate through time from ``dout`` (B, T, H), ``dh_n`` and ``dc_n`` (B, H).

    ``dg`` (T, B, 4H) is scratch for the gate gradients. Writes every gradient array; ``dx``
    may be None when the input needs no gradient.
    """
    B, T, _ = x.shape
    H = hs.shape[2]
    n_chunks = -(-B // ROWS)
    w_hh_p = pack(w_hh)
    db = zeros((n_chunks, 4 * H), x.dtype)
    for chunk in prange(n_chunks):
        b0, b1 = chunk * ROWS, min(B, chunk * ROWS + ROWS)
        dh = dh0[b0:b1]  # the gradients reaching h_t and c_t; h0's and c0's in the end
        for b in range(b0, b1):
            copy(dh0[b], dh_n[b])
            copy(dc0[b], dc_n[b])
        for t in range(T - 1, -1, -1):
            for b in range(b0, b1):
                _accumulate(dh0[b], dout[b, t])
                _lstm_cell_backward(dg[t, b], dc0[b], dh0[b], gates[t, b], cs[t, b],
                                    cs[t + 1, b])
                _accumulate(db[chunk], dg[t, b])
            matmul_packed(dg[t, b0:b1], w_hh_p, dh)
    _shared_weight_grads(dg, db, x, hs, w_ih, dx, dw_ih, dw_hh, db_ih, db_hh)


# ---------------------------------------------------------------------------------------------
# GRU: gates r, z, n; n = tanh(W_in x + b_in + r * (W_hn h + b_hn)); h = (1 - z) n + z h_{t-1}


@numba.njit(**_JIT)
def _gru_cell(gates, rec_n, b_in, b_hn, hn, h_prev, h):
    """The n gate (in place over its input projection), its saved hidden part ``hn`` and
    the new hidden state, from activated r and z."""
    H = h.size
    r, z, n = gates[:H], gates[H:2 * H], gates[2 * H:]
    for j in range(H):
        hn[j] = rec_n[j] + b_hn[j]
    for j in range(H):
        n[j] = _tanh(n[j] + b_in[j] + r[j] * hn[j])
    for j in range(H):
        h[j] = (_ONE - z[j]) * n[j] + z[j] * h_prev[j]


@numba.njit(parallel=True, **_JIT)
def gru_forward(x, w_ih, w_hh, b_ih, b_hh, h0, out, h_n, hs, gates, hn):
    """Run the sequence; fills ``out``, ``h_n`` and the saved activations.

    Saved for backward: ``hs`` (T+1, B, H) hidden states including h0, ``gates`` (T, B, 3H)
    the activated gates r, z, n, and ``hn`` (T, B, H) the hidden path of n, W_hn h + b_hn.
    """
    B, T, _ = x.shape
    H = h0.shape[1]
    w_ih_t, w_hh_p, bias = _prepare(w_ih, w_hh, b_ih, b_hh)
    _set_first(hs, h0)
    for chunk in prange(-(-B // ROWS)):
        b0, b1 = chunk * ROWS, min(B, chunk * ROWS + ROWS)
        rec = np.empty((b1 - b0, 3 * H), x.dtype)
        for t in range(T):
            matmul(x[b0:b1, t], w_ih_t, gates[t, b0:b1])  # activated in place below
            matmul_packed(hs[t, b0:b1], w_hh_p, rec)
            for b in range(b0, b1):
                g, r = gates[t, b], rec[b - b0]
                _sigmoid_add(g[:2 * H], r[:2 * H], bias[:2 * H])
                _gru_cell(g, r[2 * H:], b_ih[2 * H:], b_hh[2 * H:], hn[t, b], hs[t, b],
                          hs[t + 1, b])
                copy(out[b, t], hs[t + 1, b])
    _finish(hs, h_n)


@numba.njit(**_JIT)
def _gru_cell_backward(dgx, dgh, direct, dh, gates, hn, h_prev):
    """Gate gradients of one row on the input (`dgx`) and hidden (`dgh`) paths.

    `dh` is the whole gradient reaching h_t; `direct` receives its share through z * h_{t-1}.
    """
    H = dh.size
    r, z, n = gates[:H], gates[H:2 * H], gates[2 * H:]
    dr, dz, dn = dgx[:H], dgx[H:2 * H], dgx[2 * H:]
    for j in range(H):
        dn[j] = dh[j] * (_ONE - z[j]) * (_ONE - n[j] * n[j])
        dz[j] = dh[j] * (h_prev[j] - n[j]) * z[j] * (_ONE - z[j])
    for j in range(H):
        dr[j] = dn[j] * hn[j] * r[j] * (_ONE - r[j])
        direct[j] = dh[j] * z[j]
    copy(dgh[:2 * H], dgx[:2 * H])
    dhn = dgh[2 * H:]
    for j in range(H):
        dhn[j] = dn[j] * r[j]


@numba.njit(parallel=True, **_JIT)
def gru_backward(dout, dh_n, x, w_ih, w_hh, hs, gates, hn, dgx, dgh,
                 dx, dh0, dw_ih, dw_hh, db_ih, db_hh):
    """Backpropagate through time from ``dout`` (B, T, H) and ``dh_n`` (B, H).

    ``dgx``/``dgh`` (T, B, 3H) are scratch for the gate gradients on the input and hidden
    paths, which differ only in the n gate (the hidden one is scaled by r). Writes every
    gradient array; ``dx`` may be None when the input needs no gradient.
    """
    B, T, _ = x.shape
    H = hs.shape[2]
    direct = zeros((B, H), x.dtype)  # the gradient reaching h_{t-1} through z_t * h_{t-1}
    n_chunks = -(-B // ROWS)
    w_hh_p = pack(w_hh)
    db_x = zeros((n_chunks, 3 * H), x.dtype)
    db_h = zeros((n_chunks, 3 * H), x.dtype)
    for chunk in prange(n_chunks):
        b0, b1 = chunk * ROWS, min(B, chunk * ROWS + ROWS)
        dh = dh0[b0:b1]  # the gradient reaching h_t through W_hh (and finally h0's)
        for b in range(b0, b1):
            copy(dh0[b], dh_n[b])
        for t in range(T - 1, -1, -1):
            for b in range(b0, b1):
                _accumulate(dh0[b], direct[b])
                _accumulate(dh0[b], dout[b, t])
                _gru_cell_backward(dgx[t, b], dgh[t, b], direct[b], dh0[b], gates[t, b],
                                   hn[t, b], hs[t, b])
                _accumulate(db_x[chunk], dgx[t, b])
                _accumulate(db_h[chunk], dgh[t, b])
            matmul_packed(dgh[t, b0:b1], w_hh_p, dh)
        for b in range(b0, b1):
            _accumulate(dh0[b], direct[b])
    _split_weight_grads(dgx, dgh, db_x, db_h, x, hs, w_ih, dx, dw_ih, dw_hh, db_ih, db_hh)
