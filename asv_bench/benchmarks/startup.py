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


COMMANDS = {
    "linear-regression": ["run", "linear-regression", "--set", "solver=gd"],
    "cnn": ["run", "cnn", "--dataset", "digits", "--epochs", "1"],
}


class RunLearner:
    """`nanoml run` start to finish: cold (empty kernel cache: every kernel compiles) and
    warm (kernels loaded from the disk cache)."""

    params = [list(COMMANDS)]
    param_names = ["learner"]
    timeout = 600
    number = 1
    repeat = 3

    def setup(self, learner):
        self.cache = tempfile.mkdtemp(prefix="nanoml-bench-cache-")
        _nanoml(*COMMANDS[learner], cache_dir=self.cache)

    def teardown(self, learner):
        shutil.rmtree(self.cache, ignore_errors=True)

    def time_warm_start(self, learner):
        _nanoml(*COMMANDS[learner], cache_dir=self.cache)

    def time_cold_start(self, learner):
        with tempfile.TemporaryDirectory() as empty:
            _nanoml(*COMMANDS[learner], cache_dir=empty)


class Command:
    """Commands that train nothing: printing the version must not load the ops and kernels
    (`import nanoml` is lazy); listing learners imports every plugin."""

    params = [["--version", "list"]]
    param_names = ["command"]
    number = 1
    repeat = 10

    def time_command(self, command):
        subprocess.run([sys.executable, "-m", "nanoml.cli", command], check=True,
                       capture_output=True)
