"""Plugin discovery through the `nanoml` entry-point group."""

import os
import subprocess
import sys

import pytest

from nanoml.errors import PluginConflictError, UnknownLearnerError

THIRD_PARTY = """
    import numpy as np

    import nanoml
    from nanoml.validation import check_array, check_targets


    class MeanRegressor(nanoml.Learner):
        name = "mean-regressor"
        task = "regression"
        default_dataset = "quadratic"
        description = "predicts the training mean"

        def __init__(self, shrink=0.0):
            self.shrink = shrink

        def fit(self, X, y):
            X = check_array(X)
            y = check_targets(y, X.shape[0])
            self.mean_ = float(np.mean(y)) * (1.0 - self.shrink)
            self.n_features_in_ = X.shape[1]
            return self

        def predict(self, X):
            self.check_fitted()
            X = check_array(X, n_features=self.n_features_in_)
            return np.full(X.shape[0], self.mean_)


    @nanoml.hookimpl
    def register_learners(register):
        register(MeanRegressor)
"""


def test_first_party_plugins_arrive_through_entry_points(fresh_plugins):
    plugins = fresh_plugins()
    assert plugins.learners["linear-regression"].plugin == "classic"
    assert "quadratic" in plugins.datasets
    names = {r.name for r in plugins.records}
    assert {"classic", "embedded-datasets"} <= names


def test_third_party_distribution_is_discovered(make_distribution, fresh_plugins):
    make_distribution("nanoml-mean", "nanoml_mean", THIRD_PARTY, {"mean": "nanoml_mean"})
    plugins = fresh_plugins()
    entry = plugins.learners["mean-regressor"]
    assert entry.plugin == "mean"
    record = next(r for r in plugins.records if r.name == "mean")
    assert record.distribution == "nanoml-mean" and record.hooks == ["register_learners"]
    assert "linear-regression" in plugins.learners


def test_plugin_failing_on_import_is_reported_and_others_still_work(
    make_distribution, fresh_plugins
):
    make_distribution(
        "nanoml-broken",
        "nanoml_broken",
        "raise RuntimeError('no GPU driver')\n",
        {"broken": "nanoml_broken"},
    )
    plugins = fresh_plugins()
    record = next(r for r in plugins.records if r.name == "broken")
    assert "RuntimeError: no GPU driver" in record.error
    assert "linear-regression" in plugins.learners


def test_misspelt_hook_is_reported(make_distribution, fresh_plugins):
    source = """
        import nanoml

        @nanoml.hookimpl
        def register_lerners(register):
            pass
    """
    make_distribution("nanoml-typo", "nanoml_typo", source, {"typo": "nanoml_typo"})
    plugins = fresh_plugins()
    record = next(r for r in plugins.records if r.name == "typo")
    assert "register_lerners" in record.error
    assert "linear-regression" in plugins.learners


def test_two_plugins_registering_one_name_is_an_error_naming_both(make_distribution, fresh_plugins):
    make_distribution("nanoml-mean", "nanoml_mean", THIRD_PARTY, {"mean": "nanoml_mean"})
    make_distribution(
        "nanoml-mean-copy",
        "nanoml_mean_copy",
        "from nanoml_mean import register_learners\n",
        {"mean-copy": "nanoml_mean_copy"},
    )
    plugins = fresh_plugins()
    assert "mean-regressor" not in plugins.learners  # neither plugin silently wins
    assert "linear-regression" in plugins.learners  # and the others keep working
    with pytest.raises(PluginConflictError) as info:
        plugins.learner("mean-regressor")
    message = str(info.value)
    assert "'mean-regressor'" in message and "'mean'" in message and "'mean-copy'" in message
    records = {r.name: r for r in plugins.records}
    assert records["mean"].problems == records["mean-copy"].problems == [message]


def test_unknown_learner_suggests_the_closest_name(fresh_plugins):
    plugins = fresh_plugins()
    with pytest.raises(UnknownLearnerError, match="did you mean 'linear-regression'"):
        plugins.learner("linear-regresion")


