"""`nanoml.run`: a run as a library call, the steps the CLI's `run` is a thin wrapper over."""

import json

import numpy as np
import pytest

import nanoml
from nanoml.errors import ParameterError, UnknownDatasetError
from nanoml.runner import RunResult


def test_run_returns_the_model_metrics_and_folder(tmp_path):
    out = tmp_path / "run"
    result = nanoml.run("linear-regression", params={"solver": "gd", "lr": 0.5}, seed=1,
                        out=str(out))
    assert isinstance(result, RunResult)
    assert result.learner == "linear-regression" and result.dataset == "quadratic"
    assert result.metrics["r2"] > 0.9 and result.fit_seconds > 0
    assert sorted(result.files) == sorted(p.name for p in out.iterdir())
    loaded = nanoml.load_model(out / "model.npz")
    X = np.linspace(-1, 1, 5)[:, None]
    np.testing.assert_array_equal(loaded.predict(X), result.model.predict(X))
    config = json.loads((out / "config.json").read_text())
    assert config["seed"] == 1 and config["params"]["lr"] == 0.5
    assert result.summary()["run_folder"] == str(out)


def test_run_takes_a_learner_class_and_seeds_it(tmp_path):
    MLP = nanoml.get_learner("mlp")
    result = nanoml.run(MLP, "iris", params={"epochs": 2}, seed=4, out=tmp_path / "r")
    assert result.model.seed == 4 and result.model.epochs == 2
    given = nanoml.run(MLP, "iris", params={"epochs": 2, "seed": 7}, seed=4, out=tmp_path / "s")
    assert given.model.seed == 7  # a seed among the params wins


@pytest.mark.parametrize(
    "call, error, fragment",
    [
        (dict(learner="linear-regression", params={"depth": 3}), ParameterError,
         "no hyperparameter 'depth'"),
        (dict(learner="linear-regression", dataset="nope"), UnknownDatasetError,
         "unknown dataset 'nope'"),
        (dict(learner="linear-regression", dataset="iris"), ParameterError,
         "classification dataset"),
        (dict(learner=object), ParameterError, "a nanoml.Learner subclass"),
    ],
)
def test_mistakes_raise_before_anything_is_written(call, error, fragment, tmp_path):
    out = tmp_path / "never"
    with pytest.raises(error, match=fragment):
        nanoml.run(**call, out=str(out))
    assert not out.exists()


def test_shaped_learners_get_the_datasets_sample_shape_and_checkpoint(tmp_path):
    out = tmp_path / "cnn"
    result = nanoml.run("cnn", "digits", params={"epochs": 2}, out=out)
    assert result.model.input_shape_ == (1, 8, 8)  # from the dataset, not from a parameter
    assert result.model.get_params()["input_shape"] is None
    assert len(result.model.history_["loss"]) == 2
    lr = nanoml.run("lstm", "digits", params={"epochs": 1}, out=tmp_path / "lstm")
    assert lr.model.input_shape_ == (8, 8)  # rows as steps


def test_a_learner_whose_fit_takes_checkpoint_gets_the_model_path(tmp_path, monkeypatch):
    seen = []
    MLP = nanoml.get_learner("mlp")
    original = MLP._checkpoint

    def spy(self, epoch):
        seen.append((epoch, self._checkpoint_path))
        original(self, epoch)

    monkeypatch.setattr(MLP, "_checkpoint", spy)
    out = tmp_path / "run"
    nanoml.run(MLP, "iris", params={"epochs": 2}, out=out)
    assert seen and all(path == str(out / "model.npz") for _, path in seen)


def test_nothing_under_the_package_but_the_cli_names_a_command_line_flag():
    import pathlib
    import re

    package = pathlib.Path(nanoml.__file__).parent
    flag = re.compile(r"(?<![\w-])--[a-z][a-z-]+")
    found = [
        f"{path.relative_to(package)}: {match.group()}"
        for path in package.rglob("*.py") if path.name != "cli.py"
        for match in flag.finditer(path.read_text())
    ]
    assert found == []


def test_a_folder_holding_a_run_is_refused_unless_overwritten(tmp_path):
    from click.testing import CliRunner

    from nanoml.cli import cli

    out = tmp_path / "run"
    nanoml.run("ridge", out=str(out))
    before = (out / "metrics.json").read_text()
    result = CliRunner().invoke(cli, ["run", "linear-regression", "--out", str(out)])
    assert result.exit_code == 2
    assert "already holds a run" in result.output and "--overwrite" in result.output
    assert (out / "metrics.json").read_text() == before  # nothing of the first run lost
    assert nanoml.run("linear-regression", out=str(out), overwrite=True).learner == \
        "linear-regression"


def test_a_folder_in_use_by_a_live_run_is_refused_and_a_dead_ones_lock_is_taken(tmp_path):
    import os
    import subprocess
    import sys

    from nanoml.errors import RunFolderError
    from nanoml.runner import run_folder

    out = tmp_path / "busy"
    with run_folder(str(out)):
        with pytest.raises(RunFolderError, match="another run is writing"):
            with run_folder(str(out)):
                pass
    assert not any(name.endswith(".lock") for name in os.listdir(out))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (out / ".nanoml-run.lock").write_text(dead)
    with run_folder(str(out)):
        pass


def test_runs_started_in_the_same_second_get_their_own_default_folders(tmp_path, monkeypatch):
    from nanoml.runner import default_folder

    monkeypatch.chdir(tmp_path)
    first = default_folder("ridge")
    (tmp_path / first).mkdir(parents=True)
    second = default_folder("ridge")
    assert second != first and second.startswith(first)
