"""cuda_available() / require_cuda(): the real answer of this machine, and each reason why not."""

import importlib.util
import os
import subprocess
import sys

import numba
import pytest
from numba import cuda

from nanoml.device import cuda_available, require_cuda
from nanoml.errors import DeviceError

PREFIX = "device 'cuda' is not available: "


@pytest.mark.skipif(not numba.config.ENABLE_CUDASIM, reason="needs NUMBA_ENABLE_CUDASIM=1")
def test_the_simulator_counts_as_a_device():
    assert cuda_available()
    require_cuda()


def test_missing_numba_cuda(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "numba_cuda" else real(name, *a))
    assert not cuda_available()
    with pytest.raises(DeviceError, match="numba-cuda is not installed"):
        require_cuda()


# Driver initialisation errors as numba-cuda 0.30 words them.
DRIVER_ERRORS = [
    ("\nCUDA driver library cannot be found.\nEnsure that a compatible NVIDIA driver is "
     "installed and available on your system path.\n", "no NVIDIA driver"),
    ("\nPossible CUDA driver libraries are found but error occurred during load:\nlibcuda.so: "
     "cannot open shared object file\n", "no NVIDIA driver"),
    ("Call to cuInit results in CUDA_ERROR_NO_DEVICE (100)", "found no CUDA GPU"),
    ("CUDA is disabled due to setting NUMBA_DISABLE_CUDA=1 in the environment, or because "
     "CUDA is unsupported on 32-bit systems.", "disabled by NUMBA_DISABLE_CUDA=1"),
    ("Call to cuInit results in CUDA_ERROR_UNKNOWN (999)",
     "failed to start: Call to cuInit results in CUDA_ERROR_UNKNOWN (999)"),
    (None, "NVVM"),  # the driver started but is_available() is still False
]


@pytest.mark.parametrize(("error", "reason"), DRIVER_ERRORS)
def test_each_driver_problem_is_one_line(monkeypatch, error, reason):
    monkeypatch.setattr(cuda, "is_available", lambda: False)
    monkeypatch.setattr(cuda, "cuda_error", lambda: error)
    assert not cuda_available()
    with pytest.raises(DeviceError) as info:
        require_cuda()
    message = str(info.value)
    assert message.startswith(PREFIX) and reason in message
    assert "\n" not in message


def test_real_answer_without_the_simulator():
    """In a fresh process without the simulator: this machine's own driver and GPU."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    code = ("from numba import cuda\n"
            "from nanoml.device import cuda_available, require_cuda\n"
            "from nanoml.errors import DeviceError\n"
            "print(cuda.is_available(), cuda_available())\n"
            "try:\n    require_cuda()\nexcept DeviceError as e:\n    print(e)\n")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    numba_says, ours = lines[0].split()
    assert numba_says == ours
    if ours == "True":
        assert len(lines) == 1
    else:
        assert len(lines) == 2 and lines[1].startswith(PREFIX)
