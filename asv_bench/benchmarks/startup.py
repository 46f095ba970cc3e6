"""What a user waits for before training starts: compiling kernels, and a warm start."""

import os
import shutil
import subprocess
import sys
import tempfile


def _nanoml(*args, cache_dir=None):
    env = dict(os.environ)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run([sys.executable, "-m", "nanoml.cli", *args, "--out", folder],
                       env=env, check=True, capture_output=True)


class RunLinearRegression:
    """`nanoml run linear-regression --set solver=gd`: cold (empty kernel cache) and warm."""

    timeout = 300
    number = 1
    repeat = 3

    def setup(self):
        self.cache = tempfile.mkdtemp(prefix="nanoml-bench-cache-")
        _nanoml("run", "linear-regression", "--set", "solver=gd", cache_dir=self.cache)

    def teardown(self):
        shutil.rmtree(self.cache, ignore_errors=True)

    def time_warm_start(self):
        _nanoml("run", "linear-regression", "--set", "solver=gd", cache_dir=self.cache)

    def time_cold_start(self):
        with tempfile.TemporaryDirectory() as empty:
            _nanoml("run", "linear-regression", "--set", "solver=gd", cache_dir=empty)
