"""Tensors, modules, optimizers and learners on the cuda device compute what they do on the CPU.

Every op runs on both devices from the same float64 inputs; outputs and the gradients of
every input must agree. Shapes are tiny: the CUDA simulator runs each thread in Python.
"""

import numpy as np
import pytest

import nanoml.functional as F
from nanoml import losses, nn, optim
from nanoml.errors import DeviceError, InputError
from nanoml.tensor import Tensor

TOL = {"rtol": 1e-9, "atol": 1e-12}  # float64 on both devices; sums may run in another order


def inputs(rng, *shapes):
    return [rng.standard_normal(shape) for shape in shapes]


def run(fn, arrays, device, positive=False):
    """fn(*tensors) on `device`; -> (output on the host, gradient of every input)."""
    leaves = [Tensor(np.abs(a) + 0.5 if positive else a, requires_grad=True, dtype=np.float64)
              for a in arrays]
    out = fn(*[leaf.to(device) for leaf in leaves])
    weights = np.linspace(-1, 1, out.data.size).reshape(out.shape)
    (out * Tensor(weights, dtype=np.float64).to(device)).sum().backward()
    return out.cpu().data, [leaf.grad for leaf in leaves]


def same_on_both(fn, arrays, **kwargs):
    expected, expected_grads = run(fn, arrays, "cpu", **kwargs)
    got, grads = run(fn, arrays, "cuda", **kwargs)
    np.testing.assert_allclose(got, expected, **TOL)
    for g, e in zip(grads, expected_grads, strict=True):
        assert e is not None and g is not None
        assert isinstance(g, np.ndarray)  # the gradient went back to the CPU leaf
        np.testing.assert_allclose(g, e, **TOL)


ELEMENTWISE = {
    "add broadcast": (lambda a, b: a + b, [(2, 3), (3,)]),
    "sub broadcast": (lambda a, b: a - b, [(2, 1), (1, 3)]),
    "mul broadcast": (lambda a, b: a * b, [(2, 3), (2, 1)]),
    "div": (lambda a, b: a / (b * b + 1), [(2, 3), (2, 3)]),
    "scalars": (lambda a: 2.0 - (a * 3 + 1) / 4.0, [(2, 3)]),
    "neg and square": (lambda a: -(a ** 2), [(4,)]),
    "exp": (lambda a: a.exp(), [(2, 3)]),
    "tanh": (lambda a: a.tanh(), [(2, 3)]),
    "sigmoid": (lambda a: a.sigmoid(), [(2, 3)]),
    "log and sqrt": (lambda a: (a * a + 0.5).log() + (a * a + 0.25).sqrt(), [(2, 3)]),
    "abs": (lambda a: a.abs(), [(2, 3)]),
    "clip": (lambda a: a.clip(-0.5, 0.3) + a.clip(low=0.1) + a.clip(high=-0.2), [(3, 4)]),
    "leaky relu": (lambda a: F.leaky_relu(a, 0.2), [(2, 3)]),
    "relu": (lambda a: a.relu(), [(2, 3)]),
    "sum all": (lambda a: a.sum(), [(2, 3, 2)]),
    "sum axes": (lambda a: a.sum(axis=(0, 2)), [(2, 3, 2)]),
    "mean keepdims": (lambda a: a.mean(axis=1, keepdims=True), [(2, 3, 2)]),
    "matmul": (lambda a, b: a @ b, [(2, 3), (3, 4)]),
    "linear 3-d": (lambda x, w, b: F.linear(x, w, b), [(2, 2, 3), (4, 3), (4,)]),
    "reshape transpose": (lambda a: a.reshape(3, 4).T.transpose(), [(2, 6)]),
    "flatten": (lambda a: a.flatten(1), [(2, 2, 3)]),
    "basic index": (lambda a: a[1:, ::-2, None, 0], [(3, 5, 2)]),
    "one element": (lambda a: a[1, -1] * a[0, 2], [(2, 3)]),
    "concatenate": (lambda a, b: F.concatenate([a, b], axis=1), [(2, 1, 2), (2, 3, 2)]),
    "stack": (lambda a, b: F.stack([a, b], axis=-1), [(2, 3), (2, 3)]),
}


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_tensor_ops(name):
    fn, shapes = ELEMENTWISE[name]
    same_on_both(fn, inputs(np.random.default_rng(0), *shapes))


