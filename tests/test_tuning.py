"""`nanoml.tune` and `nanoml tune` in the calling process: search spaces, the search, model
selection, successive halving, the journal and resuming, and the CLI's errors.

The Dask executions (LocalCluster, a real scheduler and workers) are in test_tuning_dask.py.
"""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

import nanoml
from nanoml.cli import cli
from nanoml.data import load_dataset
from nanoml.errors import ParameterError
from nanoml.runner import fit
from nanoml.train import train
from nanoml.tuning import TuningInterrupted, search
from nanoml.tuning.journal import read_journal
from nanoml.tuning.space import dimension, learner_space

KNN = nanoml.get_learner("knn")
MLP = nanoml.get_learner("mlp")


def _records(folder):
    return read_journal(str(folder / "trials.jsonl"))


# -- search spaces ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, default, distribution",
    [
        ("1..20", 5, IntDistribution(1, 20)),
        ("1..64:log", 5, IntDistribution(1, 64, log=True)),
        ("1..20", 1.0, FloatDistribution(1.0, 20.0)),  # a float hyperparameter: a float range
        ("1e-4..1e-1:log", 1e-3, FloatDistribution(1e-4, 0.1, log=True)),
        ("0.1..2", None, FloatDistribution(0.1, 2.0)),
        ("2..8", None, IntDistribution(2, 8)),
    ],
)
def test_a_range_is_typed_by_the_hyperparameter(text, default, distribution):
    dim = dimension("x", text, default)
    assert dim.distribution == distribution and dim.is_range


def test_listed_values_are_typed_as_fixed_settings_are():
    dim = dimension("gamma", "scale,0.1,1", "scale")
    assert dim.values == ("scale", 0.1, 1.0)
    sizes = dimension("hidden_sizes", "(64),(128,64),32", (128,))
    assert sizes.values == ((64,), (128, 64), (32,))
    # Optuna sees tuples as JSON labels; a journal's lists map back to them
    assert sizes.distribution == CategoricalDistribution(["[64]", "[128, 64]", "[32]"])
    assert sizes.value(sizes.label([128, 64])) == (128, 64)
    assert dimension("max_depth", "none,3", None).values == (None, 3)


@pytest.mark.parametrize(
    "text, default, fragment",
    [
        ("5..1", 1.0, "empty range"),
        ("1..1", 1, "empty range"),
        ("0..1:log", 1.0, "log range must start above 0"),
        ("1.5..3", 5, "needs integers"),
        ("a..b", 1.0, "with numbers"),
        ("1..2:exp", 1.0, "with numbers"),
        ("1..2", "uniform", "not a range"),
        ("1..2", True, "not a range"),
        ("a,b", 1.0, "expects a number"),
        ("3,x", 5, "expects an integer"),
        ("1,,2", 1.0, "empty value"),
        ("", 1.0, "gives no values"),
        ("1,2:log", 1.0, "only a range"),
    ],
)
def test_bad_space_text_is_a_parameter_error_naming_the_space(text, default, fragment):
    with pytest.raises(ParameterError, match=fragment) as info:
        dimension("x", text, default)
    assert info.value.argument == "space" and str(info.value).startswith("space x")


def test_space_overrides_replace_the_learners_own_and_fixed_settings_leave_it():
    space = learner_space(KNN, {"n_neighbors": "1..9", "lr": "0.1..1"}, fixed={"weights"})
    assert set(space) == {"n_neighbors"}  # lr is not knn's: it applies to other learners
    assert space["n_neighbors"].distribution == IntDistribution(1, 9)
    with pytest.raises(ParameterError, match="both searched and fixed"):
        learner_space(KNN, {"weights": "uniform"}, fixed={"weights"})


def test_unknown_hyperparameters_are_refused_before_anything_is_written(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ParameterError, match="none of the learners knn, gaussian-nb has a "
                                             "hyperparameter 'depth'"):
        nanoml.tune(["knn", "gaussian-nb"], "iris", space={"depth": "1..3"}, out=out)
    with pytest.raises(ParameterError, match="learner 'knn' has no hyperparameter 'lr'"):
        nanoml.tune("knn", "iris", params={"lr": 0.1}, out=out)
    with pytest.raises(ParameterError, match="grid sampler needs values"):
        nanoml.tune("logistic-regression", "iris", sampler="grid", space={"C": "0.1..1"},
                    out=out)
    assert not out.exists()


