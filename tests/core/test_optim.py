"""Optimizer kernels against NumPy, optimizers and schedules against torch.optim, checkpoints."""

import numpy as np
import pytest

from nanoml import nn, optim
from nanoml.errors import InputError, ParameterError
from nanoml.kernels import cpu
from nanoml.tensor import tensor


def arrays(n, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(n).astype(dtype) for _ in range(4)]


def tol(dtype):
    return {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-12}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("momentum,nesterov", [(0.0, False), (0.9, False), (0.9, True)])
def test_sgd_kernel_matches_numpy(dtype, momentum, nesterov):
    p, g, buf, _ = arrays(37, dtype)
    ref_p, ref_buf = p.astype(np.float64), buf.astype(np.float64)
    d = g + 0.01 * ref_p
    if momentum:
        ref_buf = momentum * ref_buf + d
        d = d + momentum * ref_buf if nesterov else ref_buf
    ref_p = ref_p - 0.1 * d
    cpu.sgd_update(p, g, buf if momentum else buf[:0], 0.1, momentum, 0.01, nesterov)
    np.testing.assert_allclose(p, ref_p, **tol(dtype))
    if momentum:
        np.testing.assert_allclose(buf, ref_buf, **tol(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("decoupled", [False, True])
def test_adam_kernel_matches_numpy(dtype, decoupled):
    p, g, m, v = arrays(41, dtype)
    v = np.abs(v)
    lr, b1, b2, eps, wd, step = 0.01, 0.8, 0.95, 1e-6, 0.1, 3
    ref_p = p.astype(np.float64)
    if decoupled:
        ref_p = ref_p * (1 - lr * wd)
        grad = g.astype(np.float64)
    else:
        grad = g + wd * ref_p
    ref_m = b1 * m + (1 - b1) * grad
    ref_v = b2 * v + (1 - b2) * grad**2
    m_hat, v_hat = ref_m / (1 - b1**step), ref_v / (1 - b2**step)
    ref_p = ref_p - lr * m_hat / (np.sqrt(v_hat) + eps)
    cpu.adam_update(p, g, m, v, lr, b1, b2, eps, wd, decoupled, step)
    np.testing.assert_allclose(m, ref_m, **tol(dtype))
    np.testing.assert_allclose(v, ref_v, **tol(dtype))
    np.testing.assert_allclose(p, ref_p, **tol(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_rmsprop_kernel_matches_numpy(dtype, momentum):
    p, g, sq, buf = arrays(29, dtype)
    sq = np.abs(sq)
    lr, alpha, eps, wd = 0.01, 0.9, 1e-6, 0.05
    grad = g + wd * p.astype(np.float64)
    ref_sq = alpha * sq + (1 - alpha) * grad**2
    step = grad / (np.sqrt(ref_sq) + eps)
    if momentum:
        step = momentum * buf + step
    ref_p = p - lr * step
    cpu.rmsprop_update(p, g, sq, buf if momentum else buf[:0], lr, alpha, eps, wd, momentum)
    np.testing.assert_allclose(sq, ref_sq, **tol(dtype))
    np.testing.assert_allclose(p, ref_p, **tol(dtype))
    if momentum:
        np.testing.assert_allclose(buf, step, **tol(dtype))


@pytest.mark.parametrize("name, n_arrays, scalars", [
    ("sgd", 3, (0.1, 0.9, 0.01, True)),
    ("adam", 4, (0.01, 0.8, 0.95, 1e-6, 0.1, False, 3)),
    ("rmsprop", 4, (0.01, 0.9, 1e-6, 0.05, 0.5)),
])
def test_large_parameters_update_in_blocks_exactly_as_on_one_thread(name, n_arrays, scalars):
    from nanoml.kernels.cpu import optim as kernels

    n = kernels.PARALLEL_MIN + 3 * kernels._BLOCK // 2  # a partial last block
    arrays_ = [np.abs(a) for a in arrays(n, np.float32, seed=1)][:n_arrays]
    state = [a.copy() for a in arrays_]
    getattr(cpu, f"{name}_update")(*arrays_, *scalars)  # from PARALLEL_MIN on: blocks
    getattr(kernels, f"_{name}")(*state, *scalars)  # the one-thread loop
    for blocked, serial in zip(arrays_, state, strict=True):
        np.testing.assert_array_equal(blocked, serial)
    assert not np.array_equal(arrays_[0], np.abs(arrays(n, np.float32, seed=1)[0]))  # updated


CASES = {
    "sgd": (lambda ps: optim.SGD(ps, lr=0.1), "SGD", {"lr": 0.1}),
    "sgd-momentum-wd": (
        lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01),
        "SGD", {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01},
    ),
    "sgd-nesterov": (
        lambda ps: optim.SGD(ps, lr=0.05, momentum=0.8, nesterov=True),
        "SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True},
    ),
    "adam": (lambda ps: optim.Adam(ps, lr=0.01), "Adam", {"lr": 0.01}),
    "adam-l2": (
        lambda ps: optim.Adam(ps, lr=0.01, betas=(0.8, 0.99), weight_decay=0.1),
        "Adam", {"lr": 0.01, "betas": (0.8, 0.99), "weight_decay": 0.1},
    ),
    "adamw": (
        lambda ps: optim.AdamW(ps, lr=0.01, weight_decay=0.1),
        "AdamW", {"lr": 0.01, "weight_decay": 0.1},
    ),
    "rmsprop": (lambda ps: optim.RMSprop(ps, lr=0.01), "RMSprop", {"lr": 0.01}),
    "rmsprop-momentum-wd": (
        lambda ps: optim.RMSprop(ps, lr=0.01, alpha=0.9, momentum=0.5, weight_decay=0.01),
        "RMSprop", {"lr": 0.01, "alpha": 0.9, "momentum": 0.5, "weight_decay": 0.01},
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_five_steps_match_torch_optim(case):
    torch = pytest.importorskip("torch")
    make, torch_name, kwargs = CASES[case]
    rng = np.random.default_rng(0)
    shapes = [(6, 4), (4,), ()]
    init = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    ours = [nn.Parameter(w.copy()) for w in init]
    theirs = [torch.tensor(w.copy(), requires_grad=True) for w in init]
    opt, topt = make(ours), getattr(torch.optim, torch_name)(theirs, **kwargs)
    for _ in range(5):
        grads = [rng.standard_normal(s).astype(np.float32) for s in shapes]
        for p, tp, g in zip(ours, theirs, grads, strict=True):
            p.grad = g.copy()
            tp.grad = torch.from_numpy(g.copy())
        opt.step()
        topt.step()
    for p, tp in zip(ours, theirs, strict=True):
        assert p.data.dtype == np.float32 and p.shape == tuple(tp.shape)
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-4, atol=1e-6)


def test_step_skips_parameters_without_gradient_and_zero_grad_clears():
    a, b = nn.Parameter(np.ones(3)), nn.Parameter(np.ones(2))
    opt = optim.SGD([a, b], lr=0.5)
    a.grad = np.ones(3, dtype=np.float32)
    opt.step()
    np.testing.assert_array_equal(a.data, [0.5] * 3)
    np.testing.assert_array_equal(b.data, [1.0] * 2)
    opt.zero_grad()
    assert a.grad is None


def test_noncontiguous_parameter_is_updated_in_place_of_its_data():
    p = nn.Parameter(np.arange(6, dtype=np.float32).reshape(2, 3))
    p.data = p.data.T
    p.grad = np.ones((3, 2), dtype=np.float32)
    optim.SGD([p], lr=1.0).step()
    np.testing.assert_array_equal(p.data, np.arange(6).reshape(2, 3).T - 1)


def test_training_a_linear_model_reduces_the_loss():
    from nanoml.losses import mse

    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 3)).astype(np.float32)
    y = x @ np.array([[1.0], [-2.0], [0.5]], dtype=np.float32) + 0.3
    layer = nn.Linear(3, 1, rng=rng)
    opt = optim.Adam(layer.parameters(), lr=0.05)
    first = None
    for _ in range(200):
        opt.zero_grad()
        loss = mse(layer(tensor(x)), y)
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
    assert loss.item() < 1e-3 * first


@pytest.mark.parametrize("cls", [optim.SGD, optim.Adam, optim.AdamW, optim.RMSprop])
def test_state_dict_resumes_exactly(cls):
    rng = np.random.default_rng(2)
    grads = [rng.standard_normal(5).astype(np.float32) for _ in range(6)]
    kwargs = {"momentum": 0.9} if cls in (optim.SGD, optim.RMSprop) else {}

    def run(params, opt, gs):
        for g in gs:
            params[0].grad = g.copy()
            opt.step()

    straight = [nn.Parameter(np.ones(5))]
    opt = cls(straight, lr=0.01, **kwargs)
    run(straight, opt, grads)

    first = [nn.Parameter(np.ones(5))]
    opt1 = cls(first, lr=0.01, **kwargs)
    run(first, opt1, grads[:3])
    state = opt1.state_dict()
    assert all(isinstance(v, np.ndarray) for v in state.values())
    resumed = [nn.Parameter(first[0].data.copy())]
    opt2 = cls(resumed, lr=0.5, **kwargs).load_state_dict(state)
    assert opt2.lr == 0.01
    run(resumed, opt2, grads[3:])
    np.testing.assert_array_equal(resumed[0].data, straight[0].data)
    with pytest.raises(InputError, match="keys"):
        opt2.load_state_dict({"lr": np.array(0.1)})


def test_bad_hyperparameters_raise_parameter_errors():
    p = [nn.Parameter(np.ones(2))]
    with pytest.raises(ParameterError, match="lr"):
        optim.SGD(p, lr=-1)
    with pytest.raises(ParameterError, match="nesterov"):
        optim.SGD(p, nesterov=True)
    with pytest.raises(ParameterError, match="betas"):
        optim.Adam(p, betas=(0.9, 1.0))
    with pytest.raises(ParameterError, match="empty"):
        optim.Adam([])


def test_clip_grad_norm_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    grads = [rng.standard_normal(s).astype(np.float32) * 3 for s in [(4, 3), (3,)]]
    for max_norm in (1.0, 100.0):
        ours = [nn.Parameter(np.zeros(g.shape)) for g in grads]
        theirs = [torch.zeros(g.shape, requires_grad=True) for g in grads]
        for p, tp, g in zip(ours, theirs, grads, strict=True):
            p.grad, tp.grad = g.copy(), torch.from_numpy(g.copy())
        norm = optim.clip_grad_norm(ours, max_norm)
        tnorm = torch.nn.utils.clip_grad_norm_(theirs, max_norm)
        np.testing.assert_allclose(norm, tnorm.item(), rtol=1e-5)
        for p, tp in zip(ours, theirs, strict=True):
            np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=1e-5)


def test_schedules_match_torch_and_resume():
    torch = pytest.importorskip("torch")
    for ours_cls, theirs_cls, kwargs in [
        (optim.StepLR, torch.optim.lr_scheduler.StepLR, {"step_size": 3, "gamma": 0.5}),
        (optim.CosineAnnealingLR, torch.optim.lr_scheduler.CosineAnnealingLR,
         {"T_max": 7, "eta_min": 0.01}),
    ]:
        opt = optim.SGD([nn.Parameter(np.ones(1))], lr=0.1)
        topt = torch.optim.SGD([torch.ones(1, requires_grad=True)], lr=0.1)
        sched, tsched = ours_cls(opt, **kwargs), theirs_cls(topt, **kwargs)
        for _ in range(10):
            topt.step()
            sched.step()
            tsched.step()
            np.testing.assert_allclose(opt.lr, topt.param_groups[0]["lr"], rtol=1e-10)
        fresh_opt = optim.SGD([nn.Parameter(np.ones(1))], lr=0.1)
        fresh = ours_cls(fresh_opt, **kwargs).load_state_dict(sched.state_dict())
        assert fresh_opt.lr == opt.lr
        fresh.step(), sched.step()
        assert fresh_opt.lr == opt.lr
