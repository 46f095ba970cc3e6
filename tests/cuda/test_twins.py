"""Every CPU kernel has a CUDA twin of the same name with the same parameters."""

import inspect

from nanoml.kernels import cpu
from nanoml.kernels import cuda as gpu


def test_every_cpu_kernel_has_a_twin_with_the_same_parameters():
    kernels = {name: k for name, k in vars(cpu).items() if hasattr(k, "py_func")}
    assert {"adam_update", "lstm_backward", "max_pool2d_forward"} <= set(kernels)
    for name, kernel in kernels.items():
        twin = getattr(gpu, name, None)
        assert twin is not None, f"nanoml.kernels.cuda has no {name}"
        assert inspect.signature(twin).parameters.keys() == \
            inspect.signature(kernel.py_func).parameters.keys(), name