# -- the search ------------------------------------------------------------------------------
def test_search_improves_on_its_worst_trial_and_saves_the_refitted_best(tmp_path):
    out = tmp_path / "t"
    result = nanoml.tune("knn", "digits", trials=6, pruner="none", seed=0, out=out,
                         space={"n_neighbors": "1..60:log"})
    records = _records(out)
    values = [r["value"] for r in records]
    assert len(records) == 6 and all(r["state"] == "complete" for r in records)
    assert result.validation_score == max(values) > min(values)
    # the refit: all training rows, saved, loadable, and the test metrics are its own
    loaded = nanoml.load_model(out / "model.npz")
    data = load_dataset("digits", seed=0)
    assert loaded.evaluate(data.X_test, data.y_test) == result.metrics
    best = max(records, key=lambda r: r["value"])
    assert loaded.get_params()["n_neighbors"] == best["params"]["n_neighbors"]
    assert loaded.fit_labels_.shape[0] == data.X_train.shape[0]  # refitted on all of them
    for name in ("tune.json", "trials.jsonl", "summary.json", "model.npz",
                 "best_so_far.png", "hyperparameters.png"):
        assert (out / name).stat().st_size > 0, name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["learner"] == "knn" and summary["test"] == result.metrics
    assert summary["best_trial"] == best["trial"]
    for r in records:  # what the journal keeps of every trial
        assert {"params", "value", "seconds", "budget", "budget_unit", "state", "elapsed"} <= set(r)


def test_several_learners_the_best_one_is_chosen(tmp_path):
    result = nanoml.tune(["gaussian-nb", "knn"], "digits", trials=3, pruner="none",
                         out=tmp_path / "t")
    rows = {r["learner"]: r for r in result.learners}
    assert set(rows) == {"gaussian-nb", "knn"} and all(r["trials"] == 3 for r in rows.values())
    winner = max(rows.values(), key=lambda r: r["best_score"])
    assert result.learner == winner["learner"] and result.model.name == winner["learner"]
    assert result.validation_score == winner["best_score"]
    assert any(result.learner in line for line in result.table()[1:])


def test_classifiers_on_a_text_dataset_are_tuned_inside_its_pipeline(tmp_path):
    from tests.test_text import WORDS, _four_categories

    folder = _four_categories(tmp_path / "f", WORDS)
    result = nanoml.tune(["multinomial-nb", "logistic-regression"], "fortunes", trials=3,
                         data_dir=folder, space={"vectorizer": "counts,tfidf"},
                         params={"max_features": 12}, out=tmp_path / "t")
    rows = {r["learner"]: r for r in result.learners}
    assert set(rows) == {"multinomial-nb", "logistic-regression"}
    assert all(r["trials"] == 3 and r["failed"] == 0 for r in rows.values())
    assert {r["params"]["vectorizer"] for r in result.trials} <= {"counts", "tfidf"}
    model = result.model  # the pipeline, with the winner as its classifier
    assert model.name == "text-pipeline" and model.classifier == result.learner
    assert model.vectorizer_params["max_features"] == 12
    assert list(model.predict(["unix kernel", "senate vote"])) == [0, 3]
    with pytest.raises(ParameterError, match="no hyperparameter 'maxfeatures'"):
        nanoml.tune("multinomial-nb", "fortunes", data_dir=folder,
                    params={"maxfeatures": 12}, out=tmp_path / "u")


def test_a_seeded_search_in_process_is_reproducible(tmp_path):
    def trials(out):
        nanoml.tune(["knn"], "iris", trials=5, seed=3, out=out,
                    space={"n_neighbors": "1..40"})
        return [(r["params"], r["state"], r["value"], r["budget"]) for r in _records(out)]

    first = trials(tmp_path / "a")
    assert first == trials(tmp_path / "b")
    assert len({r[0]["n_neighbors"] for r in first}) > 1


def test_a_space_smaller_than_the_trials_is_tried_point_by_point(tmp_path):
    nanoml.tune("knn", "iris", trials=50, pruner="none", out=tmp_path / "t",
                space={"n_neighbors": "1,3,5", "weights": "uniform,distance"})
    tried = [tuple(sorted(r["params"].items())) for r in _records(tmp_path / "t")]
    assert len(tried) == 6 and len(set(tried)) == 6


def test_cross_validation_scores_each_trial_on_every_fold(tmp_path):
    data = load_dataset("iris", seed=0)
    folds = search._splits(data, 4, seed=0)
    held_out = np.sort(np.concatenate([val for _, val in folds]))
    np.testing.assert_array_equal(held_out, np.arange(data.X_train.shape[0]))
    for fit_rows, val_rows in folds:
        assert not set(fit_rows) & set(val_rows)
        assert len(fit_rows) + len(val_rows) == data.X_train.shape[0]
    result = nanoml.tune("gaussian-nb", "iris", trials=2, cv=4, out=tmp_path / "t")
    assert result.trials[0]["state"] == "complete"


