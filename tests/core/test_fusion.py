"""Sequential's fused chains: the same values and gradients as the layers one by one (and as
PyTorch), the same parameters, finite differences for the fused ops, and what is not fused."""

import numpy as np
import pytest

from nanoml import nn
from nanoml.nn.fusion import fused_steps
from nanoml.ops import fused
from nanoml.tensor import tensor
from nanoml.testing import gradcheck


def rand(*shape, seed=0, dtype=np.float64, requires_grad=False):
    data = np.random.default_rng(seed).uniform(-1, 1, shape)
    return tensor(data, requires_grad=requires_grad, dtype=dtype)


def conv(c_in, c_out, k, **kw):
    return nn.Conv2d(c_in, c_out, k, rng=np.random.default_rng(c_in * 10 + c_out), **kw)


# (layers, input shape, steps once fused): every chain Sequential fuses, on the routes of
# the convolution (direct with few channels, im2col otherwise; strides, padding; the
# kernel-fused conv + pool + ReLU) and overlapping pools.
CHAINS = {
    "conv-relu": (lambda: [conv(3, 4, 3, padding=1), nn.ReLU()], (2, 3, 6, 6), 1),
    "conv-relu-gemm": (lambda: [conv(6, 4, 3, stride=2), nn.ReLU()], (2, 6, 7, 7), 1),
    "conv-relu-pool": (lambda: [conv(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2)], (2, 1, 8, 8), 1),
    "conv-pool-relu": (lambda: [conv(6, 5, 2), nn.MaxPool2d(2), nn.ReLU()], (2, 6, 7, 7), 1),
    "conv-relu-pool-overlap": (lambda: [conv(2, 3, 3, padding=1), nn.ReLU(),
                                        nn.MaxPool2d(3, stride=2)], (2, 2, 7, 7), 1),
    "conv-pool": (lambda: [conv(5, 3, 3, stride=2, padding=1), nn.MaxPool2d(2)],
                  (1, 5, 8, 8), 1),
    "linear-relu": (lambda: [nn.Flatten(), nn.Linear(12, 7, rng=np.random.default_rng(1)),
                             nn.ReLU(), nn.Linear(7, 3, rng=np.random.default_rng(2))],
                    (4, 3, 2, 2), 3),
    "convnet": (lambda: [conv(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), conv(4, 6, 3), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.5),
                         nn.Linear(6, 3, rng=np.random.default_rng(3))], (3, 1, 10, 10), 5),
}


def forward_backward(model, x_shape, dtype):
    x = rand(*x_shape, seed=4, dtype=dtype, requires_grad=True)
    model.eval()  # Dropout off: both runs see the same function
    out = model(x)
    out.backward(np.random.default_rng(7).standard_normal(out.shape).astype(dtype))
    return [out.data, x.grad] + [p.grad for p in model.parameters()]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", CHAINS)
def test_fused_equals_the_layers_one_by_one(name, dtype):
    make, x_shape, steps = CHAINS[name]
    layers = make()
    model = nn.Sequential(*layers)
    assert len(fused_steps(layers)) == steps
    for p in model.parameters():
        p.data = p.data.astype(dtype)
    fused_run = forward_backward(model, x_shape, dtype)
    for p in model.parameters():
        p.grad = None
    model.fuse = False
    plain_run = forward_backward(model, x_shape, dtype)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for ours, theirs in zip(fused_run, plain_run, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=tol, atol=tol)


@pytest.mark.parametrize("op, args", [
    (fused.conv2d_relu, lambda: [rand(2, 2, 5, 5, seed=1), rand(3, 2, 3, 3, seed=2),
                                 rand(3, seed=3)]),
    (lambda x, w, b: fused.conv2d_max_pool(x, w, b, 2, 1, 2, relu=True),
     lambda: [rand(1, 6, 6, 6, seed=1), rand(2, 6, 3, 3, seed=2), rand(2, seed=3)]),
    (lambda x, w, b: fused.conv2d_max_pool(x, w, b, 1, 0, 3, 2),
     lambda: [rand(1, 2, 7, 7, seed=1), rand(2, 2, 2, 2, seed=2), rand(2, seed=3)]),
    (fused.linear_relu, lambda: [rand(4, 5, seed=1), rand(3, 5, seed=2), rand(3, seed=3)]),
])
def test_fused_ops_pass_finite_differences(op, args):
    gradcheck(op, args())


def test_parameters_and_state_dict_keys_are_the_layers():
    make, _, _ = CHAINS["convnet"]
    model = nn.Sequential(*make())
    assert list(model.state_dict()) == ["0.weight", "0.bias", "3.weight", "3.bias",
                                        "8.weight", "8.bias"]


def test_a_subclass_or_a_patched_layer_runs_as_written():
    class Leaky(nn.ReLU):
        def forward(self, x):
            return x * 2

    layers = [conv(1, 2, 3), Leaky()]
    assert len(fused_steps(layers)) == 2
    patched = nn.ReLU()
    patched.forward = lambda x: x * 3
    layers = [nn.Linear(3, 2), patched]
    assert len(fused_steps(layers)) == 2
    out = nn.Sequential(*layers)(tensor(np.ones((1, 3))))
    np.testing.assert_allclose(out.data, 3 * layers[0](tensor(np.ones((1, 3)))).data)


def test_keras_convnet_matches_torch():
    torch = pytest.importorskip("torch", reason="the PyTorch comparison needs torch installed")
    tnn = torch.nn
    theirs = tnn.Sequential(tnn.Conv2d(1, 8, 3), tnn.ReLU(), tnn.MaxPool2d(2),
                            tnn.Conv2d(8, 16, 3), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Flatten(),
                            tnn.Linear(16 * 5 * 5, 10))
    ours = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * 5 * 5, 10))
    with torch.no_grad():
        for mine, other in zip(ours.parameters(), theirs.parameters(), strict=True):
            mine.data[...] = other.detach().numpy()
    x = np.random.default_rng(0).random((4, 1, 28, 28), dtype=np.float32)
    y = np.array([1, 2, 3, 4])
    from nanoml.losses import cross_entropy

    cross_entropy(ours(tensor(x)), y).backward()
    tx = torch.from_numpy(x)
    torch.nn.functional.cross_entropy(theirs(tx), torch.from_numpy(y)).backward()
    for mine, other in zip(ours.parameters(), theirs.parameters(), strict=True):
        np.testing.assert_allclose(mine.grad, other.grad.numpy(), rtol=1e-4, atol=1e-5)
