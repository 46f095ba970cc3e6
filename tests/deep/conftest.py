import pytest
from click.testing import CliRunner

from nanoml.cli import cli
from nanoml.data import load_dataset


@pytest.fixture(scope="session")
def digits():
    return load_dataset("digits")


@pytest.fixture
def run_cli(tmp_path):
    """``run_cli(*args)`` -> (click Result, run folder) of `nanoml run ...` into tmp_path."""
    def run(*args):
        out = tmp_path / "run"
        result = CliRunner().invoke(cli, ["run", *args, "--out", str(out)])
        return result, out

    return run
