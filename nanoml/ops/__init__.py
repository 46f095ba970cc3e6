"""Differentiable ops: plain functions that compute on ``.data`` and join the graph via `apply`.

One module per family; `nanoml.functional` re-exports them for users.
"""

# Tensor binds the ops as its methods, and the ops import Tensor: loading nanoml.tensor
# first, whichever module is imported first, keeps that cycle in one order.
import nanoml.tensor  # noqa: F401
