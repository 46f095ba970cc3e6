"""Whether this machine can run nanoml's CUDA kernels, and if not, why (in one line)."""

import importlib.util

from nanoml.errors import DeviceError


def _driver_problem(error):
    """One line for numba's driver initialisation error `error` (None: the driver started)."""
    if error is None:
        # The driver started, so what numba.cuda.is_available() missed is its compiler.
        return ("NVVM, the CUDA compiler library, was not found (install the CUDA toolkit, or "
                "pip install 'numba-cuda[cu12]', or [cu13] for a CUDA 13 driver)")
    if "NUMBA_DISABLE_CUDA" in error:
        return "CUDA is disabled by NUMBA_DISABLE_CUDA=1"
    if "NO_DEVICE" in error:
        return "the NVIDIA driver found no CUDA GPU"
    if "driver librar" in error:  # "... library cannot be found" / "... libraries are found but"
        return "no NVIDIA driver: the CUDA driver library (libcuda) cannot be found or loaded"
    first = next(line for line in error.splitlines() if line.strip())
    return f"the CUDA driver failed to start: {first.strip()}"


def _cuda_problem():
    """None when CUDA kernels can run here, else why not."""
    if importlib.util.find_spec("numba_cuda") is None:
        return "numba-cuda is not installed (pip install numba-cuda)"
    from numba import cuda

    if cuda.is_available():
        return None
    return _driver_problem(cuda.cuda_error())


def cuda_available():
    """True when CUDA kernels can run: a GPU with its driver, or the CUDA simulator.

    The simulator (``NUMBA_ENABLE_CUDASIM=1`` when numba is first imported) runs every
    thread in Python on the CPU: correct and very slow, meant for tests.
    """
    return _cuda_problem() is None


def require_cuda():
    """Raise DeviceError saying why, unless CUDA kernels can run here."""
    problem = _cuda_problem()
    if problem is not None:
        raise DeviceError(f"device 'cuda' is not available: {problem}")


def check_device_name(device):
    """`device` ("cpu" or "cuda"), or an error saying why it cannot be used here."""
    from nanoml.validation import check_choice

    check_choice("device", device, ("cpu", "cuda"))
    if device == "cuda":
        require_cuda()
    return device