def test_a_failing_trial_is_journaled_and_the_search_goes_on(tmp_path):
    # a negative C fails inside fit: that trial fails, the others are unaffected
    result = nanoml.tune("logistic-regression", "iris", space={"C": "-1,1"}, pruner="none",
                         out=tmp_path / "t")
    states = {r["params"]["C"]: r for r in _records(tmp_path / "t")}
    assert states[-1.0]["state"] == "fail" and "C" in states[-1.0]["error"]
    assert states[1.0]["state"] == "complete" and result.params["C"] == 1.0


# -- successive halving ----------------------------------------------------------------------
def test_halving_stops_poor_deep_trials_after_fewer_epochs(tmp_path):
    out = tmp_path / "t"
    nanoml.tune("mlp", "digits", trials=8, params={"epochs": 3, "hidden_sizes": (16,)},
                space={"lr": "1e-5..0.3:log"}, seed=0, out=out)
    records = _records(out)
    pruned = [r for r in records if r["state"] == "pruned"]
    complete = [r for r in records if r["state"] == "complete"]
    assert pruned and complete and all(r["budget_unit"] == "epochs" for r in records)
    assert all(r["budget"] == 3 for r in complete)
    # rungs at epochs 1 and 3: some trials stopped after their first epoch
    assert any(r["budget"] == 1 for r in pruned)
    assert all(len(r["intermediate"]) == r["budget"] for r in records)