LAYERS = {
    "conv2d direct, padded": (lambda x, w, b: F.conv2d(x, w, b, padding=1),
                              [(2, 1, 4, 4), (2, 1, 3, 3), (2,)]),
    "conv2d im2col, strided": (lambda x, w, b: F.conv2d(x, w, b, stride=2),
                               [(1, 5, 5, 5), (2, 5, 2, 2), (2,)]),
    "max pool": (lambda x: F.max_pool2d(x, 2), [(1, 2, 4, 5)]),
    "avg pool": (lambda x: F.avg_pool2d(x, 2, stride=1), [(1, 2, 3, 3)]),
    "rnn": (lambda x, wi, wh, bi, bh: F.rnn(x, wi, wh, bi, bh)[0],
            [(2, 3, 2), (3, 2), (3, 3), (3,), (3,)]),
    "lstm": (lambda x, wi, wh, bi, bh: F.lstm(x, wi, wh, bi, bh)[1][1],
             [(2, 2, 2), (8, 2), (8, 2), (8,), (8,)]),
    "gru": (lambda x, wi, wh, bi, bh: F.gru(x, wi, wh, bi, bh)[0],
            [(1, 3, 2), (6, 2), (6, 2), (6,), (6,)]),
    "mse": (lambda a, b: F.mse(a, b), [(3, 2), (3, 2)]),
    "binary cross entropy": (lambda z, t: F.binary_cross_entropy(z * 3, t.sigmoid()),
                             [(3, 2), (3, 2)]),
    "kl divergence": (lambda mu, logvar: F.kl_divergence(mu, logvar), [(3, 2), (3, 2)]),
    "cross entropy": (lambda z: F.cross_entropy(z, np.array([0, 2, 1])), [(3, 4)]),
}


@pytest.mark.parametrize("name", LAYERS)
def test_layer_ops(name):
    fn, shapes = LAYERS[name]
    same_on_both(fn, inputs(np.random.default_rng(1), *shapes))


def test_dropout_draws_the_same_mask_on_both_devices():
    def fn(x):
        return F.dropout(x, 0.5, rng=np.random.default_rng(3))

    same_on_both(fn, inputs(np.random.default_rng(2), (4, 5)))


def test_to_moves_data_and_keeps_dtype():
    t = Tensor(np.arange(6.0).reshape(2, 3), dtype=np.float64)
    on = t.to("cuda")
    assert on.device == "cuda" and t.device == "cpu"
    assert on.to("cuda") is on and t.to("cpu") is t
    assert on.shape == (2, 3) and on.dtype == np.float64
    back = on.to("cpu")
    np.testing.assert_array_equal(back.numpy(), t.numpy())
    assert "device='cuda'" in repr(on)
    assert on.sum().item() == 15.0


def test_cuda_tensor_refuses_numpy():
    on = Tensor([1.0, 2.0]).to("cuda")
    with pytest.raises(DeviceError, match=r"call \.to\('cpu'\) first"):
        on.numpy()
    with pytest.raises(DeviceError):
        np.asarray(on)


def test_unknown_device():
    with pytest.raises(InputError, match="unknown device 'tpu'"):
        Tensor([1.0]).to("tpu")


def test_op_without_a_cuda_kernel_says_so():
    on = Tensor([1.0, 2.0]).to("cuda")
    with pytest.raises(DeviceError, match=r"pow is not implemented on the cuda device"):
        on ** Tensor([1.0, 2.0]).to("cuda")
    with pytest.raises(DeviceError, match=r"pow is not implemented on the cuda device"):
        on ** 3
    with pytest.raises(DeviceError, match=r"softmax is not implemented on the cuda device"):
        F.softmax(on)


