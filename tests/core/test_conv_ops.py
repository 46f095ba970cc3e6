"""conv2d, max_pool2d, avg_pool2d and their layers: finite differences, PyTorch, errors."""

import numpy as np
import pytest

import nanoml.functional as F
from nanoml import nn
from nanoml.errors import InputError
from nanoml.kernels import cpu
from nanoml.ops import conv as conv_ops
from nanoml.tensor import tensor
from nanoml.testing import gradcheck


def rand(*shape, seed=0, dtype=np.float64, requires_grad=False):
    data = np.random.default_rng(seed).uniform(-1, 1, shape)
    return tensor(data, requires_grad=requires_grad, dtype=dtype)


# (input shape, weight shape, stride, padding, bias): the direct route (stride 1, few input
# channels, small kernel) with and without padding (also wider than the kernel), and the
# im2col route by stride, channel count and kernel size.
CONVS = [
    ((2, 2, 5, 4), (3, 2, 3, 2), 1, 0, True),
    ((1, 1, 4, 5), (2, 1, 3, 3), 1, (1, 2), False),
    ((1, 2, 3, 4), (2, 2, 2, 2), 1, (3, 1), True),
    ((2, 2, 5, 4), (3, 2, 3, 3), (2, 1), 1, True),
    ((1, 5, 4, 3), (2, 5, 3, 3), 1, (1, 0), True),
    ((2, 1, 6, 5), (2, 1, 4, 3), 1, 1, True),
]


def test_routes_cover_direct_and_im2col():
    routes = {
        cfg[2] == 1
        and cfg[0][1] <= conv_ops.DIRECT_MAX_CHANNELS
        and np.prod(cfg[1][2:]) <= conv_ops.DIRECT_MAX_TAPS
        for cfg in CONVS
    }
    assert routes == {True, False}


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, bias", CONVS)
def test_conv2d_gradcheck(x_shape, w_shape, stride, padding, bias):
    inputs = [rand(*x_shape, seed=1), rand(*w_shape, seed=2)]
    if bias:
        inputs.append(rand(w_shape[0], seed=3))
    gradcheck(lambda x, w, b=None: F.conv2d(x, w, b, stride, padding), inputs)


@pytest.mark.parametrize(
    "op, kernel_size, stride",
    [("max_pool2d", 2, None), ("max_pool2d", 3, 1), ("avg_pool2d", (2, 3), (1, 2))],
)
def test_pool_gradcheck(op, kernel_size, stride):
    gradcheck(lambda x: getattr(F, op)(x, kernel_size, stride), [rand(2, 2, 5, 6, seed=4)])


def torch_close(ours, theirs):
    """Equal to PyTorch's float32 result within 1e-4 of its largest magnitude."""
    theirs = theirs.detach().numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4 * np.abs(theirs).max())


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, bias", CONVS)
def test_conv2d_matches_torch(x_shape, w_shape, stride, padding, bias):
    torch = pytest.importorskip("torch")
    x = rand(*x_shape, seed=5, dtype=np.float32, requires_grad=True)
    w = rand(*w_shape, seed=6, dtype=np.float32, requires_grad=True)
    b = rand(w_shape[0], seed=7, dtype=np.float32, requires_grad=True) if bias else None
    g = np.random.default_rng(8).standard_normal(F.conv2d(x, w, b, stride, padding).shape)
    g = g.astype(np.float32)
    F.conv2d(x, w, b, stride, padding).backward(g)

    tx, tw = (torch.tensor(t.data, requires_grad=True) for t in (x, w))
    tb = torch.tensor(b.data, requires_grad=True) if bias else None
    out = torch.nn.functional.conv2d(tx, tw, tb, stride, padding)
    out.backward(torch.from_numpy(g))
    torch_close(F.conv2d(x, w, b, stride, padding).data, out)
    torch_close(x.grad, tx.grad)
    torch_close(w.grad, tw.grad)
    if bias:
        torch_close(b.grad, tb.grad)


@pytest.mark.parametrize(
    "shape, kernel_size, stride",
    [((4, 3, 8, 8), 2, None), ((2, 2, 9, 7), 3, 2), ((2, 2, 7, 6), (2, 3), (1, 2))],
)
def test_pools_match_torch(shape, kernel_size, stride):
    torch = pytest.importorskip("torch")
    for name in ("max_pool2d", "avg_pool2d"):
        x = rand(*shape, seed=9, dtype=np.float32, requires_grad=True)
        out = getattr(F, name)(x, kernel_size, stride)
        g = np.random.default_rng(10).standard_normal(out.shape).astype(np.float32)
        out.backward(g)
        tx = torch.tensor(x.data, requires_grad=True)
        theirs = getattr(torch.nn.functional, name)(tx, kernel_size, stride)
        theirs.backward(torch.from_numpy(g))
        torch_close(out.data, theirs)
        torch_close(x.grad, tx.grad)


