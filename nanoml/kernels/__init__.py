"""Numba kernels: plain functions over arrays, the caller allocating outputs."""
