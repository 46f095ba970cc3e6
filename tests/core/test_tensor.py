"""Tensor basics and the backward engine: dtypes, graph building, accumulation, depth."""

import subprocess
import sys

import numpy as np
import pytest

import nanoml
from nanoml.errors import InputError
from nanoml.tensor import Tensor, apply, is_grad_enabled, no_grad, tensor


def test_default_dtype_is_float32_and_float64_is_kept():
    assert tensor([1, 2, 3]).dtype == np.float32
    assert tensor(np.arange(3)).dtype == np.float32
    assert tensor(np.zeros(3)).dtype == np.float32  # NumPy's float64 default is not kept
    x64 = tensor([1.0], dtype=np.float64)
    assert x64.dtype == np.float64 and tensor(x64).dtype == np.float64
    assert x64.detach().dtype == np.float64
    with pytest.raises(InputError, match="float32 or float64"):
        tensor([1], dtype=np.int32)
    with pytest.raises(InputError, match="could not be read"):
        tensor(["a", "b"])


def test_float32_stays_float32_through_ops_with_python_and_numpy_scalars():
    x = tensor(np.ones((2, 3)), dtype=np.float32, requires_grad=True)
    outs = [
        x + 1.5, 2.0 - x, x * np.float64(3), x / 2, 1 / (x + 1), x**2, x ** np.float64(0.5),
        2**x, -x, x.exp(), x.log(), x.sqrt(), x.tanh(), x.sigmoid(), x.relu(),
        x.leaky_relu(), abs(x), x.clip(0, 1), x.sum(), x.mean(axis=0), x.max(), x.var(),
        x + np.ones(3), x @ np.ones((3, 2)), x.T, x[0], x.reshape(3, 2),
    ]
    for out in outs:
        assert out.dtype == np.float32, out
    loss = sum(o.sum() for o in outs)
    loss.backward()
    assert x.grad.dtype == np.float32


def test_float32_layers_and_losses_keep_float32_gradients():
    from nanoml import losses, nn

    rng = np.random.default_rng(0)
    model = nn.Sequential(
        nn.Linear(4, 6, rng=rng), nn.BatchNorm1d(6), nn.LeakyReLU(), nn.Dropout(0.3, rng=rng),
        nn.Tanh(), nn.Linear(6, 3, rng=rng), nn.Sigmoid(),
    )
    x = tensor(rng.standard_normal((5, 4)))
    out = model(x)
    assert out.dtype == np.float32
    y = rng.standard_normal((5, 3))  # float64 targets must not promote the loss
    terms = [
        losses.mse(out, y), losses.mae(out, y), losses.binary_cross_entropy(out, y > 0),
        losses.cross_entropy(out, np.array([0, 1, 2, 0, 1])), losses.hinge(out, np.sign(y)),
        losses.kl_divergence(out, out),
    ]
    assert all(t.dtype == np.float32 for t in terms)
    sum(terms).backward()
    assert all(p.grad.dtype == np.float32 for p in model.parameters())


def test_array_protocol_and_reflected_ops_with_ndarray_on_the_left():
    x = tensor([1.0, 2.0], requires_grad=True)
    y = np.array([3.0, 4.0]) * x - np.array([1.0, 1.0])
    assert isinstance(y, Tensor)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 4.0])
    np.testing.assert_array_equal(np.asarray(x), [1.0, 2.0])


def test_comparisons_give_boolean_tensors_without_graph():
    x = tensor([1.0, 2.0, 3.0], requires_grad=True)
    mask = x > 1.5
    assert mask.dtype == bool and not mask.requires_grad
    np.testing.assert_array_equal(mask.numpy(), [False, True, True])
    np.testing.assert_array_equal((x == tensor([1.0, 0.0, 3.0])).numpy(), [True, False, True])
    np.testing.assert_array_equal(x[mask].numpy(), [2.0, 3.0])
    assert bool(tensor([2.0]) > 1) and not tensor(0.0)
    with pytest.raises(ValueError, match="ambiguous"):
        bool(x > 0)


