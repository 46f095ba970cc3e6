"""Plugin discovery through the `nanoml` entry-point group."""

import os
import subprocess
import sys

import pytest

from nanoml.errors import PluginConflictError, UnknownLearnerError

THIRD_PARTY = """
    import numpy as np

    import nanoml


    class MeanRegressor(nanoml.Learner):
        name = "mean-regressor"
        task = "regression"
        default_dataset = "quadratic"
        description = "predicts the training mean"

        def __init__(self, shrink=0.0):
            self.shrink = shrink

        def fit(self, X, y):
            self.mean_ = float(np.mean(y)) * (1.0 - self.shrink)
            self.n_features_in_ = np.asarray(X).shape[1]
            return self

        def predict(self, X):
            self.check_fitted()
            return np.full(np.asarray(X).shape[0], self.mean_)


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
    with pytest.raises(PluginConflictError) as info:
        _ = plugins.learners
    message = str(info.value)
    assert "'mean-regressor'" in message and "'mean'" in message and "'mean-copy'" in message


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
