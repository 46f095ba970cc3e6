"""F.linear on the CPU: Numba products for one float dtype, NumPy for the rest."""

import numpy as np
import pytest

import nanoml.functional as F
from nanoml.kernels import cpu
from nanoml.tensor import tensor


def grads(x, w, b):
    out = F.linear(x, w, b)
    out.backward(np.linspace(-1, 1, out.data.size).reshape(out.shape).astype(out.data.dtype))
    return [out.data, x.grad, w.grad, b.grad]


@pytest.mark.parametrize("x_dtype, w_dtype, kernels_used", [
    (np.float32, np.float32, True), (np.float64, np.float64, True),
    (np.float32, np.float64, False)])
def test_both_routes_compute_the_products(monkeypatch, x_dtype, w_dtype, kernels_used):
    calls = []
    for name in ("matmul", "matmul_nt", "matmul_tn"):
        kernel = getattr(cpu, name)
        monkeypatch.setattr(cpu, name, lambda *a, k=kernel: calls.append(1) or k(*a))
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((2, 3, 7)), rng.standard_normal((5, 7)), rng.standard_normal(5)
    ours = grads(tensor(x, requires_grad=True, dtype=x_dtype),
                 tensor(w, requires_grad=True, dtype=w_dtype),
                 tensor(b, requires_grad=True, dtype=w_dtype))
    assert len(calls) == (3 if kernels_used else 0)
    g = np.linspace(-1, 1, 30).reshape(2, 3, 5)
    expected = [x @ w.T + b, g @ w, g.reshape(6, 5).T @ x.reshape(6, 7), g.sum(axis=(0, 1))]
    for got, want in zip(ours, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows, n_in, n_out", [
    (6, 7, 5),      # one dot product per output
    (6, 300, 100),  # few rows, wide: the weight's rows against a transposed copy of x
    (40, 50, 80),   # more rows, wide: panels packed from the weight's rows
    (70, 50, 40),   # the tiled GEMM on the transposed weight (a view on the host)
])
def test_every_forward_route_matches_numpy(dtype, rows, n_in, n_out):
    rng = np.random.default_rng(1)
    x, w, b = (rng.standard_normal((rows, n_in)), rng.standard_normal((n_out, n_in)),
               rng.standard_normal(n_out))
    ours = grads(*(tensor(a, requires_grad=True, dtype=dtype) for a in (x, w, b)))
    g = np.linspace(-1, 1, rows * n_out).reshape(rows, n_out)
    expected = [x @ w.T + b, g @ w, g.T @ x, g.sum(axis=0)]
    tol = {"rtol": 1e-4, "atol": 1e-3} if dtype == np.float32 else {"rtol": 1e-10, "atol": 1e-10}
    for got, want in zip(ours, expected, strict=True):
        np.testing.assert_allclose(got, want, **tol)


def test_mismatched_features_still_raise():
    with pytest.raises(ValueError):
        F.linear(tensor(np.ones((4, 6))), tensor(np.ones((2, 3))))


def test_empty_batches_and_layers():
    for x_shape, w_shape in (((0, 3), (2, 3)), ((4, 3), (0, 3)), ((4, 0), (2, 0))):
        x = tensor(np.ones(x_shape), requires_grad=True, dtype=np.float32)
        w = tensor(np.ones(w_shape), requires_grad=True, dtype=np.float32)
        out = F.linear(x, w)
        out.backward(np.ones(out.shape, np.float32))
        assert out.shape == (x_shape[0], w_shape[0])
        assert x.grad.shape == x_shape and w.grad.shape == w_shape
