"""nanoml reinforcement-learning plugin: environments as Numba kernels, and agents."""