def test_operands_on_two_devices():
    with pytest.raises(DeviceError, match="different devices"):
        Tensor([1.0, 2.0]).to("cuda") + Tensor([1.0, 2.0])
    with pytest.raises(DeviceError, match="different devices"):
        F.linear(Tensor(np.ones((1, 2))), Tensor(np.ones((3, 2))).to("cuda"))
    with pytest.raises(DeviceError, match="different devices"):
        F.linear(Tensor(np.ones((1, 2))), Tensor(np.ones((3, 2))), Tensor(np.ones(3)).to("cuda"))
    with pytest.raises(DeviceError, match="different devices"):
        losses.binary_cross_entropy(Tensor([0.5, -1.0]).to("cuda"), Tensor([1.0, 0.0]))


def small_cnn(rng):
    model = nn.Sequential(nn.Conv2d(1, 2, 3, rng=rng), nn.MaxPool2d(2), nn.ReLU(), nn.Flatten(),
                          nn.Linear(8, 3, rng=rng))
    x = rng.standard_normal((2, 1, 6, 6)).astype(np.float32)
    return model, x, np.array([0, 2])


class _LastStep(nn.Module):
    def __init__(self, rng):
        super().__init__()
        self.lstm = nn.LSTM(3, 4, batch_first=True, rng=rng)
        self.head = nn.Linear(4, 3, rng=rng)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


def small_lstm(rng):
    x = rng.standard_normal((2, 3, 3)).astype(np.float32)
    return _LastStep(rng), x, np.array([1, 2])


@pytest.mark.parametrize("build", [small_cnn, small_lstm], ids=["cnn", "lstm"])
def test_training_step_on_cuda_matches_cpu(build):
    """One Adam step of a model built from nn layers, moved with Module.to."""
    results = {}
    for device in ("cpu", "cuda"):
        model, x, y = build(np.random.default_rng(0))
        model.to(device)
        opt = optim.Adam(model.parameters(), lr=1e-2)
        loss = F.cross_entropy(model(Tensor(x).to(device)), y)
        loss.backward()
        grads = {k: np.array(p.grad if device == "cpu" else p.grad.copy_to_host())
                 for k, p in model.named_parameters()}
        opt.step()
        results[device] = loss.item(), grads, model.state_dict()
    (cpu_loss, cpu_grads, cpu_state), (loss, grads, state) = results["cpu"], results["cuda"]
    assert loss == pytest.approx(cpu_loss, rel=1e-6)
    for k in cpu_grads:
        assert np.abs(cpu_grads[k]).max() > 0, k
        np.testing.assert_allclose(grads[k], cpu_grads[k], rtol=1e-4, atol=1e-6, err_msg=k)
        np.testing.assert_allclose(state[k], cpu_state[k], rtol=1e-5, atol=1e-6, err_msg=k)


def test_module_to_keeps_parameters_and_state_dict_is_on_the_host():
    layer = nn.Linear(3, 2, rng=np.random.default_rng(0))
    weight = layer.weight
    before = layer.state_dict()
    assert layer.to("cuda") is layer and layer.weight is weight
    assert weight.device == "cuda"
    state = layer.state_dict()
    assert all(isinstance(v, np.ndarray) for v in state.values())
    np.testing.assert_array_equal(state["weight"], before["weight"])
    layer.load_state_dict({"weight": np.ones((2, 3)), "bias": np.zeros(2)})
    assert weight.device == "cuda"
    np.testing.assert_array_equal(layer.to("cpu").weight.numpy(), np.ones((2, 3)))


def test_module_to_reads_the_device_name_as_tensor_to_does():
    norm = nn.BatchNorm1d(2)
    norm.to("CUDA")
    assert norm.weight.device == "cuda"
    assert not isinstance(norm.running_mean, np.ndarray)
    norm.to("Cpu")
    assert norm.weight.device == "cpu" and isinstance(norm.running_mean, np.ndarray)


