"""Process settings for training: applied at the first backward of any loop, or left alone.

Each case runs in a fresh interpreter, since the settings are once per process.
"""

import json
import os
import subprocess
import sys

import pytest

from nanoml.runtime import retain_freed_memory

# A user's own loop: a Linear layer, a loss, backward, a step. Prints the BLAS thread counts
# before and after its first backward, and whether freed memory is kept.
USER_LOOP = """
import json, numpy as np
from threadpoolctl import threadpool_info
from nanoml import losses, nn, optim, runtime
from nanoml.tensor import Tensor

def blas():
    return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]

if {keep}:
    runtime.keep_process_settings()
before = blas()
layer = nn.Linear(3, 2, rng=np.random.default_rng(0))
opt = optim.SGD(layer.parameters(), lr=0.1)
losses.cross_entropy(layer(Tensor(np.ones((4, 3)))), [0, 1, 1, 0]).backward()
opt.step()
print(json.dumps({{"before": before, "after": blas(),
                  "retained": runtime.retain_freed_memory.cache_info().currsize > 0}}))
"""


def run_loop(keep=False, **env):
    done = subprocess.run(
        [sys.executable, "-c", USER_LOOP.format(keep=keep)], capture_output=True, text=True,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "2", **env}, check=False, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_plain_user_loop_gets_the_training_settings_at_its_first_backward():
    seen = run_loop()
    assert seen["before"] and all(n == 2 for n in seen["before"])
    assert all(n == 1 for n in seen["after"])
    assert seen["retained"]


@pytest.mark.parametrize("how", ["environment", "call"])
def test_the_settings_can_be_turned_off(how):
    seen = run_loop(keep=True) if how == "call" else run_loop(NANOML_PROCESS_SETTINGS="off")
    assert seen["after"] == seen["before"]
    assert not seen["retained"]


def test_freed_memory_is_kept_on_glibc():
    assert retain_freed_memory() is (sys.platform == "linux")


def test_off_glibc_mallopt_is_skipped(monkeypatch):
    import ctypes
    import platform

    def no_lookup(*args, **kwargs):
        raise AssertionError("the C library was searched for mallopt off glibc")

    monkeypatch.setattr(platform, "libc_ver", lambda *args, **kwargs: ("", ""))  # musl, macOS
    retain_freed_memory.cache_clear()
    try:
        monkeypatch.setattr(ctypes, "CDLL", no_lookup)
        assert retain_freed_memory() is False
    finally:
        retain_freed_memory.cache_clear()
