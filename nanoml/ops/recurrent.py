"""Recurrent ops: one layer of RNN (tanh), LSTM or GRU over a whole (batch, steps, features) input.

Each op runs the sequence in one forward kernel and backpropagates through time in one
backward kernel (`nanoml.kernels.cpu.recurrent`, or its twin in the operands' backend);
weights follow PyTorch's layout and gate order, so a model converts to or from torch by
copying arrays. The saved activations and scratch come from the backend's pool, which on
the CPU reuses them across steps (see `nanoml.backend.cpu`).
"""

import numpy as np

from nanoml import backend
from nanoml.autograd import apply
from nanoml.errors import InputError


def _joint(outputs, parents, backward_fn):
    """Tensors for an op with several outputs and one backward.

    ``backward_fn(*output_grads)`` gets one gradient per output (zeros for outputs the loss
    does not use) and returns one entry per parent, as for `apply`. The outputs hang off a
    hidden scalar node that holds the real backward: each output's own backward only files
    its gradient and passes a scalar on, and the engine's topological order runs all of them
    before the hidden node's.
    """
    received = [None] * len(outputs)

    def backward(_):
        grads = [_zeros_like(o) if g is None else g
                 for o, g in zip(outputs, received, strict=True)]
        received[:] = [None] * len(outputs)
        return backward_fn(*grads)

    dtype = outputs[0].dtype
    node = apply(np.zeros((), dtype), parents, backward)

    def filer(k):
        def file_grad(g):
            received[k] = g
            return (np.zeros((), dtype),)
        return file_grad

    return tuple(apply(o, (node,), filer(k)) for k, o in enumerate(outputs))


def _zeros_like(a):
    return backend.of(a).zeros_like(a)


def _check(op, n_gates, x, w_ih, w_hh, b_ih, b_hh, states):
    """Validate shapes and dtypes; returns (batch, steps, hidden)."""
    if x.ndim != 3:
        raise InputError(f"{op} expects input x of shape (batch, steps, features), got shape "
                         f"{x.shape}")
    B, T, n_in = x.shape
    if B == 0 or T == 0:
        raise InputError(f"{op} needs at least one sequence and one step, got x of shape "
                         f"{x.shape}")
    H = w_hh.shape[-1]
    expected = {"w_ih": (n_gates * H, n_in), "w_hh": (n_gates * H, H),
                "b_ih": (n_gates * H,), "b_hh": (n_gates * H,)}
    given = {"w_ih": w_ih, "w_hh": w_hh, "b_ih": b_ih, "b_hh": b_hh}
    given.update(states)
    expected.update((name, (B, H)) for name in states)
    if w_ih.ndim == 2 and w_ih.shape[1] != n_in:
        raise InputError(f"{op}: x has {n_in} features but w_ih expects {w_ih.shape[1]} "
                         f"(w_ih has shape {w_ih.shape})")
    for name, t in given.items():
        if t is not None and t.shape != expected[name]:
            raise InputError(f"{op}: {name} must have shape {expected[name]}, got {t.shape}")
        if t is not None and t.dtype != x.dtype:
            raise InputError(f"{op}: {name} has dtype {t.dtype} but x has {x.dtype}; "
                             f"cast them to one float type")
    return B, T, H


def _arrays(xp, *tensors):
    return [xp.contiguous(t.data) for t in tensors]


def _state(xp, t, B, H, dtype):
    return xp.zeros((B, H), dtype) if t is None else xp.contiguous(t.data)


def rnn(x, w_ih, w_hh, b_ih, b_hh, h0=None):
    """Elman RNN with tanh: ``h_t = tanh(x_t @ w_ih.T + b_ih + h_{t-1} @ w_hh.T + b_hh)``.

    x (B, T, I); w_ih (H, I); w_hh (H, H); b_ih, b_hh (H,); h0 (B, H), zeros when None.
    Returns (out (B, T, H), h_n (B, H)).
    """
    B, T, H = _check("rnn", 1, x, w_ih, w_hh, b_ih, b_hh, {"h0": h0})
    xp = backend.common("rnn", x, w_ih, w_hh, b_ih, b_hh, h0)
    k, pool = xp.kernels, xp.pool
    xd, wi, wh, bi, bh = _arrays(xp, x, w_ih, w_hh, b_ih, b_hh)
    dt = xd.dtype
    out, h_n = xp.empty((B, T, H), dt), xp.empty((B, H), dt)
    hs = pool.take((T + 1, B, H), dt)
    k.rnn_forward(xd, wi, wh, bi, bh, _state(xp, h0, B, H, dt), out, h_n, hs)

    def backward(dout, dh_n):
        dx = xp.empty_like(xd) if x.requires_grad else None
        dh0, dwi, dwh = xp.empty_like(h_n), xp.empty_like(wi), xp.empty_like(wh)
        dbi, dbh = xp.empty_like(bi), xp.empty_like(bh)
        dpre = pool.take((T, B, H), dt)
        k.rnn_backward(dout, dh_n, xd, wi, wh, hs, dpre, dx, dh0, dwi, dwh, dbi, dbh)
        pool.give(dpre)
        return dx, dwi, dwh, dbi, dbh, dh0

    pool.keep_until_released(backward, hs)
    return _joint((out, h_n), (x, w_ih, w_hh, b_ih, b_hh, h0), backward)


