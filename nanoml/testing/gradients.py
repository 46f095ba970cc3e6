"""Finite-difference gradient checks for ops and layers."""

import numpy as np

from nanoml.tensor import Tensor, no_grad


def _outputs(result):
    """The Tensors in an op's result, which may be nested tuples/lists (e.g. (out, (h, c)))."""
    if isinstance(result, Tensor):
        return [result]
    if isinstance(result, (tuple, list)):
        return [t for item in result for t in _outputs(item)]
    return []


def gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-4, seed=0):
    """Check ``fn(*inputs)``'s backward against central finite differences in float64.

    Every Tensor in `inputs` is checked (as a float64 copy that requires grad); other
    inputs (integer labels, arrays, numbers) are passed through as constants. The outputs
    (a Tensor or nested tuples of them) are reduced to one scalar with fixed random weights,
    so each output element counts and swapped elements are caught. `fn` must be
    deterministic. Raises AssertionError naming the input, index, analytic and numeric
    values of the first mismatch; returns True otherwise.
    """
    rng = np.random.default_rng(seed)
    args = [
        Tensor(np.array(x.data, dtype=np.float64), requires_grad=True, dtype=np.float64)
        if isinstance(x, Tensor)
        else x
        for x in inputs
    ]
    outputs = _outputs(fn(*args))
    if not outputs:
        raise TypeError("gradcheck: fn returned no Tensor")
    weights = [rng.standard_normal(out.shape) for out in outputs]

    def objective():
        with no_grad():
            outs = _outputs(fn(*args))
        return sum(float(np.sum(o.data * w)) for o, w in zip(outs, weights, strict=True))

    total = None
    for out, w in zip(outputs, weights, strict=True):
        if out.requires_grad:
            term = (out * Tensor(w, dtype=np.float64)).sum()
            total = term if total is None else total + term
    if total is not None:
        total.backward()

    for position, arg in enumerate(args):
        if not isinstance(arg, Tensor):
            continue
        analytic = np.zeros_like(arg.data) if arg.grad is None else arg.grad
        flat = arg.data.reshape(-1)  # a view: perturbing it perturbs the input
        for k in range(flat.size):
            original = flat[k]
            flat[k] = original + eps
            plus = objective()
            flat[k] = original - eps
            minus = objective()
            flat[k] = original
            numeric = (plus - minus) / (2 * eps)
            a = analytic.reshape(-1)[k]
            if not abs(a - numeric) <= atol + rtol * abs(numeric):
                index = np.unravel_index(k, arg.data.shape)
                raise AssertionError(
                    f"gradcheck: inputs[{position}] (shape {arg.data.shape}) at index "
                    f"{tuple(int(i) for i in index)}: analytic {a:.10g}, numeric {numeric:.10g}"
                )
    return True