def test_halving_stops_poor_classical_trials_on_fewer_rows(tmp_path):
    out = tmp_path / "t"
    nanoml.tune("knn", "digits", trials=10, seed=0, out=out,
                space={"n_neighbors": "1..100:log"})
    records = _records(out)
    n_fit = max(r["budget"] for r in records)
    pruned = [r for r in records if r["state"] == "pruned"]
    assert pruned and all(r["budget_unit"] == "rows" for r in records)
    assert all(r["budget"] < n_fit for r in pruned)
    assert all(r["budget"] == n_fit for r in records if r["state"] == "complete")
    # the rungs: a ninth and a third of the fit rows
    assert {int(k) for r in records for k in r["intermediate"]} <= {
        -(-n_fit // 9), 3 * -(-n_fit // 9), n_fit}


def test_without_a_pruner_every_trial_runs_its_full_budget(tmp_path):
    nanoml.tune("knn", "digits", trials=6, pruner="none", out=tmp_path / "t",
                space={"n_neighbors": "1..300:log"})
    assert {r["state"] for r in _records(tmp_path / "t")} == {"complete"}


def test_on_epoch_sees_each_epochs_metrics_and_can_stop_training():
    data = load_dataset("iris", seed=0)
    seen = []
    model = MLP(epochs=4, hidden_sizes=(8,))
    fit(model, data.X_train, data.y_train, on_epoch=lambda e, r: seen.append((e, r)))
    assert [e for e, _ in seen] == [1, 2, 3, 4]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(seen[0][1])

    class Stop(Exception):
        pass

    def stop_at_2(epoch, results):
        if epoch == 2:
            raise Stop

    with pytest.raises(Stop):
        MLP(epochs=4, hidden_sizes=(8,)).fit(data.X_train, data.y_train, on_epoch=stop_at_2)
    # a learner whose fit takes no on_epoch is fitted without it
    fit(KNN(), data.X_train, data.y_train, on_epoch=stop_at_2)


def test_train_calls_on_epoch_before_early_stopping():
    from nanoml import nn
    from nanoml.losses import mse
    from nanoml.optim import SGD

    rng = np.random.default_rng(0)
    module = nn.Linear(2, 1, rng=rng)
    X = rng.random((40, 2)).astype(np.float32)
    y = X.sum(axis=1, keepdims=True).astype(np.float32)
    epochs = []
    train(lambda x, t: (mse(module(x), t), None), module, SGD(module.parameters(), lr=0.0),
          X, y, epochs=5, batch_size=8, patience=1, progress=False,
          on_epoch=lambda e, r: epochs.append(e))
    assert epochs == [1, 2]  # lr 0: no improvement after epoch 1, stopped after epoch 2


# -- journal and resume ----------------------------------------------------------------------
def _ctrl_c_at(monkeypatch, n):
    """Count the trials run; Ctrl-C while the `n`-th one runs (once)."""
    calls, interrupt_at = [], [n]
    real = search.run_trial

    def counting(spec, data):
        calls.append(spec.params)
        if len(calls) in interrupt_at:
            interrupt_at.clear()
            raise KeyboardInterrupt
        return real(spec, data)

    monkeypatch.setattr(search, "run_trial", counting)
    return calls


def test_an_interrupted_search_resumes_and_runs_only_the_rest(tmp_path, monkeypatch):
    out = tmp_path / "t"
    calls = _ctrl_c_at(monkeypatch, 4)
    with pytest.raises(TuningInterrupted) as info:
        nanoml.tune(["knn", "gaussian-nb"], "iris", trials=4, out=out, pruner="none",
                    space={"n_neighbors": "1..40", "var_smoothing": "1e-12..1e-3:log"})
    assert info.value.finished == 3 and len(_records(out)) == 3
    first = _records(out)
    with open(out / "trials.jsonl", "a") as fh:
        fh.write('{"trial": 99, "learner": "kn')  # a line torn by a crash mid-write

    calls.clear()
    result = nanoml.tune(resume=str(out))
    assert len(calls) == 8 - 3 and result.trials_run == 5  # only the remaining ones ran
    records = _records(out)
    assert records[:3] == first and len(records) == 8
    assert sorted(r["trial"] for r in records) == list(range(8))
    assert sorted(r["learner"] for r in records) == ["gaussian-nb"] * 4 + ["knn"] * 4
    # resumed with a larger target, it runs just the extra trials
    calls.clear()
    nanoml.tune(resume=str(out), trials=5)
    assert len(calls) == 2 and len(_records(out)) == 10


def test_a_resumed_grid_search_tries_only_the_points_not_yet_tried(tmp_path, monkeypatch):
    out = tmp_path / "t"
    calls = _ctrl_c_at(monkeypatch, 4)
    space = {"n_neighbors": "1,3,5", "weights": "uniform,distance"}
    with pytest.raises(TuningInterrupted):
        nanoml.tune("knn", "iris", sampler="grid", space=space, pruner="none", out=out)
    calls.clear()
    nanoml.tune(resume=out)
    tried = [tuple(sorted(r["params"].items())) for r in _records(out)]
    assert len(calls) == 3 and len(tried) == 6 and len(set(tried)) == 6


def test_resume_refuses_new_search_settings(tmp_path):
    with pytest.raises(nanoml.NanomlError, match="no tuning run to resume"):
        nanoml.tune(resume=str(tmp_path))
    nanoml.tune("gaussian-nb", "iris", trials=1, out=tmp_path / "t")
    with pytest.raises(ParameterError, match="do not give learners"):
        nanoml.tune("knn", resume=str(tmp_path / "t"))


# -- the command line ------------------------------------------------------------------------
def test_cli_tune_prints_the_table_and_writes_the_folder(tmp_path):
    out = tmp_path / "t"
    result = CliRunner().invoke(cli, ["tune", "knn", "gaussian-nb", "--dataset", "iris",
                                      "--trials", "2", "--space", "n_neighbors=1..30",
                                      "--set", "weights=distance", "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:4] == ["learner", "trials", "pruned", "failed"]
    assert "best:" in result.output and "test accuracy" in result.output
    records = _records(out)
    assert len(records) == 4
    assert all(r["params"]["n_neighbors"] in range(1, 31) for r in records if r["learner"] ==
               "knn")
    assert json.loads((out / "tune.json").read_text())["params"] == {"weights": "distance"}


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--space", "n_neighbors=9..2"], "--space n_neighbors=9..2 is an empty range"),
        (["--space", "depth=1..3"], "--space: learner 'knn' has no hyperparameter 'depth'"),
        (["--space", "n_neighbors=a,b"], "expects an integer"),
        (["--space", "weights=1..2"], "not a range"),
        (["--space", "n_neighbors"], "--space entries are key=values"),
        (["--set", "n_neighbors=x"], "expects an integer"),
        (["--sampler", "annealing"], "--sampler must be one of tpe, random, grid"),
        (["--cv", "1"], "--cv must be an integer of at least 2"),
    ],
)
def test_cli_mistakes_are_one_line_and_exit_2(args, fragment, tmp_path):
    out = tmp_path / "t"
    result = CliRunner().invoke(cli, ["tune", "knn", "--dataset", "iris", *args,
                                      "--out", str(out)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"Error: {result.output.strip()[7:]}"]
    assert fragment in result.output
    assert not out.exists()
