"""The classic learners' kernels under Numba's bounds checking: their contract tests
(`check_learner` on small, odd-shaped data) run again in a child process with
NUMBA_BOUNDSCHECK=1, so that an index outside an array raises IndexError instead of
reading memory that is not its own. The bounds-checked builds go to a cache folder of their
own: they must not replace the normal ones."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_classic_kernels_index_inside_their_arrays(tmp_path):
    env = {**os.environ, "NUMBA_BOUNDSCHECK": "1", "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         "-k", "contract", os.path.join("tests", "classic")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "IndexError" not in result.stdout
