"""Recurrent kernels against a plain NumPy step loop and its finite differences."""

import numpy as np
import pytest

from nanoml.kernels import cpu

GATES = {"rnn": 1, "lstm": 4, "gru": 3}
# (batch, steps, inputs, hidden): includes sequence length 1, batch 1, hidden 1, and a batch
# split into a whole and a partial chunk of rows.
SHAPES = [(2, 3, 4, 5), (1, 1, 3, 2), (3, 4, 2, 1), (1, 5, 1, 3), (11, 2, 3, 4)]


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


def reference(cell, x, w_ih, w_hh, b_ih, b_hh, h0, c0):
    """PyTorch's equations, one step at a time, batch-major: (out, h_n, c_n or None)."""
    h, c = h0, c0
    outs = []
    for t in range(x.shape[1]):
        gx = x[:, t] @ w_ih.T + b_ih
        gh = h @ w_hh.T + b_hh
        if cell == "rnn":
            h = np.tanh(gx + gh)
        elif cell == "lstm":
            i, f, g, o = np.split(gx + gh, 4, axis=1)
            c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
            h = sigmoid(o) * np.tanh(c)
        else:
            xr, xz, xn = np.split(gx, 3, axis=1)
            hr, hz, hn = np.split(gh, 3, axis=1)
            r, z = sigmoid(xr + hr), sigmoid(xz + hz)
            n = np.tanh(xn + r * hn)
            h = (1 - z) * n + z * h
        outs.append(h)
    return np.stack(outs, axis=1), h, (c if cell == "lstm" else None)


def make_args(cell, shape, dtype, seed=0):
    B, T, n_in, H = shape
    rng = np.random.default_rng(seed)
    G = GATES[cell] * H

    def rnd(*s):
        return rng.uniform(-1, 1, s).astype(dtype)

    return dict(x=rnd(B, T, n_in), w_ih=rnd(G, n_in), w_hh=rnd(G, H), b_ih=rnd(G),
                b_hh=rnd(G), h0=rnd(B, H), c0=rnd(B, H) if cell == "lstm" else None)


def run_forward(cell, a):
    """Call the kernel the way an op does; returns (out, h_n, c_n, saved buffers)."""
    B, T, _ = a["x"].shape
    H = a["h0"].shape[1]
    dt = a["x"].dtype
    out, h_n = np.empty((B, T, H), dt), np.empty((B, H), dt)
    hs = np.empty((T + 1, B, H), dt)
    common = (a["x"], a["w_ih"], a["w_hh"], a["b_ih"], a["b_hh"], a["h0"])
    if cell == "rnn":
        cpu.rnn_forward(*common, out, h_n, hs)
        return out, h_n, None, (hs,)
    gates = np.empty((T, B, GATES[cell] * H), dt)
    if cell == "lstm":
        c_n, cs = np.empty((B, H), dt), np.empty((T + 1, B, H), dt)
        cpu.lstm_forward(*common, a["c0"], out, h_n, c_n, hs, cs, gates)
        return out, h_n, c_n, (hs, cs, gates)
    hn = np.empty((T, B, H), dt)
    cpu.gru_forward(*common, out, h_n, hs, gates, hn)
    return out, h_n, None, (hs, gates, hn)


def run_backward(cell, a, saved, dout, dh_n, dc_n, with_dx=True):
    """Call the backward kernel; returns a dict of gradients named like the inputs."""
    g = {k: np.full_like(v, np.nan) for k, v in a.items() if v is not None}
    dx = g["x"] if with_dx else None
    weights = (g["h0"], g["w_ih"], g["w_hh"], g["b_ih"], g["b_hh"])
    common = (a["x"], a["w_ih"], a["w_hh"])
    T, B = saved[0].shape[0] - 1, saved[0].shape[1]
    scratch = np.full((T, B, a["w_hh"].shape[0]), np.nan, a["x"].dtype)  # gate gradients
    if cell == "rnn":
        cpu.rnn_backward(dout, dh_n, *common, *saved, scratch, dx, *weights)
    elif cell == "lstm":
        cpu.lstm_backward(dout, dh_n, dc_n, *common, *saved, scratch, dx, g["h0"], g["c0"],
                          *weights[1:])
    else:
        cpu.gru_backward(dout, dh_n, *common, *saved, scratch, np.full_like(scratch, np.nan),
                         dx, *weights)
    if not with_dx:
        del g["x"]
    return g


