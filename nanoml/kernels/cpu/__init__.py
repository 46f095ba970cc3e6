"""CPU kernels (``@numba.njit(cache=True)``), one module per family, gathered here.

The CUDA twins in `nanoml.kernels.cuda` have the same names and arguments.
"""

from nanoml.kernels.cpu.losses import softmax_xent_backward, softmax_xent_forward  # noqa: F401
from nanoml.kernels.cpu.optim import adam_update, rmsprop_update, sgd_update  # noqa: F401
