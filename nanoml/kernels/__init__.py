"""Numba kernels: plain functions over arrays, the caller allocating outputs."""

from nanoml.kernels import cache

cache.install()  # before any kernel module: their caches must see edits across modules
