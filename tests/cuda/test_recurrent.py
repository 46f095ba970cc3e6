"""CUDA RNN, LSTM and GRU sequences against the CPU kernels, forward and backward.

Arguments are built by name from the CPU kernel's signature, so the test also holds the
twins to the same argument names and order.
"""

import inspect

import numpy as np
import pytest
from numba import cuda

from nanoml.kernels import cpu
from nanoml.kernels import cuda as gpu

B, T, N_IN, H = 2, 3, 3, 4
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
INPUTS = {"x", "w_ih", "w_hh", "b_ih", "b_hh", "h0", "c0", "dout", "dh_n", "dc_n"}
# Scratch of the backward kernels: its contents after a call are not part of the contract.
SCRATCH = {"dpre", "dg", "dgx", "dgh"}


def shape(name, G):
    if name in ("x", "dx"):
        return (B, T, N_IN)
    if name in ("w_ih", "dw_ih"):
        return (G * H, N_IN)
    if name in ("w_hh", "dw_hh"):
        return (G * H, H)
    if name in ("b_ih", "b_hh", "db_ih", "db_hh"):
        return (G * H,)
    if name in ("out", "dout"):
        return (B, T, H)
    if name in ("hs", "cs"):
        return (T + 1, B, H)
    if name == "gates" or name in SCRATCH:
        return (T, B, G * H)
    if name == "hn":
        return (T, B, H)
    return (B, H)  # h0, c0, h_n, c_n and their gradients


def parameters(kernel):
    return list(inspect.signature(kernel.py_func).parameters)


def call(kernels, name, given, on_device):
    """Run kernels.<name> with the arrays of `given` (by argument name); return all by name."""
    names = parameters(getattr(cpu, name))
    assert list(inspect.signature(getattr(gpu, name)).parameters) == names
    args = [None if given[n] is None else given[n].copy() for n in names]
    if on_device:
        args = [None if a is None else cuda.to_device(a) for a in args]
    getattr(kernels, name)(*args)
    return {n: a if a is None or not on_device else a.copy_to_host()
            for n, a in zip(names, args, strict=True)}


def arrays(cell, dt, rng, skip_dx=False):
    """Random inputs and output gradients, zeroed outputs, for every argument of the cell."""
    G = GATES[cell]
    names = set(parameters(getattr(cpu, f"{cell}_forward")))
    names |= set(parameters(getattr(cpu, f"{cell}_backward")))
    given = {n: (rng.standard_normal(shape(n, G)) * 0.5 if n in INPUTS
                 else np.zeros(shape(n, G))).astype(dt) for n in names}
    if skip_dx:
        given["dx"] = None
    return given


def compare(cell, dt, skip_dx, tol):
    given = arrays(cell, dt, np.random.default_rng(0), skip_dx)
    forward = {dev: call(k, f"{cell}_forward", given, dev) for dev, k in ((0, cpu), (1, gpu))}
    for name, value in forward[0].items():
        np.testing.assert_allclose(forward[1][name], value, err_msg=name, **tol)
    given.update((n, a) for n, a in forward[0].items() if n not in INPUTS)
    backward = {dev: call(k, f"{cell}_backward", given, dev) for dev, k in ((0, cpu), (1, gpu))}
    for name, value in backward[0].items():
        if value is not None and name not in SCRATCH:
            np.testing.assert_allclose(backward[1][name], value, err_msg=name, **tol)


@pytest.mark.parametrize("cell", list(GATES))
def test_forward_and_backward_match_the_cpu(cell):
    compare(cell, np.float64, skip_dx=False, tol={"rtol": 1e-10, "atol": 1e-12})


def test_float32_without_input_gradient():
    """dx=None skips the input gradient; float32 agrees to float32 accuracy."""
    compare("lstm", np.float32, skip_dx=True, tol={"rtol": 1e-4, "atol": 1e-5})