def test_properties_item_detach_and_repr():
    x = tensor([[1.0, 2.0]], requires_grad=True)
    assert x.shape == (1, 2) and x.ndim == 2 and x.size == 2 and x.device == "cpu"
    assert x.sum().item() == 3.0
    d = (x * 2).detach()
    assert not d.requires_grad and d.is_leaf
    assert "requires_grad=True" in repr(x)
    assert np.shares_memory(x.numpy(), x.data)


def test_package_exports_tensor_lazily():
    code = "import sys, nanoml; assert 'nanoml.tensor' not in sys.modules; nanoml.Tensor"
    subprocess.run([sys.executable, "-c", code], check=True)
    assert nanoml.Tensor is Tensor
    assert nanoml.no_grad is no_grad
    assert isinstance(nanoml.tensor([1.0]), Tensor)


def test_no_grad_records_nothing_and_restores_the_mode():
    x = tensor([1.0, 2.0], requires_grad=True)
    with no_grad():
        assert not is_grad_enabled()
        y = x * 2
    assert is_grad_enabled()
    assert not y.requires_grad and y._backward is None
    assert (x * 2).requires_grad

    @no_grad()
    def infer(t):
        return t * 3

    assert not infer(x).requires_grad


def test_backward_needs_a_scalar_or_a_gradient():
    x = tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(InputError, match="one-element"):
        (x * 2).backward()
    with pytest.raises(InputError, match="shape"):
        (x * 2).backward(np.ones(3))
    with pytest.raises(InputError, match="requires grad"):
        tensor([1.0]).backward()
    (x * 2).backward(np.array([1.0, 10.0]))
    np.testing.assert_array_equal(x.grad, [2.0, 20.0])


def test_gradients_accumulate_across_backward_calls_until_zero_grad():
    x = tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, 4 * x.data)
    x.zero_grad()
    assert x.grad is None


def test_shared_subgraph_and_repeated_parent_accumulate():
    x = tensor([0.5, -1.5, 2.0], dtype=np.float64, requires_grad=True)
    a = x * x  # x used twice by one op
    b = a.exp()
    y = (a * b + a + b).sum()  # a reached along three paths, b along two
    y.backward()
    ea = np.exp(x.data**2)
    expected = 2 * x.data * (ea + x.data**2 * ea + 1 + ea)
    np.testing.assert_allclose(x.grad, expected, rtol=1e-12)


def test_leaf_gradients_are_independent_arrays():
    a = tensor([1.0, 2.0], requires_grad=True)
    b = tensor([3.0, 4.0], requires_grad=True)
    (a + b).sum().backward()
    a.grad *= 10  # e.g. gradient clipping in place must not touch b's gradient
    np.testing.assert_array_equal(b.grad, [1.0, 1.0])


def test_deep_chain_has_no_recursion_limit():
    x = tensor([0.5], dtype=np.float64, requires_grad=True)
    y = x
    for _ in range(6000):
        y = y * 1.0001 + 0.0
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [1.0001**6000], rtol=1e-9)


def test_wide_graph_visits_each_node_once():
    x = tensor(np.arange(4.0), requires_grad=True)
    parts = [x * float(i) for i in range(200)]
    total = parts[0]
    for p in parts[1:]:
        total = total + p
    total.sum().backward()
    np.testing.assert_allclose(x.grad, np.full(4, sum(range(200))))


def test_apply_skips_parents_that_do_not_require_grad_and_checks_shapes():
    x = tensor([1.0, 2.0], requires_grad=True)
    c = tensor([5.0, 6.0])
    out = apply(x.data + c.data, (x, None, c), lambda g: (g, None, g))
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 1.0])
    assert c.grad is None
    bad = apply(x.data.sum(), (x,), lambda g: (np.ones(3, dtype=np.float32),))
    with pytest.raises(RuntimeError, match="shape"):
        bad.backward()


def test_grad_passed_to_backward_fn_is_contiguous():
    x = tensor(np.ones((3, 4)), requires_grad=True)
    seen = []

    def backward(g):
        seen.append(g.flags.c_contiguous)
        return (g,)

    y = apply(x.data.copy(), (x,), backward)
    y.T.sum().backward()
    assert seen == [True]
