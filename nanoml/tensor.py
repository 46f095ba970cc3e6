"""Tensor: an array, its gradient, and the graph that computes it (reverse-mode autodiff).

The public front door: the class and its engine live in `nanoml.autograd`, and importing
`nanoml.ops` (done here) binds every op to it as a method or operator (``a + b``,
``a.sum()``, ``a @ w``), so a Tensor from this module is complete.
"""

import sys
import types

import nanoml.ops  # noqa: F401  (binds the ops to Tensor)
from nanoml.autograd import Tensor, apply, is_grad_enabled, no_grad

__all__ = ["Tensor", "apply", "is_grad_enabled", "no_grad", "tensor"]


def tensor(data, requires_grad=False, dtype=None):
    """A new leaf Tensor: float32 unless `dtype` says float64."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


class _CallableModule(types.ModuleType):
    """`nanoml.tensor` is this module, and ``nanoml.tensor(data)`` builds a tensor.

    The package exports the factory `tensor` under the same name as this module; once the
    module is imported the package attribute is the module, so the module itself must be
    callable for ``nanoml.tensor([1, 2])`` to keep working.
    """

    def __call__(self, data, requires_grad=False, dtype=None):
        return tensor(data, requires_grad=requires_grad, dtype=dtype)


sys.modules[__name__].__class__ = _CallableModule