def test_third_party_learner_runs_from_a_real_nanoml_process(make_distribution, tmp_path):
    site = make_distribution("nanoml-mean", "nanoml_mean", THIRD_PARTY, {"mean": "nanoml_mean"})
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
    }
    listing = subprocess.run(
        [sys.executable, "-m", "nanoml.cli", "list"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "mean-regressor" in listing.stdout and "linear-regression" in listing.stdout
    out = tmp_path / "run"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nanoml.cli",
            "run",
            "mean-regressor",
            "--set",
            "shrink=0.5",
            "--out",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "r2:" in result.stdout
    assert (out / "model.npz").exists() and (out / "metrics.json").exists()


NO_HYPERPARAMETERS = """
    import numpy as np

    import nanoml


    class MeanPredictor(nanoml.Learner):
        name = "mean-predictor"
        task = "regression"
        default_dataset = "quadratic"
        description = "predicts the training mean"

        def fit(self, X, y):
            self.mean_ = float(np.mean(y))
            self.n_features_in_ = np.asarray(X).shape[1]
            return self

        def predict(self, X):
            self.check_fitted()
            return np.full(np.asarray(X).shape[0], self.mean_)


    @nanoml.hookimpl
    def register_learners(register):
        register(MeanPredictor)
"""


def test_learner_without_hyperparameters_runs(make_distribution, fresh_plugins, tmp_path):
    from click.testing import CliRunner

    from nanoml.cli import cli

    make_distribution("nanoml-meanp", "nanoml_meanp", NO_HYPERPARAMETERS, {"meanp": "nanoml_meanp"})
    plugins = fresh_plugins()
    assert plugins.learner("mean-predictor").param_defaults() == {}
    result = CliRunner().invoke(cli, ["run", "mean-predictor", "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert "r2:" in result.output and (tmp_path / "r" / "model.npz").exists()


# Each broken learner class: (source of the class body's changes, words the refusal names).
BROKEN = {
    "positional": ("def __init__(self, k):\n            self.k = k", "'k' is not one"),
    "varargs": ("def __init__(self, *args):\n            pass", "'args' is not one"),
    "task": ("task = 'telepathy'", "task is 'telepathy'"),
    "no-name": ("name = None", "sets no name"),
}
BROKEN_SOURCE = """
    import nanoml

    class Good(nanoml.Learner):
        name = "good-one"
        task = "regression"
        default_dataset = "quadratic"
        description = "fine"

    class Broken(nanoml.Learner):
        name = "broken-one"
        task = "regression"
        default_dataset = "quadratic"
        description = "breaks the contract"
        {change}

    @nanoml.hookimpl
    def register_learners(register):
        register(Broken)
        register(Good)
"""


@pytest.mark.parametrize("mistake", sorted(BROKEN))
def test_contract_mistake_is_one_line_and_the_rest_keeps_working(
    mistake, make_distribution, fresh_plugins, tmp_path
):
    import json
    import textwrap

    from click.testing import CliRunner

    from nanoml.cli import cli
    from nanoml.testing import check_learner

    change, words = BROKEN[mistake]
    source = textwrap.dedent(BROKEN_SOURCE).replace("{change}", change)
    make_distribution("nanoml-bad", "nanoml_bad", source, {"bad": "nanoml_bad"})
    plugins = fresh_plugins()
    assert "good-one" in plugins.learners and "linear-regression" in plugins.learners
    assert "broken-one" not in plugins.learners
    record = next(r for r in plugins.records if r.name == "bad")
    assert record.error == "" and len(record.problems) == 1
    problem = record.problems[0]
    assert "plugin 'bad'" in problem and "Broken" in problem and words in problem
    shown = json.loads(CliRunner().invoke(cli, ["plugins", "--json"]).output)
    assert next(r for r in shown if r["name"] == "bad")["problems"] == [problem]
    if mistake != "no-name":  # a learner without a name cannot be asked for by name
        result = CliRunner().invoke(cli, ["run", "broken-one", "--out", str(tmp_path / "r")])
        assert result.exit_code == 2
        assert result.output.strip() == f"Error: {problem}"
        assert not (tmp_path / "r").exists()
    import nanoml_bad

    with pytest.raises(AssertionError, match=words.replace("(", r"\(")):
        check_learner(nanoml_bad.Broken)


def test_check_learner_catches_a_name_clash(make_distribution, fresh_plugins):
    from nanoml.testing import check_learner

    make_distribution("nanoml-mean", "nanoml_mean", THIRD_PARTY, {"mean": "nanoml_mean"})
    fresh_plugins()
    import nanoml_mean

    class Impostor(nanoml_mean.MeanRegressor):
        pass

    with pytest.raises(AssertionError, match="already registered by plugin 'mean'"):
        check_learner(Impostor)
    check_learner(nanoml_mean.MeanRegressor)  # the registered class itself is fine


RAISING_HOOKS = """
    import nanoml

    @nanoml.hookimpl
    def register_learners(register):
        raise RuntimeError("learners broke")

    @nanoml.hookimpl
    def register_datasets(register):
        raise RuntimeError("datasets broke")

    @nanoml.hookimpl
    def register_commands(cli):
        raise RuntimeError("commands broke")
"""


def test_a_raising_hook_never_takes_the_cli_down(make_distribution, fresh_plugins):
    from click.testing import CliRunner

    from nanoml.cli import cli

    make_distribution("nanoml-raise", "nanoml_raise", RAISING_HOOKS, {"raising": "nanoml_raise"})
    plugins = fresh_plugins()
    assert "linear-regression" in plugins.learners and "digits" in plugins.datasets
    plugins.add_commands(cli)
    record = next(r for r in plugins.records if r.name == "raising")
    joined = " | ".join(record.problems)
    for hook in ("register_learners", "register_datasets", "register_commands"):
        assert f"{hook} failed: RuntimeError: {hook.split('_')[1]} broke" in joined
    result = CliRunner().invoke(cli, ["list"])
    assert result.exit_code == 0 and "linear-regression" in result.output


def test_a_plugin_whose_import_hangs_is_given_up(make_distribution, fresh_plugins, monkeypatch):
    source = "import threading\nthreading.Event().wait()\n"
    make_distribution("nanoml-hang", "nanoml_hang", source, {"hang": "nanoml_hang"})
    monkeypatch.setenv("NANOML_PLUGIN_TIMEOUT", "0.5")
    plugins = fresh_plugins()
    record = next(r for r in plugins.records if r.name == "hang")
    assert "did not finish within 0.5 s" in record.error
    assert "linear-regression" in plugins.learners


@pytest.mark.parametrize(
    "setting, plugins_loaded",
    [("", set()), ("classic", {"classic"}), ("deep, classic", {"classic", "deep"})],
)
def test_load_plugins_variable_chooses_plugins(setting, plugins_loaded, fresh_plugins,
                                               monkeypatch):
    monkeypatch.setenv("NANOML_LOAD_PLUGINS", setting)
    plugins = fresh_plugins()
    loaded = {r.name for r in plugins.records}
    core = {"embedded-datasets", "idx-datasets"}  # the core's own entry points always load
    assert loaded == core | plugins_loaded
    assert {e.plugin for e in plugins.learners.values()} == plugins_loaded
    assert "digits" in plugins.datasets


def test_load_plugins_variable_naming_a_missing_plugin_says_so(fresh_plugins, monkeypatch):
    monkeypatch.setenv("NANOML_LOAD_PLUGINS", "classic,nanoml-nonesuch")
    record = next(r for r in fresh_plugins().records if r.name == "nanoml-nonesuch")
    assert "not installed" in record.error and "NANOML_LOAD_PLUGINS" in record.error


def test_datasets_table_names_each_plugin():
    from click.testing import CliRunner

    from nanoml.cli import cli

    lines = CliRunner().invoke(cli, ["datasets"]).output.splitlines()
    digits = next(line for line in lines if line.startswith("digits "))
    sine = next(line for line in lines if line.startswith("sine "))
    assert " embedded-datasets " in digits and " deep " in sine


def test_list_says_on_stderr_which_plugins_failed(make_distribution, fresh_plugins):
    from click.testing import CliRunner

    from nanoml.cli import cli

    make_distribution("nanoml-broken", "nanoml_broken", "raise ImportError('x')\n",
                      {"broken": "nanoml_broken"})
    make_distribution("nanoml-mean", "nanoml_mean", THIRD_PARTY, {"mean": "nanoml_mean"})
    make_distribution("nanoml-mean-copy", "nanoml_mean_copy",
                      "from nanoml_mean import register_learners\n",
                      {"mean-copy": "nanoml_mean_copy"})
    fresh_plugins()
    result = CliRunner().invoke(cli, ["list"])
    assert result.exit_code == 0
    assert ("1 plugin(s) failed to load (broken); 1 learner(s) were refused (mean-regressor): "
            "'nanoml plugins' says why") in result.stderr
    assert "linear-regression" in result.stdout and "failed" not in result.stdout


COMMAND_PLUGIN = """
    import os
    import pathlib

    import click

    import nanoml

    pathlib.Path(os.environ["IMPORT_MARKER"]).touch()  # shows when the plugin was imported


    @nanoml.hookimpl
    def register_commands(cli):
        @cli.command("hello")
        def hello():
            click.echo("hello from a plugin")
"""


def test_plugin_commands_run_and_version_imports_no_plugin(make_distribution, tmp_path):
    site = make_distribution("nanoml-hello", "nanoml_hello", COMMAND_PLUGIN,
                             {"hello": "nanoml_hello"})
    marker = tmp_path / "imported"
    env = {**os.environ, "IMPORT_MARKER": str(marker),
           "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}

    def nanoml_cli(*args):
        return subprocess.run([sys.executable, "-m", "nanoml.cli", *args], env=env,
                              capture_output=True, text=True)

    assert nanoml_cli("--version").returncode == 0
    assert not marker.exists()
    result = nanoml_cli("hello")
    assert result.returncode == 0 and result.stdout == "hello from a plugin\n", result.stderr
    assert marker.exists()
    assert "hello" in nanoml_cli("--help").stdout
