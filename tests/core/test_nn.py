"""Module registration, state_dict, and every core layer (gradients, modes, PyTorch parity)."""

import numpy as np
import pytest

import nanoml.functional as F
from nanoml import nn
from nanoml.errors import InputError
from nanoml.tensor import no_grad, tensor
from nanoml.testing import gradcheck


def rng(seed=0):
    return np.random.default_rng(seed)


def x64(*shape, seed=0):
    return tensor(rng(seed).standard_normal(shape), dtype=np.float64)


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3, rng=rng(1))
        self.bn = nn.BatchNorm1d(3)
        self.heads = nn.ModuleList([nn.Linear(3, 2, rng=rng(2)), nn.Linear(3, 1, rng=rng(3))])
        self.scale = nn.Parameter(np.ones(1, dtype=np.float32))

    def forward(self, x):
        h = self.bn(self.fc(x)).relu()
        return self.heads[0](h) * self.scale, self.heads[1](h)


def test_parameters_buffers_and_modules_are_registered_with_dotted_names():
    model = Block()
    names = [n for n, _ in model.named_parameters()]
    assert names == [
        "scale", "fc.weight", "fc.bias", "bn.weight", "bn.bias",
        "heads.0.weight", "heads.0.bias", "heads.1.weight", "heads.1.bias",
    ]
    assert set(model.state_dict()) == set(names) | {"bn.running_mean", "bn.running_var"}
    assert all(p.requires_grad for p in model.parameters())
    assert [type(m).__name__ for m in model.children()] == ["Linear", "BatchNorm1d", "ModuleList"]


def test_reassigning_or_deleting_an_attribute_unregisters_it():
    model = Block()
    model.scale = None
    del model.heads
    assert "scale" not in dict(model.named_parameters())
    assert not any(n.startswith("heads") for n, _ in model.named_parameters())


def test_shared_parameter_is_listed_once():
    seq = nn.Sequential(nn.Linear(2, 2, rng=rng()), nn.ReLU())
    seq.append(seq[0])
    assert len(list(seq.parameters())) == 2