@pytest.mark.parametrize("cell", GATES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 2e-6)])
def test_forward_matches_numpy_step_loop(cell, shape, dtype, tol):
    a = make_args(cell, shape, dtype)
    out, h_n, c_n, saved = run_forward(cell, a)
    ref = reference(cell, *(v.astype(np.float64) if v is not None else None
                            for v in a.values()))
    np.testing.assert_allclose(out, ref[0], rtol=tol, atol=tol)
    np.testing.assert_allclose(h_n, ref[1], rtol=tol, atol=tol)
    np.testing.assert_allclose(saved[0][0], a["h0"])
    np.testing.assert_allclose(saved[0][1:].transpose(1, 0, 2), out)
    if cell == "lstm":
        np.testing.assert_allclose(c_n, ref[2], rtol=tol, atol=tol)


@pytest.mark.parametrize("cell", GATES)
@pytest.mark.parametrize("shape", SHAPES)
def test_backward_matches_finite_differences_of_reference(cell, shape):
    a = make_args(cell, shape, np.float64, seed=1)
    rng = np.random.default_rng(2)
    out, h_n, c_n, saved = run_forward(cell, a)
    dout, dh_n = rng.standard_normal(out.shape), rng.standard_normal(h_n.shape)
    dc_n = rng.standard_normal(h_n.shape) if cell == "lstm" else None

    def loss(args):
        o, h, c = reference(cell, *args.values())
        total = np.sum(o * dout) + np.sum(h * dh_n)
        return total + (np.sum(c * dc_n) if cell == "lstm" else 0.0)

    grads = run_backward(cell, a, saved, dout, dh_n, dc_n)
    eps = 1e-6
    for name, grad in grads.items():
        numeric = np.empty_like(grad)
        for idx in np.ndindex(grad.shape):
            shifted = []
            for sign in (1, -1):
                args = {k: (v.copy() if v is not None else None) for k, v in a.items()}
                args[name][idx] += sign * eps
                shifted.append(loss(args))
            numeric[idx] = (shifted[0] - shifted[1]) / (2 * eps)
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8, err_msg=name)


@pytest.mark.parametrize("cell", GATES)
def test_backward_without_input_gradient_gives_the_same_weight_gradients(cell):
    a = make_args(cell, (2, 3, 4, 5), np.float32)
    rng = np.random.default_rng(3)
    out, h_n, c_n, saved = run_forward(cell, a)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    dh_n = rng.standard_normal(h_n.shape).astype(np.float32)
    dc_n = dh_n[::-1].copy() if cell == "lstm" else None
    full = run_backward(cell, a, saved, dout, dh_n, dc_n)
    partial = run_backward(cell, a, saved, dout, dh_n, dc_n, with_dx=False)
    assert set(full) - set(partial) == {"x"}
    for name, grad in partial.items():
        np.testing.assert_array_equal(grad, full[name], err_msg=name)


@pytest.mark.parametrize("cell", GATES)
def test_float32_activations_are_accurate_over_a_wide_range_and_propagate_nan(cell):
    a = make_args(cell, (2, 3, 4, 5), np.float32)
    a["x"] *= 40  # drive the gates far into saturation, where approximations break first
    a["x"][1, 2, 0] = np.nan
    out, h_n, c_n, _ = run_forward(cell, a)
    ref = reference(cell, *(v.astype(np.float64) if v is not None else None
                            for v in a.values()))
    np.testing.assert_allclose(out, ref[0], rtol=1e-6, atol=2e-6)
    assert np.isnan(out[1, 2]).all() and np.isfinite(out[0]).all()


@pytest.mark.parametrize("cell", GATES)
def test_results_do_not_depend_on_the_thread_count(cell):
    numba = pytest.importorskip("numba")
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs two threads")
    a = make_args(cell, (19, 3, 4, 5), np.float32)  # several batch chunks and a partial one
    rng = np.random.default_rng(4)
    results = []
    for threads in (1, 2):
        previous = numba.get_num_threads()
        numba.set_num_threads(threads)
        try:
            out, h_n, c_n, saved = run_forward(cell, a)
            dout = rng.standard_normal(out.shape).astype(np.float32)
            dh_n = np.ones_like(h_n)
            grads = run_backward(cell, a, saved, dout, dh_n, dh_n if cell == "lstm" else None)
        finally:
            numba.set_num_threads(previous)
        results.append((out, grads))
        rng = np.random.default_rng(4)
    np.testing.assert_array_equal(results[0][0], results[1][0])
    for name in results[0][1]:
        np.testing.assert_array_equal(results[0][1][name], results[1][1][name], err_msg=name)
