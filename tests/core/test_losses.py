"""Loss functions and the softmax cross-entropy kernels: NumPy references, PyTorch, gradients."""

import numpy as np
import pytest

from nanoml import losses
from nanoml.errors import InputError
from nanoml.kernels import cpu
from nanoml.kernels.cpu.losses import PARALLEL_MIN
from nanoml.tensor import tensor
from nanoml.testing import gradcheck


def data(*shape, seed=0, scale=1.0):
    return np.random.default_rng(seed).standard_normal(shape) * scale


def t64(array):
    return tensor(array, dtype=np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, c", [(7, 5), (3200, 105)])  # the second on every thread
def test_softmax_xent_kernels_match_numpy(dtype, n, c):
    assert (n * c >= PARALLEL_MIN) == (n > 7)
    logits = data(n, c, scale=3).astype(dtype)
    labels = np.random.default_rng(1).integers(0, c, n)
    probs = np.empty_like(logits)
    losses_out = np.empty(n, dtype=dtype)
    cpu.softmax_xent_forward(logits, labels, probs, losses_out)
    e = np.exp(logits.astype(np.float64))
    ref_probs = e / e.sum(axis=1, keepdims=True)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(probs, ref_probs, rtol=rtol)
    np.testing.assert_allclose(losses_out, -np.log(ref_probs[np.arange(n), labels]), rtol=rtol)
    grad = np.empty_like(logits)
    cpu.softmax_xent_backward(probs, labels, 0.5, grad)
    onehot = np.eye(c)[labels]
    np.testing.assert_allclose(grad, 0.5 * (ref_probs - onehot), rtol=rtol, atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_xent_masked_and_extreme_logits(dtype):
    """-inf (a masked class) and logits far below the row's maximum give probability 0, as
    NumPy's exp does; NaN shows in its row only; every shift the float32 exp sees, from 0 to
    below its range, matches NumPy's to float32 precision."""
    shifts = -np.concatenate([np.linspace(0, 90, 1001), [100, 1e4, np.inf]])
    logits = np.stack([np.r_[0.0, s] for s in shifts] + [[np.nan, 1.0]]).astype(dtype)
    n = logits.shape[0]
    labels = np.zeros(n, dtype=np.int64)
    probs, losses_out = np.empty_like(logits), np.empty(n, dtype=dtype)
    cpu.softmax_xent_forward(logits, labels, probs, losses_out)
    with np.errstate(invalid="ignore"):
        e = np.exp(logits.astype(np.float64) - np.nanmax(logits, axis=1, keepdims=True))
    ref = e / e.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probs[:-1], ref[:-1], rtol=2e-6, atol=np.finfo(dtype).tiny)
    assert (probs[-3:-1, 1] == 0).all()  # exp(-1e4), exp(-inf): exactly 0
    np.testing.assert_allclose(losses_out[-2], 0.0, atol=1e-7)  # the masked row's label: p = 1
    assert np.isnan(probs[-1]).all() and np.isnan(losses_out[-1])
    assert np.isfinite(probs[:-1]).all() and np.isfinite(losses_out[:-1]).all()


def test_cross_entropy_is_stable_and_float32_in_float32_out():
    logits = tensor([[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0]], requires_grad=True)
    loss = losses.cross_entropy(logits, np.array([1, 2]))
    assert loss.dtype == np.float32
    np.testing.assert_allclose(loss.item(), (1000.0 + np.log(3)) / 2, rtol=1e-6)
    loss.backward()
    assert np.isfinite(logits.grad).all() and logits.grad.dtype == np.float32


def test_cross_entropy_gradient_and_label_checks():
    labels = np.array([2, 0, 1, 2])
    gradcheck(lambda z: losses.cross_entropy(z, labels), [t64(data(4, 3))])
    gradcheck(lambda z: losses.cross_entropy(z * 2.0, labels) * 3.0, [t64(data(4, 3))])
    z = t64(data(4, 3))
    with pytest.raises(InputError, match=r"\[0, 3\)"):
        losses.cross_entropy(z, np.array([0, 1, 3, 0]))
    with pytest.raises(InputError, match=r"shape \(4,\)"):
        losses.cross_entropy(z, np.array([0, 1]))
    with pytest.raises(InputError, match="integer"):
        losses.cross_entropy(z, np.array([0.5, 1, 1, 0]))
    with pytest.raises(InputError, match=r"\(N, C\)"):
        losses.cross_entropy(t64(data(4)), labels)
    # Whole-number float labels (as read from a CSV) are accepted.
    np.testing.assert_allclose(
        losses.cross_entropy(z, labels.astype(float)).data, losses.cross_entropy(z, labels).data
    )


def test_regression_losses_and_their_gradients():
    pred, target = t64(data(5, 2)), data(5, 2, seed=1)
    np.testing.assert_allclose(losses.mse(pred, target).item(), np.mean((pred.data - target) ** 2))
    np.testing.assert_allclose(losses.mae(pred, target).item(), np.mean(np.abs(pred.data - target)))
    gradcheck(losses.mse, [pred, t64(target)])
    gradcheck(losses.mae, [pred, t64(target)])
    with pytest.raises(InputError, match=r"target has shape \(5,\)"):
        losses.mse(pred, target[:, 0])


def test_binary_cross_entropy_is_stable_with_gradients():
    z = t64(data(6, scale=3))
    y = (data(6, seed=2) > 0).astype(float)
    p = 1 / (1 + np.exp(-z.data))
    ref = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    np.testing.assert_allclose(losses.binary_cross_entropy(z, y).item(), ref, rtol=1e-10)
    gradcheck(losses.binary_cross_entropy, [z, t64(y * 0.8 + 0.1)])
    big = tensor([200.0, -200.0], requires_grad=True)
    loss = losses.binary_cross_entropy(big, np.array([0.0, 1.0]))
    np.testing.assert_allclose(loss.item(), 200.0, rtol=1e-6)
    loss.backward()
    np.testing.assert_allclose(big.grad, [0.5, -0.5])


def test_kl_divergence_closed_form_and_gradient():
    mu, logvar = t64(data(4, 3)), t64(data(4, 3, seed=1))
    var = np.exp(logvar.data)
    ref = np.mean(np.sum(0.5 * (mu.data**2 + var - logvar.data - 1), axis=1))
    np.testing.assert_allclose(losses.kl_divergence(mu, logvar).item(), ref, rtol=1e-12)
    assert losses.kl_divergence(t64(np.zeros((2, 3))), t64(np.zeros((2, 3)))).item() == 0
    gradcheck(losses.kl_divergence, [mu, logvar])


def test_hinge():
    s = tensor([0.5, -2.0, 3.0, 0.2], dtype=np.float64)
    y = np.array([1.0, -1.0, -1.0, -1.0])
    np.testing.assert_allclose(losses.hinge(s, y).item(), np.mean(np.maximum(0, 1 - y * s.data)))
    gradcheck(lambda t: losses.hinge(t, y), [s])
    with pytest.raises(InputError, match="-1 or \\+1"):
        losses.hinge(s, np.array([1.0, 0.0, 1.0, 1.0]))


def test_losses_match_torch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    z = data(8, 5, scale=2).astype(np.float32)
    labels = np.random.default_rng(3).integers(0, 5, 8)
    y = data(8, 5, seed=4).astype(np.float32)
    yb = (y > 0).astype(np.float32)
    mu, logvar = data(8, 5, seed=5).astype(np.float32), data(8, 5, seed=6).astype(np.float32)

    cases = {
        "cross_entropy": (
            lambda a: losses.cross_entropy(a, labels),
            lambda a: F.cross_entropy(a, torch.from_numpy(labels)),
        ),
        "mse": (lambda a: losses.mse(a, y), lambda a: F.mse_loss(a, torch.from_numpy(y))),
        "mae": (lambda a: losses.mae(a, y), lambda a: F.l1_loss(a, torch.from_numpy(y))),
        "bce": (
            lambda a: losses.binary_cross_entropy(a, yb),
            lambda a: F.binary_cross_entropy_with_logits(a, torch.from_numpy(yb)),
        ),
        "kl": (
            lambda a: losses.kl_divergence(a, tensor(logvar)),
            lambda a: torch.distributions.kl_divergence(
                torch.distributions.Normal(a, torch.from_numpy(np.exp(0.5 * logvar))),
                torch.distributions.Normal(0.0, 1.0),
            ).sum(1).mean(),
        ),
    }
    for name, (ours, theirs) in cases.items():
        arg = mu if name == "kl" else z
        a = tensor(arg, requires_grad=True)
        ta = torch.tensor(arg, requires_grad=True)
        out, tout = ours(a), theirs(ta)
        out.backward()
        tout.backward()
        np.testing.assert_allclose(out.item(), tout.item(), rtol=1e-4, err_msg=name)
        np.testing.assert_allclose(a.grad, ta.grad.numpy(), rtol=1e-4, atol=1e-7, err_msg=name)
