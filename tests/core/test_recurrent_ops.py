"""Recurrent ops and layers: finite-difference gradients, PyTorch parity, errors, init."""

import numpy as np
import pytest

import nanoml.functional as F
from nanoml import nn
from nanoml.errors import InputError, ParameterError
from nanoml.tensor import Tensor, no_grad
from nanoml.testing.gradients import gradcheck

GATES = {"rnn": 1, "lstm": 4, "gru": 3}
LAYERS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
# (batch, steps, inputs, hidden): includes sequence length 1, batch 1 and hidden 1.
SHAPES = [(2, 3, 2, 3), (1, 1, 3, 2), (2, 2, 1, 1)]


def op_inputs(cell, shape, seed=0):
    B, T, n_in, H = shape
    rng = np.random.default_rng(seed)
    G = GATES[cell] * H

    def rnd(*s):
        return Tensor(rng.uniform(-1, 1, s), dtype=np.float64)

    states = [rnd(B, H), rnd(B, H)] if cell == "lstm" else [rnd(B, H)]
    return [rnd(B, T, n_in), rnd(G, n_in), rnd(G, H), rnd(G), rnd(G), *states]


def flat_outputs(result):
    out, state = result
    return (out, *state) if isinstance(state, tuple) else (out, state)


@pytest.mark.parametrize("cell", GATES)
@pytest.mark.parametrize("shape", SHAPES)
def test_gradcheck_every_input_weight_and_initial_state(cell, shape):
    op = getattr(F, cell)
    assert gradcheck(op, op_inputs(cell, shape))


@pytest.mark.parametrize("cell", GATES)
@pytest.mark.parametrize("which", [0, 1, -1])
def test_gradcheck_when_the_loss_uses_one_output_only(cell, which):
    op = getattr(F, cell)
    assert gradcheck(lambda *a: flat_outputs(op(*a))[which], op_inputs(cell, (2, 3, 2, 3)))


def test_gradcheck_of_stacked_layers_with_sequence_first_input():
    # The weights' gradients of stacked layers are checked against PyTorch below.
    layer = nn.LSTM(2, 3, num_layers=2, batch_first=False, rng=np.random.default_rng(0))
    for p in layer.parameters():
        p.data = p.data.astype(np.float64)
    rng = np.random.default_rng(1)
    inputs = [Tensor(rng.uniform(-1, 1, s), dtype=np.float64)
              for s in [(4, 2, 2), (2, 2, 3), (2, 2, 3)]]
    assert gradcheck(lambda x, h0, c0: flat_outputs(layer(x, (h0, c0))), inputs)


def test_outputs_of_the_same_call_share_one_backward_and_accumulate():
    x, wi, wh, bi, bh, h0, c0 = op_inputs("lstm", (2, 3, 2, 3))
    for t in (x, wi, h0, c0):
        t.requires_grad = True
    out, (h_n, c_n) = F.lstm(x, wi, wh, bi, bh, h0, c0)
    (out.sum() + h_n.sum()).backward()
    first = x.grad.copy()
    c_n.sum().backward()  # a second loss on the same graph adds to the gradients
    x2 = Tensor(x.data, requires_grad=True, dtype=np.float64)
    out2, (h2, c2) = F.lstm(x2, wi, wh, bi, bh, h0, c0)
    (out2.sum() + h2.sum() + c2.sum()).backward()
    np.testing.assert_allclose(x.grad, x2.grad, rtol=1e-12, atol=1e-12)
    assert not np.allclose(first, x.grad)


def test_no_graph_under_no_grad_and_when_nothing_requires_grad():
    inputs = op_inputs("gru", (2, 3, 2, 3))
    out, h_n = F.gru(*inputs)
    assert not out.requires_grad and not h_n.requires_grad
    inputs[1].requires_grad = True
    with no_grad():
        out, h_n = F.gru(*inputs)
    assert not out.requires_grad
    out, h_n = F.gru(*inputs)
    assert out.requires_grad and h_n.requires_grad


# ---------------------------------------------------------------------------------------------
# PyTorch parity in float32


@pytest.mark.parametrize("cell", GATES)
@pytest.mark.parametrize("num_layers,batch_first", [(1, True), (2, True), (2, False)])
def test_layer_matches_torch_outputs_and_every_gradient(cell, num_layers, batch_first):
    torch = pytest.importorskip("torch")
    B, T, n_in, H = 3, 5, 4, 6
    ours = LAYERS[cell](n_in, H, num_layers=num_layers, batch_first=batch_first,
                        rng=np.random.default_rng(0))
    theirs = getattr(torch.nn, cell.upper())(n_in, H, num_layers=num_layers,
                                             batch_first=batch_first)
    with torch.no_grad():
        for name, p in ours.named_parameters():
            getattr(theirs, name).copy_(torch.from_numpy(p.data))
    rng = np.random.default_rng(1)
    x_shape = (B, T, n_in) if batch_first else (T, B, n_in)
    x = rng.standard_normal(x_shape).astype(np.float32)
    states = [rng.standard_normal((num_layers, B, H)).astype(np.float32)
              for _ in range(2 if cell == "lstm" else 1)]
    x_ours, states_ours = Tensor(x, requires_grad=True), [Tensor(s, requires_grad=True)
                                                          for s in states]
    x_torch = torch.from_numpy(x).requires_grad_()
    states_torch = [torch.from_numpy(s).requires_grad_() for s in states]
    if cell == "lstm":
        result_ours = ours(x_ours, tuple(states_ours))
        result_torch = theirs(x_torch, tuple(states_torch))
    else:
        result_ours = ours(x_ours, states_ours[0])
        result_torch = theirs(x_torch, states_torch[0])
    outs_ours, outs_torch = flat_outputs(result_ours), flat_outputs(result_torch)
    weights = [rng.standard_normal(o.shape).astype(np.float32) for o in outs_ours]
    sum(((o * Tensor(w)).sum() for o, w in zip(outs_ours, weights, strict=True)),
        Tensor(0.0)).backward()
    sum((o * torch.from_numpy(w)).sum()
        for o, w in zip(outs_torch, weights, strict=True)).backward()

    def close(a, b, what):
        np.testing.assert_allclose(a, b.detach().numpy(), rtol=1e-4, atol=1e-5, err_msg=what)

    for k, (a, b) in enumerate(zip(outs_ours, outs_torch, strict=True)):
        close(a.data, b, f"output {k}")
    close(x_ours.grad, x_torch.grad, "input gradient")
    for k, (a, b) in enumerate(zip(states_ours, states_torch, strict=True)):
        close(a.grad, b.grad, f"initial state {k} gradient")
    for name, p in ours.named_parameters():
        close(p.grad, getattr(theirs, name).grad, f"{name} gradient")


