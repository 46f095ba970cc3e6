"""The installed console script, run as a real process."""

import json
import shutil
import subprocess
import sys

import pytest


def nanoml_command():
    exe = shutil.which("nanoml")
    return [exe] if exe else [sys.executable, "-m", "nanoml.cli"]


def test_console_script_runs_the_default_job(tmp_path):
    result = subprocess.run([*nanoml_command(), "run", "linear-regression", "--json"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["metrics"]["r2"] > 0.9
    assert (tmp_path / summary["run_folder"] / "model.npz").exists()


@pytest.mark.parametrize("args", [["run", "no-such-learner"], ["run", "linear-regression",
                                                                 "--set", "lr=x"]])
def test_user_error_has_no_traceback(args, tmp_path):
    result = subprocess.run([*nanoml_command(), *args], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
