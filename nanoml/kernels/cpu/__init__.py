"""CPU kernels (``@numba.njit(cache=True)``), one module per family, gathered here.

The CUDA twins in `nanoml.kernels.cuda` have the same names and arguments.
"""
