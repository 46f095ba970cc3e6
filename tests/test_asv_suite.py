"""The asv suite imports and every benchmark has a valid signature (`asv check`)."""

import importlib.util
import pathlib
import subprocess
import sys

import pytest

BENCH = pathlib.Path(__file__).resolve().parents[1] / "asv_bench"


def test_asv_check_finds_no_problems():
    if importlib.util.find_spec("asv") is None:
        pytest.skip("asv is not installed (pip install -e '.[test]' installs it)")
    result = subprocess.run([sys.executable, "-m", "asv", "check", "--python=same"], cwd=BENCH,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No problems found" in result.stdout