@pytest.mark.parametrize("make", [
    lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    lambda p: optim.Adam(p, lr=0.1, weight_decay=0.01),
    lambda p: optim.AdamW(p, lr=0.1),
    lambda p: optim.RMSprop(p, lr=0.1, momentum=0.5),
], ids=["sgd", "adam", "adamw", "rmsprop"])
def test_optimizers_step_on_the_device(make):
    rng = np.random.default_rng(4)
    start, grad = rng.standard_normal(5).astype(np.float32), rng.standard_normal(5)
    results = []
    for device in ("cpu", "cuda"):
        param = nn.Parameter(start.copy())
        if device == "cuda":
            param.data = param.to("cuda").data
        opt = make([param])
        for _ in range(2):
            param.grad = Tensor(grad).to(device).data
            opt.step()
        results.append((Tensor(param.data).cpu().numpy(), opt.state_dict()))
    (cpu_param, cpu_state), (param, state) = results
    np.testing.assert_allclose(param, cpu_param, rtol=1e-6)
    assert state.keys() == cpu_state.keys()
    for k in state:
        np.testing.assert_allclose(state[k], cpu_state[k], rtol=1e-6, err_msg=k)


def test_clip_grad_norm_on_the_device():
    param = nn.Parameter(np.zeros(2, np.float32)).to("cuda")
    param.grad = Tensor([3.0, 4.0]).to("cuda").data
    assert optim.clip_grad_norm([param], 1.0) == pytest.approx(5.0)
    np.testing.assert_allclose(param.grad.copy_to_host(), [0.6, 0.8], rtol=1e-5)


def test_optimizer_refuses_a_parameter_moved_after_it():
    layer = nn.Linear(2, 1, rng=np.random.default_rng(0))
    opt = optim.SGD(layer.parameters(), lr=0.1)
    layer.to("cuda")
    F.linear(Tensor(np.ones((1, 2))).to("cuda"), layer.weight, layer.bias).sum().backward()
    with pytest.raises(DeviceError, match="move the model first"):
        opt.step()


@pytest.mark.parametrize(("name", "params"), [
    ("mlp", {"hidden_sizes": (6,), "dropout": 0.2, "epochs": 2}),
    ("lstm", {"hidden_size": 3, "epochs": 1}),
    ("vae", {"hidden_sizes": (4,), "latent_size": 2, "epochs": 1}),
    ("gan", {"hidden_sizes": (4,), "latent_size": 2, "epochs": 1}),
])
def test_learner_trains_on_cuda_as_on_cpu(name, params):
    from nanoml import get_learner
    from nanoml.data import load_dataset

    digits = load_dataset("digits")
    X, y = digits.X_train[:16], digits.y_train[:16]
    fitted = {device: get_learner(name)(batch_size=8, validation_fraction=0.25,
                                        device=device, **params).fit(X, y)
              for device in ("cpu", "cuda")}
    cpu, cuda = fitted["cpu"], fitted["cuda"]
    assert cuda.history_.keys() == cpu.history_.keys()
    for key in cpu.history_.keys() - {"seconds"}:
        np.testing.assert_allclose(cuda.history_[key], cpu.history_[key], rtol=1e-5, err_msg=key)
    np.testing.assert_allclose(cuda.predict(X[:4]), cpu.predict(X[:4]), rtol=1e-4, atol=1e-5)


def test_cli_runs_on_cuda_and_the_model_loads_anywhere(tmp_path):
    from click.testing import CliRunner

    from nanoml.cli import cli
    from nanoml.learner import Learner

    result = CliRunner().invoke(cli, ["run", "mlp", "--dataset", "iris", "--device", "cuda",
                                      "--epochs", "2", "--set", "hidden_sizes=4",
                                      "--out", str(tmp_path / "run")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    model = Learner.load(tmp_path / "run" / "model.npz")
    assert model.device == "cuda"
    assert next(model.module_.parameters()).device == "cpu"  # loading moves nothing
    assert model.predict(np.ones((2, 4))).shape == (2,)


def test_bad_axes_raise_as_numpy_does_on_the_cpu():
    host = Tensor(np.ones((2, 3)))
    on = host.to("cuda")
    for tensor in (host, on):
        with pytest.raises(np.exceptions.AxisError):
            tensor.sum(axis=2)
        with pytest.raises(ValueError, match="duplicate value in 'axis'"):
            tensor.sum(axis=(1, -1))
        with pytest.raises(np.exceptions.AxisError):
            F.concatenate([tensor, tensor], axis=-3)
