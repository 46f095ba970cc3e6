"""conv2d_max_pool_relu and ConvPoolReLU2d: finite differences, the unfused chain, PyTorch."""

import re

import numpy as np
import pytest

import nanoml.functional as F
from nanoml import nn
from nanoml.errors import InputError
from nanoml.kernels import cpu
from nanoml.tensor import tensor
from nanoml.testing import gradcheck


def rand(*shape, seed=0, dtype=np.float64, requires_grad=False):
    data = np.random.default_rng(seed).uniform(-1, 1, shape)
    return tensor(data, requires_grad=requires_grad, dtype=dtype)


# (input shape, weight shape, pool, bias): the unrolled 3x3 conv and 2x2 pool, batch 1,
# several channels, pools that leave conv rows and columns uncovered, no bias.
CASES = [
    ((2, 1, 6, 6), (3, 1, 3, 3), 2, True),
    ((1, 2, 7, 6), (2, 2, 3, 3), 2, True),
    ((2, 2, 6, 7), (3, 2, 2, 3), (2, 3), False),
    ((1, 1, 8, 7), (2, 1, 2, 2), 3, True),
]


@pytest.mark.parametrize("x_shape, w_shape, pool, bias", CASES)
def test_gradcheck(x_shape, w_shape, pool, bias):
    inputs = [rand(*x_shape, seed=1), rand(*w_shape, seed=2)]
    if bias:
        inputs.append(rand(w_shape[0], seed=3))
    gradcheck(lambda x, w, b=None: F.conv2d_max_pool_relu(x, w, b, pool), inputs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, w_shape, pool, bias", CASES)
def test_equals_the_unfused_chain(dtype, x_shape, w_shape, pool, bias):
    def run(fn):
        x = rand(*x_shape, seed=4, dtype=dtype, requires_grad=True)
        w = rand(*w_shape, seed=5, dtype=dtype, requires_grad=True)
        b = rand(w_shape[0], seed=6, dtype=dtype, requires_grad=True) if bias else None
        out = fn(x, w, b)
        out.backward(np.random.default_rng(7).standard_normal(out.shape).astype(dtype))
        return [out.data] + [t.grad for t in (x, w, b) if t is not None]

    fused = run(lambda x, w, b: F.conv2d_max_pool_relu(x, w, b, pool))
    chain = run(lambda x, w, b: F.relu(F.max_pool2d(F.conv2d(x, w, b), pool)))
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-12}
    for ours, theirs in zip(fused, chain, strict=True):
        np.testing.assert_allclose(ours, theirs, **tol)


@pytest.mark.parametrize("x_shape, w_shape, pool, bias", CASES)
def test_matches_torch(x_shape, w_shape, pool, bias):
    torch = pytest.importorskip("torch", reason="the PyTorch comparison needs torch installed")
    x = rand(*x_shape, seed=8, dtype=np.float32, requires_grad=True)
    w = rand(*w_shape, seed=9, dtype=np.float32, requires_grad=True)
    b = rand(w_shape[0], seed=10, dtype=np.float32, requires_grad=True) if bias else None
    out = F.conv2d_max_pool_relu(x, w, b, pool)
    g = np.random.default_rng(11).standard_normal(out.shape).astype(np.float32)
    out.backward(g)

    tx, tw = (torch.tensor(t.data, requires_grad=True) for t in (x, w))
    tb = torch.tensor(b.data, requires_grad=True) if bias else None
    # The Keras order: ReLU before the pooling.
    theirs = torch.nn.functional.max_pool2d(torch.relu(torch.nn.functional.conv2d(tx, tw, tb)),
                                            pool)
    theirs.backward(torch.from_numpy(g))
    for ours, ref in [(out.data, theirs), (x.grad, tx.grad), (w.grad, tw.grad)] + (
            [(b.grad, tb.grad)] if bias else []):
        ref = ref.detach().numpy()
        np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def test_input_gradient_is_skipped_when_the_input_needs_none(monkeypatch):
    calls = []
    kernel = cpu.conv2d_max_pool_relu_backward_input
    monkeypatch.setattr(cpu, "conv2d_max_pool_relu_backward_input",
                        lambda *a: calls.append(1) or kernel(*a))
    w = rand(4, 1, 3, 3, seed=12, requires_grad=True)
    for requires_grad in (False, True):
        calls.clear()
        x = rand(2, 1, 6, 6, seed=13, requires_grad=requires_grad)
        F.conv2d_max_pool_relu(x, w).sum().backward()
        assert len(calls) == int(requires_grad)
        assert (x.grad is not None) == requires_grad
    assert w.grad is not None


def test_layer_has_conv2d_parameters_and_runs_the_op():
    layer = nn.ConvPoolReLU2d(2, 3, 3, 2, rng=np.random.default_rng(0))
    conv = nn.Conv2d(2, 3, 3, rng=np.random.default_rng(0))
    assert {k: v.shape for k, v in layer.state_dict().items()} == {
        k: v.shape for k, v in conv.state_dict().items()} == {"weight": (3, 2, 3, 3), "bias": (3,)}
    conv.load_state_dict(layer.state_dict())
    x = rand(2, 2, 8, 8, seed=14, dtype=np.float32)
    np.testing.assert_allclose(layer(x).data, F.relu(F.max_pool2d(conv(x), 2)).data, rtol=1e-6)
    assert "pool=(2, 2)" in repr(layer)
    with pytest.raises(InputError, match="ConvPoolReLU2d pool must be"):
        nn.ConvPoolReLU2d(2, 3, 3, 0)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: F.conv2d_max_pool_relu(rand(1, 4, 4), rand(2, 1, 3, 3)), "shape (N, C, H, W)"),
        (lambda: F.conv2d_max_pool_relu(rand(1, 2, 4, 4), rand(2, 3, 3, 3)),
         "2 channels but the weight expects 3"),
        (lambda: F.conv2d_max_pool_relu(rand(1, 1, 4, 4), rand(2, 3, 3)), "weight of shape"),
        (lambda: F.conv2d_max_pool_relu(rand(1, 1, 4, 4), rand(2, 1, 3, 3), rand(3)),
         "bias of shape (2,)"),
        (lambda: F.conv2d_max_pool_relu(rand(1, 1, 2, 4), rand(2, 1, 3, 3)),
         "larger than the input height"),
        (lambda: F.conv2d_max_pool_relu(rand(1, 1, 4, 4), rand(2, 1, 3, 3), pool=3),
         "pool (3, 3) is larger than the convolution's output (2, 2)"),
        (lambda: F.conv2d_max_pool_relu(rand(1, 1, 4, 4), rand(2, 1, 3, 3), pool=(2,)),
         "pool must be"),
        (lambda: F.conv2d_max_pool_relu(rand(1, 1, 4, 4), rand(2, 1, 3, 3, dtype=np.float32)),
         "weight is float32 but the input is float64"),
        (lambda: F.conv2d_max_pool_relu(rand(1, 1, 4, 4), rand(2, 1, 3, 3),
                                        rand(2, dtype=np.float32)),
         "bias is float32 but the input is float64"),
        (lambda: F.conv2d_max_pool_relu(np.zeros((1, 1, 4, 4)), rand(2, 1, 3, 3)),
         "expects a Tensor input"),
    ],
)
def test_bad_arguments_are_named(call, message):
    with pytest.raises(InputError, match=re.escape(message)):
        call()
