"""Backends: a third device is one Backend subclass, registered; no op changes for it.

The "fake" device here keeps its arrays as `FakeArray`, a NumPy array under another type,
and runs NumPy and the CPU kernels on them, so every result can be checked exactly against
the CPU. It is written the way a real device would be added: one class, one `register`.
"""

import numpy as np
import pytest

import nanoml.functional as F
from nanoml import backend, losses, nn, optim
from nanoml.backend.cpu import Cpu
from nanoml.errors import DeviceError, InputError
from nanoml.tensor import Tensor


class FakeArray(np.ndarray):
    """An array of the fake device. NumPy's math keeps the type (not np.where or
    np.concatenate, which the step below does not use); Numba takes it as an ndarray."""


class Fake(Cpu):
    """NumPy arrays under their own type, standing for memory of another device: moving to
    and from it copies, and `.numpy()` refuses its tensors as it does a GPU's."""

    name = "fake"
    array_types = (FakeArray,)
    host = False

    def empty(self, shape, dtype):
        return np.empty(shape, dtype).view(FakeArray)

    def zeros(self, shape, dtype):
        return np.zeros(shape, dtype).view(FakeArray)

    def full(self, shape, value, dtype):
        return np.full(shape, value, dtype).view(FakeArray)

    def from_host(self, array):
        return np.array(array, order="C").view(FakeArray)

    def to_host(self, a):
        return np.array(a)  # a copy, of type ndarray

    def tensor_data(self, data, dtype):
        return super().tensor_data(data, dtype).view(FakeArray)


@pytest.fixture
def fake(monkeypatch):
    """The fake device, registered for one test."""
    for registry in ("_BY_NAME", "_REGISTERED", "_ARRAYS", "_OWNERS"):
        monkeypatch.setattr(backend, registry, dict(getattr(backend, registry)))
    return backend.register(Fake())


def _step(device):
    """One Linear + ReLU + cross-entropy step with Adam on `device`: (loss, logits, grads,
    weights after the step, every array the step made that a Tensor or optimizer holds)."""
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(6, 5, rng=rng), nn.ReLU(), nn.Linear(5, 3, rng=rng))
    model.to(device)
    opt = optim.Adam(model.parameters(), lr=0.1)
    x = Tensor(rng.standard_normal((4, 6)), requires_grad=True).to(device)
    logits = model(x)
    loss = losses.cross_entropy(logits, np.array([0, 2, 1, 2]))
    opt.zero_grad()
    loss.backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    opt.step()
    made = [x.data, logits.data, loss.data, *grads.values()]
    made += [p.data for p in model.parameters()]
    made += [a for state in opt.state for a in state.values() if a.ndim]
    host = {name: backend.of(g).host_copy(g) for name, g in grads.items()}
    return loss.item(), logits.to("cpu").numpy(), host, model.state_dict(), made


def test_a_registered_device_trains_a_step_as_the_cpu_does(fake):
    cpu_loss, cpu_logits, cpu_grads, cpu_state, _ = _step("cpu")
    loss, logits, grads, state, made = _step("fake")
    assert loss == cpu_loss
    np.testing.assert_array_equal(logits, cpu_logits)
    for name in cpu_grads:
        assert np.abs(cpu_grads[name]).max() > 0, name
        np.testing.assert_array_equal(grads[name], cpu_grads[name], err_msg=name)
        np.testing.assert_array_equal(state[name], cpu_state[name], err_msg=name)
    # Every array of the step stayed on the fake device; state_dict came back to the host.
    assert all(type(a) is FakeArray for a in made), [type(a).__name__ for a in made]
    assert all(type(a) is np.ndarray for a in state.values())


def test_the_device_is_found_by_type_and_by_name(fake):
    t = Tensor([1.0, 2.0]).to("FAKE")
    assert t.device == "fake" and backend.of(t.data) is fake
    assert backend.named("fake") is fake and "fake" in backend.names()
    assert "device='fake'" in repr(t)
    assert t.to("fake") is t and t.to("cpu").device == "cpu"
    with pytest.raises(DeviceError, match=r"a fake tensor cannot be read with \.numpy\(\)"):
        t.numpy()
    with pytest.raises(DeviceError, match=r"linear got tensors on different devices "
                                          r"\(cpu and fake\)"):
        F.linear(Tensor(np.ones((1, 2))), Tensor(np.ones((3, 2))).to("fake"))


def test_gradients_travel_back_across_devices(fake):
    leaf = Tensor([1.0, -2.0, 3.0], requires_grad=True)
    (leaf.to("fake").relu() * 2).sum().backward()
    assert type(leaf.grad) is np.ndarray
    np.testing.assert_array_equal(leaf.grad, [2.0, 0.0, 2.0])


def test_a_device_without_an_op_says_so_in_one_line(fake, monkeypatch):
    monkeypatch.setattr(Fake, "numpy_arrays", False)
    with pytest.raises(DeviceError, match="^softmax is not implemented on the fake device; "):
        F.softmax(Tensor([1.0, 2.0]).to("fake"))


def test_unknown_names_and_values():
    with pytest.raises(InputError, match="unknown device 'tpu'; use one of cpu, cuda"):
        backend.named("tpu")
    # Values no device owns are host values, and not arrays.
    assert backend.of([1.0, 2.0]) is backend.CPU and backend.of(np.float32(1)) is backend.CPU
    assert not backend.is_array(np.float32(1)) and backend.is_array(np.zeros(2))
    # An ndarray subclass nobody registered is the CPU's.
    assert backend.of(np.zeros(2).view(np.memmap)) is backend.CPU


def test_check_device_name_is_for_hyperparameters():
    from nanoml.errors import ParameterError

    assert backend.check_device_name("cpu") == "cpu"
    with pytest.raises(ParameterError, match="device must be one of 'cpu', 'cuda', got 'CPU'"):
        backend.check_device_name("CPU")
