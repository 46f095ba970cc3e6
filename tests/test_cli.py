"""The CLI through click's test runner: output, run folders, and one-line user errors."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from nanoml import modelfile
from nanoml.cli import cli


def invoke(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and result.output.startswith("nanoml, version ")


def test_list_json_names_the_plugin_and_task():
    rows = json.loads(invoke("list", "--json").output)
    linear = next(r for r in rows if r["name"] == "linear-regression")
    assert linear["plugin"] == "classic" and linear["task"] == "regression"


def test_plugins_json_shows_hooks():
    rows = {r["name"]: r for r in json.loads(invoke("plugins", "--json").output)}
    assert rows["classic"]["hooks"] == ["register_learners"]
    assert rows["classic"]["error"] == ""


def test_info_lists_hyperparameters():
    result = invoke("info", "linear-regression")
    assert result.exit_code == 0
    assert "solver = 'exact'" in result.output and "default dataset: quadratic" in result.output


def test_datasets_are_available_offline():
    rows = {r["name"]: r for r in json.loads(invoke("datasets", "--json").output)}
    for name in ("quadratic", "iris", "digits", "blobs", "moons"):
        assert rows[name]["available"] is True


def test_run_writes_a_run_folder_that_loads(tmp_path):
    out = tmp_path / "run"
    result = invoke("run", "linear-regression", "--set", "solver=gd", "--set", "lr=0.5",
                    "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["metrics"]["r2"] > 0.9
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test"]["r2"] == pytest.approx(summary["metrics"]["r2"])
    losses = metrics["history"]["loss"]
    assert losses[-1] < losses[0]
    config = json.loads((out / "config.json").read_text())
    assert config["params"]["lr"] == 0.5 and config["dataset"] == "quadratic"
    header, arrays = modelfile.load(out / "model.npz")
    assert header["learner"] == "linear-regression" and arrays["coef_"].shape == (1,)
    for figure in ("curves.png", "fit.png"):
        assert (out / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_is_reproducible_from_its_seed(tmp_path):
    a = json.loads(invoke("run", "linear-regression", "--seed", "3", "--out",
                          str(tmp_path / "a"), "--json").output)
    b = json.loads(invoke("run", "linear-regression", "--seed", "3", "--out",
                          str(tmp_path / "b"), "--json").output)
    assert a["metrics"] == b["metrics"]
    first = np.load(tmp_path / "a" / "model.npz")["coef_"]
    np.testing.assert_array_equal(first, np.load(tmp_path / "b" / "model.npz")["coef_"])


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["run", "linear-regresion"], "did you mean 'linear-regression'"),
        (["info", "nope"], "unknown learner 'nope'"),
        (["run", "linear-regression", "--dataset", "nope"], "unknown dataset 'nope'"),
        (["run", "linear-regression", "--set", "lr"], "must be key=value, got 'lr'"),
        (["run", "linear-regression", "--set", "depth=3"], "has no hyperparameter 'depth'"),
        (["run", "linear-regression", "--set", "n_iter=1.5"], "expects an integer"),
        (["run", "linear-regression", "--set", "lr=abc"], "expects a number"),
        (["run", "linear-regression", "--set", "solver=magic"], "solver must be one of"),
        (["run", "linear-regression", "--epochs", "3"], "does not take --epochs"),
        (["run", "linear-regression", "--dataset", "iris"], "classification dataset"),
        (["run", "ridge", "--seed", "-1"], "--seed must be a non-negative integer, got -1"),
        (["run", "ridge", "--data-dir", "."], "'quadratic' is embedded and reads no files"),
    ],
)
def test_user_mistakes_print_one_line_and_exit_2(args, fragment, tmp_path):
    result = CliRunner().invoke(cli, [*args, "--out", str(tmp_path)] if args[0] == "run" else args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert fragment in lines[0]
    assert not (tmp_path / "model.npz").exists()


def test_a_run_stopped_by_a_mistake_leaves_no_empty_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = ["run", "linear-regression", "--set", "solver=magic"]  # caught inside fit
    assert CliRunner().invoke(cli, bad).exit_code == 2
    assert not (tmp_path / "runs").exists()
    out = tmp_path / "a" / "b"
    assert CliRunner().invoke(cli, [*bad, "--out", str(out)]).exit_code == 2
    assert not (tmp_path / "a").exists()
    out.mkdir(parents=True)  # a folder the user made stays
    assert CliRunner().invoke(cli, [*bad, "--out", str(out)]).exit_code == 2
    assert out.is_dir()


def test_new_plugin_writes_a_package_or_says_in_one_line_why_not(tmp_path):
    result = invoke("new-plugin", "my-rules", "--deep", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    plugin = (tmp_path / "my-rules" / "my_rules" / "plugin.py").read_text()
    assert "NetworkClassifier" in plugin and "next: cd" in result.output
    again = CliRunner().invoke(cli, ["new-plugin", "my-rules", "--out", str(tmp_path)])
    assert again.exit_code == 2 and "already exists" in again.output
    bad = CliRunner().invoke(cli, ["new-plugin", "My Rules", "--out", str(tmp_path)])
    assert bad.exit_code == 2 and len(bad.output.strip().splitlines()) == 1


@pytest.mark.parametrize("text, value", [("(128, 64)", (128, 64)), ("(128,)", (128,)),
                                         ("[64]", (64,)), ("128,64", (128, 64)), ("64", (64,))])
def test_tuple_hyperparameters_take_the_form_info_prints(text, value):
    from nanoml.params import coerce

    assert coerce("hidden_sizes", text, (128,)) == value
    assert coerce("hidden_sizes", str(value), (128,)) == value  # as `nanoml info` shows it


def test_text_hyperparameters_also_take_numbers(tmp_path):
    from nanoml.params import coerce

    assert coerce("gamma", "0.1", "scale") == 0.1 and coerce("gamma", "auto", "scale") == "auto"
    result = invoke("run", "svm", "--set", "gamma=0.5", "--out", str(tmp_path / "r"), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "r" / "config.json").read_text())["params"]["gamma"] == 0.5