def test_module_without_super_init_gets_a_clear_error():
    class Broken(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(np.zeros(2))

    with pytest.raises(TypeError, match="super"):
        Broken()


def test_train_eval_propagate_and_zero_grad():
    model = Block()
    assert model.eval() is model and not model.bn.training and not model.heads[1].training
    model.train()
    assert model.bn.training
    out, other = model(tensor(rng().standard_normal((5, 4))))
    (out.sum() + other.sum()).backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_state_dict_round_trip_restores_outputs_and_checks_keys():
    a, b = Block(), Block()
    x = tensor(rng(5).standard_normal((6, 4)))
    a(x)  # moves a's running statistics
    b.heads[0].weight.data[:] = 7.0
    state = a.state_dict()
    state_copy = {k: v.copy() for k, v in state.items()}
    b.load_state_dict(state)
    for key, value in b.state_dict().items():
        np.testing.assert_array_equal(value, state_copy[key])
    a.eval(), b.eval()
    np.testing.assert_array_equal(a(x)[0].data, b(x)[0].data)
    state["fc.weight"][:] = 0  # state_dict returns copies
    assert a.fc.weight.data.any()
    with pytest.raises(InputError, match="missing.*fc.bias"):
        b.load_state_dict({k: v for k, v in state.items() if k != "fc.bias"})
    bad = dict(state, **{"fc.bias": np.zeros(5)})
    with pytest.raises(InputError, match="fc.bias.*shape"):
        b.load_state_dict(bad)


def test_linear_layer_matches_formula_and_gradients():
    layer = nn.Linear(4, 3, rng=rng())
    assert layer.weight.shape == (3, 4) and layer.weight.dtype == np.float32
    bound = np.sqrt(6 / 4)
    assert np.abs(layer.weight.data).max() <= bound
    x = x64(5, 4)
    np.testing.assert_allclose(
        layer(x).data, x.data @ layer.weight.data.T + layer.bias.data, rtol=1e-6
    )
    gradcheck(lambda x, w, b: _with(layer, w, b)(x), [x, layer.weight, layer.bias])
    assert nn.Linear(4, 3, bias=False, rng=rng()).bias is None


def _with(layer, weight, bias):
    """`layer` with its parameters swapped for the float64 copies gradcheck differentiates."""
    layer.weight, layer.bias = weight, bias
    return layer


def test_initialisers_are_seeded_float32_with_the_right_bounds():
    a = nn.init.he_uniform((200, 50), 50, rng(3))
    b = nn.init.he_uniform((200, 50), 50, rng(3))
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32 and np.abs(a).max() <= np.sqrt(6 / 50)
    assert np.abs(a).max() > 0.9 * np.sqrt(6 / 50)
    g = nn.init.glorot_uniform((100, 30), 30, 100, rng(3))
    assert g.dtype == np.float32 and np.abs(g).max() <= np.sqrt(6 / 130)


@pytest.mark.parametrize(
    "layer,fn",
    [
        (nn.ReLU(), lambda x: np.maximum(x, 0)),
        (nn.LeakyReLU(0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
        (nn.Sigmoid(), lambda x: 1 / (1 + np.exp(-x))),
        (nn.Tanh(), np.tanh),
        (nn.Softmax(), lambda x: np.exp(x) / np.exp(x).sum(-1, keepdims=True)),
        (nn.Flatten(), lambda x: x.reshape(x.shape[0], -1)),
    ],
)
def test_stateless_layers(layer, fn):
    x = x64(3, 2, 4)
    np.testing.assert_allclose(layer(x).data, fn(x.data), rtol=1e-12)
    gradcheck(layer, [x])


def test_dropout_train_and_eval():
    layer = nn.Dropout(0.25, rng=rng(4))
    x = tensor(np.ones((200, 50)), requires_grad=True)
    out = layer(x)
    kept = out.data != 0
    assert 0.72 < kept.mean() < 0.78
    np.testing.assert_allclose(out.data[kept], 1 / 0.75, rtol=1e-6)
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, out.data)  # same mask and scale going back
    layer.eval()
    assert layer(x) is x
    again = nn.Dropout(0.25, rng=rng(4))(x)
    np.testing.assert_array_equal(again.data, out.data)  # seeded masks repeat
    with pytest.raises(InputError, match="p must be"):
        nn.Dropout(1.0)(x)


def test_dropout_gradient_with_a_fixed_mask():
    x = x64(4, 5)
    gradcheck(lambda t: nn.Dropout(0.5, rng=rng(1))(t), [x])


@pytest.mark.parametrize("shape,cls", [((6, 3), nn.BatchNorm1d), ((4, 3, 5), nn.BatchNorm1d),
                                       ((3, 3, 2, 2), nn.BatchNorm2d)])
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_gradients(shape, cls, training):
    layer = cls(3)
    layer.running_mean[:] = [0.1, -0.2, 0.3]
    layer.running_var[:] = [0.5, 1.5, 2.0]
    layer.train(training)
    w, b = x64(3, seed=1), x64(3, seed=2)
    # Copies of the running statistics, so each of gradcheck's forwards starts the same.
    rm, rv = layer.running_mean.copy(), layer.running_var.copy()

    def forward(x, w, b):
        layer.running_mean[:], layer.running_var[:] = rm, rv
        return _with(layer, w, b)(x)

    gradcheck(forward, [x64(*shape), w, b])


def test_batchnorm_rejects_wrong_rank():
    with pytest.raises(InputError, match="BatchNorm2d expects input with 4"):
        nn.BatchNorm2d(3)(tensor(np.ones((2, 3))))


@pytest.mark.parametrize("shape,name", [((8, 3), "BatchNorm1d"), ((4, 3, 5), "BatchNorm1d"),
                                        ((4, 3, 2, 3), "BatchNorm2d")])
def test_batchnorm_matches_torch_in_train_and_eval(shape, name):
    torch = pytest.importorskip("torch")
    ours = getattr(nn, name)(3, momentum=0.2)
    theirs = getattr(torch.nn, name)(3, momentum=0.2)
    ours.weight.data[:] = [1.5, 0.5, -1.0]
    ours.bias.data[:] = [0.1, 0.2, 0.3]
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(ours.weight.data))
        theirs.bias.copy_(torch.from_numpy(ours.bias.data))
    for step in range(3):
        data = rng(step).standard_normal(shape).astype(np.float32) * 2 + 1
        x = tensor(data, requires_grad=True)
        tx = torch.tensor(data, requires_grad=True)
        g = rng(10 + step).standard_normal(shape).astype(np.float32)
        out, tout = ours(x), theirs(tx)
        np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-4, atol=1e-5)
        out.backward(g)
        tout.backward(torch.from_numpy(g))
        np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), rtol=1e-4)
        np.testing.assert_allclose(ours.bias.grad, theirs.bias.grad.numpy(), rtol=1e-4)
        ours.zero_grad(), theirs.zero_grad()
    state = ours.state_dict()
    np.testing.assert_allclose(state["running_mean"], theirs.running_mean.numpy(), rtol=1e-5)
    np.testing.assert_allclose(state["running_var"], theirs.running_var.numpy(), rtol=1e-5)
    ours.eval(), theirs.eval()
    data = rng(9).standard_normal(shape).astype(np.float32)
    with no_grad():
        np.testing.assert_allclose(
            ours(tensor(data)).data, theirs(torch.from_numpy(data)).detach().numpy(),
            rtol=1e-4, atol=1e-5,
        )


def test_embedding_lookup_gradients_and_errors():
    layer = nn.Embedding(5, 3, rng=rng())
    ids = np.array([[0, 4, 0], [2, 2, 1]])
    out = layer(ids)
    assert out.shape == (2, 3, 3)
    np.testing.assert_array_equal(out.data, layer.weight.data[ids])
    out.sum().backward()
    np.testing.assert_array_equal(layer.weight.grad[:, 0], [2, 1, 2, 0, 1])
    gradcheck(lambda w: F.embedding(ids, w), [x64(5, 3)])
    with pytest.raises(InputError, match=r"\[0, 5\)"):
        layer(np.array([5]))
    with pytest.raises(InputError, match="integers"):
        layer(np.array([0.5]))


def test_sequential_runs_layers_in_order_and_indexes():
    model = nn.Sequential(nn.Linear(3, 4, rng=rng()), nn.Tanh(), nn.Linear(4, 2, rng=rng(1)))
    x = x64(5, 3)
    h = np.tanh(x.data @ model[0].weight.data.T + model[0].bias.data)
    expected = h @ model[2].weight.data.T + model[2].bias.data
    np.testing.assert_allclose(model(x).data, expected, rtol=1e-6)
    assert len(model) == 3 and isinstance(model[1], nn.Tanh)
    assert "Linear(in_features=3, out_features=4, bias=True)" in repr(model)