def test_input_gradient_is_skipped_when_the_input_needs_none(monkeypatch):
    calls = []
    direct = cpu.conv2d_forward_direct
    monkeypatch.setattr(cpu, "conv2d_forward_direct", lambda *a: calls.append(1) or direct(*a))
    w = rand(4, 1, 3, 3, seed=11, requires_grad=True)
    for requires_grad, expected_calls in ((False, 1), (True, 2)):
        calls.clear()
        x = rand(2, 1, 6, 6, seed=12, requires_grad=requires_grad)
        F.conv2d(x, w).sum().backward()
        assert len(calls) == expected_calls
        assert (x.grad is not None) == requires_grad
    assert w.grad is not None


def test_no_graph_is_recorded_without_grad():
    out = F.conv2d(rand(1, 1, 4, 4), rand(2, 1, 3, 3))
    assert not out.requires_grad and out.shape == (1, 2, 2, 2)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: F.conv2d(rand(1, 4, 4), rand(2, 1, 3, 3)), "shape (N, C, H, W)"),
        (
            lambda: F.conv2d(rand(1, 2, 4, 4), rand(2, 3, 3, 3)),
            "2 channels but the weight expects 3",
        ),
        (lambda: F.conv2d(rand(1, 1, 4, 4), rand(2, 3, 3)), "weight of shape"),
        (lambda: F.conv2d(rand(1, 1, 4, 4), rand(2, 1, 3, 3), rand(3)), "bias of shape (2,)"),
        (lambda: F.conv2d(rand(1, 1, 2, 4), rand(2, 1, 3, 3)), "larger than the input height"),
        (lambda: F.conv2d(rand(1, 1, 4, 4), rand(2, 1, 3, 3), stride=0), "stride must be"),
        (lambda: F.conv2d(rand(1, 1, 4, 4), rand(2, 1, 3, 3), padding=(1,)), "padding must"),
        (
            lambda: F.conv2d(rand(1, 1, 4, 4), rand(2, 1, 3, 3, dtype=np.float32)),
            "weight is float32 but the input is float64",
        ),
        (
            lambda: F.conv2d(rand(1, 1, 4, 4), rand(2, 1, 3, 3), rand(2, dtype=np.float32)),
            "bias is float32 but the input is float64",
        ),
        (lambda: F.max_pool2d(rand(2, 8, 8), 2), "shape (N, C, H, W)"),
        (lambda: F.avg_pool2d(rand(1, 1, 3, 8), 4), "larger than the input height"),
        (lambda: F.max_pool2d(rand(1, 1, 4, 4), 2.5), "kernel_size must be"),
        (lambda: nn.Conv2d(0, 2, 3), "in_channels must be a positive int"),
        (lambda: nn.MaxPool2d(2, stride=-1), "stride must be"),
        (lambda: nn.Conv2d(3, 2, 3)(rand(1, 1, 5, 5, dtype=np.float32)), "1 channels"),
    ],
)
def test_bad_input_raises_a_clear_error(call, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call()


def test_conv2d_layer():
    layer = nn.Conv2d(3, 8, (3, 2), stride=2, padding=1, rng=np.random.default_rng(0))
    assert layer.weight.shape == (8, 3, 3, 2) and layer.bias.shape == (8,)
    assert layer.weight.dtype == np.float32
    bound = np.sqrt(6 / (3 * 3 * 2))  # He uniform over the fan-in
    assert np.abs(layer.weight.data).max() <= bound and np.abs(layer.weight.data).max() > bound / 2
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    x = rand(2, 3, 7, 6, dtype=np.float32)
    expected = F.conv2d(x, layer.weight, layer.bias, 2, 1)
    np.testing.assert_array_equal(layer(x).data, expected.data)
    assert layer(x).shape == (2, 8, 4, 4)
    same = nn.Conv2d(3, 8, (3, 2), rng=np.random.default_rng(0), bias=False)
    np.testing.assert_array_equal(same.weight.data, layer.weight.data)
    assert same.bias is None and len(list(same.parameters())) == 1


def test_pool_layers():
    x = rand(2, 3, 7, 6, dtype=np.float32)
    np.testing.assert_array_equal(nn.MaxPool2d(2)(x).data, F.max_pool2d(x, 2).data)
    np.testing.assert_array_equal(nn.AvgPool2d(3, 1)(x).data, F.avg_pool2d(x, 3, 1).data)
    assert nn.MaxPool2d(2)(x).shape == (2, 3, 3, 3)
    assert list(nn.MaxPool2d(2).parameters()) == []


def test_tutorial_cnn_matches_torch():
    """Conv2d -> ReLU -> MaxPool2d -> Flatten -> Linear, gradients of every parameter."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(13)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, rng=rng),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(36, 3, rng=rng),
    )
    theirs = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(36, 3),
    )
    with torch.no_grad():
        for p, q in zip(model.parameters(), theirs.parameters(), strict=True):
            q.copy_(torch.from_numpy(p.data))
    x = rng.standard_normal((5, 1, 8, 8)).astype(np.float32)
    model(tensor(x)).sum().backward()
    out = theirs(torch.from_numpy(x))
    out.sum().backward()
    torch_close(model(tensor(x)).data, out)
    for p, q in zip(model.parameters(), theirs.parameters(), strict=True):
        torch_close(p.grad, q.grad)
