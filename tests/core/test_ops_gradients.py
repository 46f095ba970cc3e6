"""Finite-difference gradient checks (float64) of every op, with broadcasting and keepdims."""

import numpy as np
import pytest

import nanoml.functional as F
from nanoml.tensor import tensor
from nanoml.testing import gradcheck


def rand(*shape, low=-1.0, high=1.0, seed=None):
    rng = np.random.default_rng(seed if seed is not None else sum(shape) + len(shape))
    return tensor(rng.uniform(low, high, size=shape), dtype=np.float64)


BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
}
# (shape of a, shape of b): equal, scalar, trailing broadcast, both sides stretched
SHAPES = [((3, 4), (3, 4)), ((3, 4), ()), ((2, 3, 4), (4,)), ((3, 1), (1, 4)), ((4,), (2, 3, 4))]


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("shapes", SHAPES)
def test_binary_ops_broadcast(name, shapes):
    a = rand(*shapes[0], seed=1)
    b = rand(*shapes[1], low=0.5, high=2.0, seed=2)
    gradcheck(BINARY[name], [a, b])


def test_pow_with_tensor_and_scalar_exponents():
    base = rand(3, 4, low=0.5, high=2.0)
    gradcheck(lambda a, b: a**b, [base, rand(1, 4, seed=3)])
    gradcheck(lambda a: a**3, [rand(3, 4)])
    gradcheck(lambda a: a**-1.5, [base])
    gradcheck(lambda a: 2.0**a, [rand(5)])


def test_reflected_scalar_ops():
    gradcheck(lambda a: 3.0 - a, [rand(4)])
    gradcheck(lambda a: 2.0 / a, [rand(4, low=0.5, high=1.5)])
    gradcheck(lambda a: 2.0 * a + 1.0, [rand(4)])
    gradcheck(lambda a: np.ones(4) @ a, [rand(4, 2)])


# Inputs kept away from each op's kinks (0 for relu/abs, the clip bounds).
UNARY = {
    "neg": (lambda x: -x, rand(3, 4)),
    "exp": (F.exp, rand(3, 4)),
    "log": (F.log, rand(3, 4, low=0.2, high=3)),
    "sqrt": (F.sqrt, rand(3, 4, low=0.2, high=3)),
    "tanh": (F.tanh, rand(3, 4, low=-3, high=3)),
    "sigmoid": (F.sigmoid, rand(3, 4, low=-5, high=5)),
    "relu": (F.relu, tensor([[-1.5, -0.5, 0.3, 2.0]], dtype=np.float64)),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.2), tensor([-1.5, -0.5, 0.3, 2.0], np.float64)),
    "abs": (F.abs, tensor([-1.5, -0.5, 0.3, 2.0], dtype=np.float64)),
    "clip": (lambda x: F.clip(x, -1.0, 1.0), tensor([-1.5, -0.5, 0.3, 2.0], dtype=np.float64)),
    "clip_low": (lambda x: x.clip(low=0.0), tensor([-1.5, -0.5, 0.3, 2.0], dtype=np.float64)),
}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_ops(name):
    fn, x = UNARY[name]
    gradcheck(fn, [x])


def test_unary_values_match_numpy():
    t = rand(3, 4, low=-3, high=3)
    x = t.data
    np.testing.assert_allclose(F.sigmoid(t).data, 1 / (1 + np.exp(-x)), rtol=1e-12)
    np.testing.assert_allclose(F.leaky_relu(t, 0.1).data, np.where(x > 0, x, 0.1 * x))
    big = tensor([-1000.0, 1000.0], dtype=np.float64)
    np.testing.assert_array_equal(F.sigmoid(big).data, [0.0, 1.0])


REDUCTIONS = ["sum", "mean", "max", "min", "var"]
AXES = [(None, False), (0, False), (1, True), (-1, False), ((0, 2), True), ((0, 2), False)]


@pytest.mark.parametrize("name", REDUCTIONS)
@pytest.mark.parametrize("axis,keepdims", AXES)
def test_reductions(name, axis, keepdims):
    x = rand(2, 3, 4, seed=7)  # distinct values: max/min have no ties
    out = getattr(x, name)(axis=axis, keepdims=keepdims)
    expected = getattr(np, name)(x.data, axis=axis, keepdims=keepdims)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12)
    gradcheck(lambda t: getattr(t, name)(axis=axis, keepdims=keepdims), [x])


def test_var_with_ddof_and_max_ties_share_the_gradient():
    x = rand(3, 5)
    np.testing.assert_allclose(x.var(axis=1, ddof=1).data, np.var(x.data, axis=1, ddof=1))
    gradcheck(lambda t: t.var(axis=1, ddof=1), [x])
    t = tensor([1.0, 3.0, 3.0, 2.0], requires_grad=True)
    t.max().backward()
    np.testing.assert_array_equal(t.grad, [0.0, 0.5, 0.5, 0.0])


