"""Whole training steps done with the CUDA kernels match the same steps in nanoml on the CPU.

The CUDA steps are those asv times (asv_bench/benchmarks/cuda_steps.py), here at tiny shapes;
the reference is nanoml's autodiff (ops on the CPU kernels) and its Adam.
"""

import importlib.util
from pathlib import Path

import numpy as np
from numba import cuda

import nanoml.functional as F
from nanoml import optim
from nanoml.nn import Parameter
from nanoml.tensor import Tensor

STEPS = Path(__file__).resolve().parents[2] / "asv_bench" / "benchmarks" / "cuda_steps.py"
LR = 1e-3
GRAD_TOL = {"rtol": 1e-4, "atol": 1e-6}  # float32 sums in other orders


def load_steps():
    spec = importlib.util.spec_from_file_location("cuda_steps", STEPS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cpu_step(weights, loss_fn):
    """One nanoml step: loss, gradients and Adam update; returns (loss, grads, new weights)."""
    params = {k: Parameter(w.copy()) for k, w in weights.items()}
    loss = loss_fn(params)
    loss.backward()
    grads = {k: p.grad.copy() for k, p in params.items()}
    optim.Adam(list(params.values()), lr=LR).step()
    return loss.item(), grads, {k: p.data for k, p in params.items()}


def check(model, losses, expected):
    loss, grads, updated = expected
    np.testing.assert_allclose(losses.copy_to_host().mean(), loss, rtol=1e-5)
    for k in model.names:
        np.testing.assert_allclose(model.grads[k].copy_to_host(), grads[k], err_msg=k, **GRAD_TOL)
        np.testing.assert_allclose(model.params[k].copy_to_host(), updated[k], err_msg=k,
                                   rtol=1e-5, atol=1e-7)
        assert np.abs(grads[k]).max() > 0, k  # every parameter takes part in the check


def uniform(rng, *shape):
    return rng.uniform(-0.5, 0.5, shape).astype(np.float32)


def test_cnn_step():
    """Batch 2, Conv 1->2 3x3 on 6x6, ReLU, max pool 2, Linear 8->3, cross-entropy, Adam."""
    rng = np.random.default_rng(0)
    N, M, S, classes = 2, 2, 6, 3
    weights = {"conv_w": uniform(rng, M, 1, 3, 3), "conv_b": uniform(rng, M),
               "fc_w": uniform(rng, classes, M * 2 * 2), "fc_b": uniform(rng, classes)}
    x = rng.standard_normal((N, 1, S, S)).astype(np.float32)
    y = np.array([0, 2])

    def loss_fn(p):
        h = F.max_pool2d(F.relu(F.conv2d(Tensor(x), p["conv_w"], p["conv_b"])), 2)
        return F.cross_entropy(F.linear(h.reshape(N, -1), p["fc_w"], p["fc_b"]), y)

    expected = cpu_step(weights, loss_fn)
    model = load_steps().CudaCNN(weights, batch=N, image=S, lr=LR)
    losses = model.step(cuda.to_device(x), cuda.to_device(y))
    check(model, losses, expected)


def test_lstm_step():
    """Batch 2, 3 steps of 3 inputs, hidden 4, Linear 4->3 on h_n, cross-entropy, Adam."""
    rng = np.random.default_rng(1)
    B, T, n_in, H, classes = 2, 3, 3, 4, 3
    weights = {"w_ih": uniform(rng, 4 * H, n_in), "w_hh": uniform(rng, 4 * H, H),
               "b_ih": uniform(rng, 4 * H), "b_hh": uniform(rng, 4 * H),
               "fc_w": uniform(rng, classes, H), "fc_b": uniform(rng, classes)}
    x = rng.standard_normal((B, T, n_in)).astype(np.float32)
    y = np.array([1, 2])

    def loss_fn(p):
        _, (h_n, _) = F.lstm(Tensor(x), p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"])
        return F.cross_entropy(F.linear(h_n, p["fc_w"], p["fc_b"]), y)

    expected = cpu_step(weights, loss_fn)
    model = load_steps().CudaLSTM(weights, batch=B, steps=T, lr=LR)
    losses = model.step(cuda.to_device(x), cuda.to_device(y))
    check(model, losses, expected)