def lstm(x, w_ih, w_hh, b_ih, b_hh, h0=None, c0=None):
    """LSTM with PyTorch's gates (i, f, g, o) stacked in w_ih (4H, I), w_hh (4H, H), b (4H,).

    h0, c0 (B, H) are zeros when None. Returns (out (B, T, H), (h_n, c_n)).
    """
    B, T, H = _check("lstm", 4, x, w_ih, w_hh, b_ih, b_hh, {"h0": h0, "c0": c0})
    xp = backend.common("lstm", x, w_ih, w_hh, b_ih, b_hh, h0, c0)
    k, pool = xp.kernels, xp.pool
    xd, wi, wh, bi, bh = _arrays(xp, x, w_ih, w_hh, b_ih, b_hh)
    dt = xd.dtype
    out, h_n, c_n = xp.empty((B, T, H), dt), xp.empty((B, H), dt), xp.empty((B, H), dt)
    hs, cs = pool.take((T + 1, B, H), dt), pool.take((T + 1, B, H), dt)
    gates = pool.take((T, B, 4 * H), dt)
    k.lstm_forward(xd, wi, wh, bi, bh, _state(xp, h0, B, H, dt), _state(xp, c0, B, H, dt),
                   out, h_n, c_n, hs, cs, gates)

    def backward(dout, dh_n, dc_n):
        dx = xp.empty_like(xd) if x.requires_grad else None
        dh0, dc0 = xp.empty_like(h_n), xp.empty_like(c_n)
        dwi, dwh = xp.empty_like(wi), xp.empty_like(wh)
        dbi, dbh = xp.empty_like(bi), xp.empty_like(bh)
        dg = pool.take(gates.shape, dt)
        k.lstm_backward(dout, dh_n, dc_n, xd, wi, wh, hs, cs, gates, dg,
                        dx, dh0, dc0, dwi, dwh, dbi, dbh)
        pool.give(dg)
        return dx, dwi, dwh, dbi, dbh, dh0, dc0

    pool.keep_until_released(backward, hs, cs, gates)

    # New names: `backward` holds the arrays' names, and rebinding them would make a cycle.
    outputs = _joint((out, h_n, c_n), (x, w_ih, w_hh, b_ih, b_hh, h0, c0), backward)
    return outputs[0], outputs[1:]


def gru(x, w_ih, w_hh, b_ih, b_hh, h0=None):
    """GRU with PyTorch's gates (r, z, n) stacked in w_ih (3H, I), w_hh (3H, H), b (3H,).

    ``n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn))``, ``h' = (1 - z) n + z h``.
    h0 (B, H) is zeros when None. Returns (out (B, T, H), h_n (B, H)).
    """
    B, T, H = _check("gru", 3, x, w_ih, w_hh, b_ih, b_hh, {"h0": h0})
    xp = backend.common("gru", x, w_ih, w_hh, b_ih, b_hh, h0)
    k, pool = xp.kernels, xp.pool
    xd, wi, wh, bi, bh = _arrays(xp, x, w_ih, w_hh, b_ih, b_hh)
    dt = xd.dtype
    out, h_n = xp.empty((B, T, H), dt), xp.empty((B, H), dt)
    hs, hn = pool.take((T + 1, B, H), dt), pool.take((T, B, H), dt)
    gates = pool.take((T, B, 3 * H), dt)
    k.gru_forward(xd, wi, wh, bi, bh, _state(xp, h0, B, H, dt), out, h_n, hs, gates, hn)

    def backward(dout, dh_n):
        dx = xp.empty_like(xd) if x.requires_grad else None
        dh0, dwi, dwh = xp.empty_like(h_n), xp.empty_like(wi), xp.empty_like(wh)
        dbi, dbh = xp.empty_like(bi), xp.empty_like(bh)
        dgx, dgh = pool.take(gates.shape, dt), pool.take(gates.shape, dt)
        k.gru_backward(dout, dh_n, xd, wi, wh, hs, gates, hn, dgx, dgh,
                       dx, dh0, dwi, dwh, dbi, dbh)
        pool.give(dgx, dgh)
        return dx, dwi, dwh, dbi, dbh, dh0

    pool.keep_until_released(backward, hs, gates, hn)
    return _joint((out, h_n), (x, w_ih, w_hh, b_ih, b_hh, h0), backward)
