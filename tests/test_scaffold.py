"""`nanoml.scaffold.write_plugin`: refused names and folders, and generated plugins that pip
installs, that pass their own tests and whose learner `nanoml run` trains."""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys
import types

import numpy as np
import pytest

from nanoml.data import load_dataset
from nanoml.errors import ParameterError
from nanoml.scaffold import write_plugin

ROOT = pathlib.Path(__file__).resolve().parents[1]
FLAVOURS = {"classic": False, "deep": True}


@pytest.mark.parametrize(
    "name", ["My Plugin", "1abc", "my_learners", "-abc", "abc-", "a--b", "", None]
)
def test_malformed_names_are_refused(tmp_path, name):
    with pytest.raises(ParameterError, match="lowercase letters.*e.g. 'my-learners'"):
        write_plugin(name, tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "clash"),
    [
        ("class", "keyword"),  # the package would be `class`
        ("tests", "tests folder"),
        ("classic", "plugin is already called"),  # a first-party entry point
        ("mlp", "learner called 'mlp'"),  # a first-party learner
        ("numpy", "module called 'numpy'"),  # would hide numpy
    ],
)
def test_names_in_use_are_refused(tmp_path, name, clash):
    with pytest.raises(ParameterError, match=clash):
        write_plugin(name, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_existing_folder_is_left_untouched(tmp_path):
    mine = tmp_path / "my-learners"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(ParameterError, match="already exists and is not an empty folder"):
        write_plugin("my-learners", tmp_path)
    assert list(tmp_path.iterdir()) == [mine]
    assert list(mine.iterdir()) == [mine / "notes.txt"]
    assert (mine / "notes.txt").read_text() == "mine"

    (tmp_path / "a-file").write_text("also mine")
    with pytest.raises(ParameterError, match="already exists"):
        write_plugin("a-file", tmp_path)
    assert (tmp_path / "a-file").read_text() == "also mine"


def test_an_empty_folder_is_filled(tmp_path):
    (tmp_path / "my-learners").mkdir()
    assert write_plugin("my-learners", tmp_path) == tmp_path / "my-learners"
    assert (tmp_path / "my-learners" / "my_learners" / "plugin.py").is_file()


def test_a_failure_midway_leaves_nothing(tmp_path, monkeypatch):
    written = []
    real = pathlib.Path.write_text

    def fail_on_third(self, *args, **kwargs):
        if len(written) == 2:
            raise OSError("disk full")
        written.append(self)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "write_text", fail_on_third)
    with pytest.raises(OSError, match="disk full"):
        write_plugin("my-learners", tmp_path / "plugins")
    assert len(written) == 2
    assert list((tmp_path / "plugins").iterdir()) == []  # no staging folder either


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_generated_code_passes_ruff(tmp_path, flavour):
    folder = write_plugin("my-learners", tmp_path, deep=FLAVOURS[flavour])
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert files == [
        "README.md", "my_learners/__init__.py", "my_learners/plugin.py", "pyproject.toml",
        "tests/test_my_learners.py",
    ]
    if importlib.util.find_spec("ruff") is None:
        pytest.skip("ruff is not installed (pip install -e '.[test]' installs it)")
    # Run inside the plugin, as its author would: there nanoml is a third-party import.
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--config",
         str(ROOT / "pyproject.toml"), "."],
        cwd=folder, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module", params=list(FLAVOURS))
def installed(request, tmp_path_factory):
    """A generated plugin, pip-installed into a folder of its own, and the environment that
    puts that folder on the path of subprocesses."""
    name = f"my-{request.param}-learners"
    base = tmp_path_factory.mktemp(request.param)
    folder = write_plugin(name, base, deep=FLAVOURS[request.param])
    site = base / "site"
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--no-cache-dir", "--disable-pip-version-check", "--target", str(site),
         str(folder)],
        capture_output=True, text=True, timeout=120,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    env = dict(os.environ)
    env.pop("NANOML_LOAD_PLUGINS", None)  # load every plugin, the new one included
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    return types.SimpleNamespace(name=name, folder=folder, base=base, env=env)


def _python(installed, *args):
    """Run `python ARGS` where the plugin is installed (not from its source folder)."""
    result = subprocess.run(
        [sys.executable, *args], cwd=installed.base, env=installed.env,
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_generated_tests_pass(installed):
    out = _python(installed, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                  str(installed.folder / "tests"))
    assert "2 passed" in out


def test_plugin_is_registered(installed):
    records = json.loads(_python(installed, "-m", "nanoml.cli", "plugins", "--json"))
    mine = [r for r in records if r["name"] == installed.name]
    assert len(mine) == 1, records
    assert mine[0]["hooks"] == ["register_learners"]
    assert mine[0]["error"] == "" and mine[0]["problems"] == []
    assert (mine[0]["distribution"], mine[0]["version"]) == (installed.name, "0.1.0")


def test_nanoml_run_beats_the_majority_class(installed):
    run = installed.base / "run"
    summary = json.loads(_python(
        installed, "-m", "nanoml.cli", "run", installed.name, "--out", str(run), "--json"
    ))
    assert (run / "model.npz").is_file()
    _, counts = np.unique(load_dataset(summary["dataset"]).y_test, return_counts=True)
    assert summary["metrics"]["accuracy"] > counts.max() / counts.sum() + 0.2