def test_argmax_has_no_gradient():
    x = tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 1.0]], requires_grad=True)
    idx = x.argmax(axis=1)
    np.testing.assert_array_equal(idx.numpy(), [1, 0])
    assert not idx.requires_grad


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_softmax_family(axis):
    x = rand(3, 4, 2, low=-3, high=3)
    gradcheck(lambda t: F.softmax(t, axis), [x])
    gradcheck(lambda t: F.log_softmax(t, axis), [x])
    gradcheck(lambda t: F.logsumexp(t, axis), [x])
    gradcheck(lambda t: F.logsumexp(t, axis, keepdims=True), [x])
    e = np.exp(x.data - x.data.max(axis=axis, keepdims=True))
    p = e / e.sum(axis=axis, keepdims=True)
    np.testing.assert_allclose(F.softmax(x, axis).data, p, rtol=1e-12)
    np.testing.assert_allclose(F.log_softmax(x, axis).data, np.log(p), rtol=1e-12)


def test_softmax_is_stable_for_huge_logits():
    x = tensor([[1000.0, 0.0, -1000.0]], dtype=np.float32)
    assert np.isfinite(F.log_softmax(x).data).all()
    np.testing.assert_allclose(F.softmax(x).data, [[1.0, 0.0, 0.0]])
    np.testing.assert_allclose(F.logsumexp(x).data, [1000.0])


MATMUL_SHAPES = [
    ((3, 4), (4, 2)),
    ((2, 3, 4), (4, 5)),
    ((2, 3, 4), (1, 4, 2)),
    ((4,), (4, 3)),
    ((3, 4), (4,)),
    ((4,), (4,)),
]


@pytest.mark.parametrize("a_shape,b_shape", MATMUL_SHAPES)
def test_matmul(a_shape, b_shape):
    a, b = rand(*a_shape, seed=1), rand(*b_shape, seed=2)
    np.testing.assert_allclose((a @ b).data, a.data @ b.data, rtol=1e-12)
    gradcheck(lambda x, y: x @ y, [a, b])


def test_linear_with_and_without_bias_and_leading_axes():
    x, w, b = rand(2, 3, 4), rand(5, 4, seed=1), rand(5, seed=2)
    np.testing.assert_allclose(F.linear(x, w, b).data, x.data @ w.data.T + b.data, rtol=1e-12)
    gradcheck(F.linear, [x, w, b])
    gradcheck(F.linear, [rand(3, 4), w])


def test_shape_ops():
    x = rand(2, 3, 4)
    gradcheck(lambda t: t.reshape(4, 6) * rand(4, 6, seed=5), [x])
    gradcheck(lambda t: t.reshape((6, -1)), [x])
    gradcheck(lambda t: t.transpose(), [x])
    gradcheck(lambda t: t.transpose(1, 2, 0), [x])
    gradcheck(lambda t: t.T, [rand(3, 4)])
    gradcheck(lambda t: t.flatten(), [x])
    assert x.flatten(1).shape == (2, 12) and x.flatten(0, 1).shape == (6, 4)
    gradcheck(lambda t: F.flatten(t, 1), [x])


@pytest.mark.parametrize(
    "index",
    [
        1,
        (slice(None), 2),
        (Ellipsis, slice(1, 3)),
        (0, slice(None, None, -1), None),
        np.array([0, 1, 0, 0]),  # repeated rows: gradients add up
        np.array([[-1, 0], [-1, 1]]),  # negative and repeated rows, a 2-D index
        (np.array([0, 1, 1]), slice(None), np.array([3, 3, 0])),
        (slice(None), np.array([2, 0, 2])),
        (slice(None), np.array([True, False, True])),
    ],
)
def test_getitem(index):
    x = rand(2, 3, 4)
    np.testing.assert_array_equal(x[index].data, x.data[index])
    gradcheck(lambda t: t[index], [x])


def test_getitem_with_tensor_indices():
    x = rand(3, 4)
    mask = x > 0
    np.testing.assert_array_equal(x[mask].data, x.data[x.data > 0])
    gradcheck(lambda t: t[mask], [x])
    rows = np.array([2, 0])
    gradcheck(lambda t: t[rows, 1:], [x])


def test_getitem_repeated_index_scatter_adds():
    x = tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[np.array([0, 0, 2, 0])].sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 0.0, 1.0])


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concatenate_and_stack(axis):
    a, b, c = rand(2, 3, seed=1), rand(2, 3, seed=2), rand(2, 3, seed=3)
    gradcheck(lambda *ts: F.stack(ts, axis), [a, b, c])
    np.testing.assert_array_equal(F.stack([a, b], axis).data, np.stack([a.data, b.data], axis))
    d = rand(2, 2, seed=4) if axis != 0 else rand(1, 3, seed=4)
    gradcheck(lambda *ts: F.concatenate(ts, axis), [a, d, c])
    np.testing.assert_array_equal(
        F.concatenate([a, d], axis).data, np.concatenate([a.data, d.data], axis)
    )


def test_composite_expression_with_shared_subexpressions():
    def fn(x, w):
        h = (x @ w).tanh()
        return (h * h.sigmoid() + h).sum(axis=0) / (h.abs().max() + 1.0)

    gradcheck(fn, [rand(4, 3), rand(3, 5, seed=9)])


def test_constant_operands_take_the_tensor_dtype_and_get_no_gradient():
    c = np.array([1.0, 2.0, 3.0])  # float64
    x = tensor([1.0, 1.0, 1.0], requires_grad=True)
    out = x * c + c
    assert out.dtype == np.float32 and out._parents[1].requires_grad is False
    gradcheck(lambda t: t * c + c, [rand(3)])