# ---------------------------------------------------------------------------------------------
# Initialisation and errors


@pytest.mark.parametrize("cell", GATES)
def test_init_is_uniform_within_one_over_sqrt_hidden_and_reproducible(cell):
    H = 16
    layer = LAYERS[cell](8, H, num_layers=2, rng=np.random.default_rng(5))
    again = LAYERS[cell](8, H, num_layers=2, rng=np.random.default_rng(5))
    names = [name for name, _ in layer.named_parameters()]
    assert names == [f"{kind}_l{k}" for k in range(2)
                     for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    values = np.concatenate([p.data.ravel() for p in layer.parameters()])
    bound = 1 / np.sqrt(H)
    assert np.abs(values).max() <= bound and np.abs(values).max() > 0.95 * bound
    assert abs(values.std() - bound / np.sqrt(3)) < 0.05 * bound  # the std of U(-b, b)
    G = GATES[cell] * H
    assert layer.weight_ih_l0.shape == (G, 8) and layer.weight_ih_l1.shape == (G, H)
    for a, b in zip(layer.parameters(), again.parameters(), strict=True):
        np.testing.assert_array_equal(a.data, b.data)


@pytest.mark.parametrize("cell", GATES)
def test_layer_rejects_wrong_rank_feature_count_and_state_shape(cell):
    layer = LAYERS[cell](4, 3)
    with pytest.raises(InputError, match=r"\(batch, steps, features\).*\(5, 4\)"):
        layer(Tensor(np.zeros((5, 4))))
    with pytest.raises(InputError, match="built for 4 input features.*with 7"):
        layer(Tensor(np.zeros((2, 5, 7))))
    bad = Tensor(np.zeros((1, 3, 3)))
    with pytest.raises(InputError, match=r"must have shape.*\(1, 2, 3\).*\(1, 3, 3\)"):
        layer(Tensor(np.zeros((2, 5, 4))), (bad, bad) if cell == "lstm" else bad)
    with pytest.raises(ParameterError, match="hidden_size"):
        LAYERS[cell](4, 0)


@pytest.mark.parametrize("cell", GATES)
def test_op_rejects_mismatched_shapes_and_dtypes(cell):
    op = getattr(F, cell)
    x, wi, wh, bi, bh, *states = op_inputs(cell, (2, 3, 2, 3))
    with pytest.raises(InputError, match="x has 2 features but w_ih expects 4"):
        op(x, Tensor(np.zeros((wi.shape[0], 4)), dtype=np.float64), wh, bi, bh)
    with pytest.raises(InputError, match=r"b_hh must have shape"):
        op(x, wi, wh, bi, Tensor(np.zeros(2), dtype=np.float64))
    with pytest.raises(InputError, match=r"h0 must have shape \(2, 3\)"):
        op(x, wi, wh, bi, bh, Tensor(np.zeros((3, 3)), dtype=np.float64))
    with pytest.raises(InputError, match="w_hh has dtype float32 but x has float64"):
        op(x, wi, Tensor(wh.data), bi, bh)
    with pytest.raises(InputError, match="at least one sequence and one step"):
        op(Tensor(np.zeros((2, 0, 2)), dtype=np.float64), wi, wh, bi, bh)


@pytest.mark.parametrize("cell", GATES)
def test_graphs_alive_together_keep_their_own_saved_buffers(cell):
    # Saved activations come from a pool reused across calls: a later call must not
    # overwrite the buffers of a graph that has not run its backward yet.
    op = getattr(F, cell)
    first = op_inputs(cell, (2, 3, 2, 3), seed=0)
    second = op_inputs(cell, (2, 3, 2, 3), seed=1)
    for t in first + second:
        t.requires_grad = True
    out1 = flat_outputs(op(*first))[0]
    op(*second)  # a graph released at once hands its buffers back
    out2 = flat_outputs(op(*second))[0]
    out1.sum().backward()
    out2.sum().backward()
    for inputs in (first, second):
        fresh = [Tensor(t.data, requires_grad=True, dtype=np.float64) for t in inputs]
        flat_outputs(op(*fresh))[0].sum().backward()
        for t, f in zip(inputs, fresh, strict=True):
            np.testing.assert_allclose(t.grad, f.grad, rtol=1e-12, atol=1e-12)
