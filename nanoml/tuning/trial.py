"""One trial, as a worker runs it: fit a learner with one set of hyperparameters on the
training rows of each validation split, score it on the held-out rows, and stop early
when successive halving says the trial is not worth its full budget.

The budget is epochs for learners whose fit reports each epoch (deep learners), training
rows for the others: those are fitted on a ninth of the rows, then a third, then all of
them. Only the first split's fits count towards pruning; a trial that survives trains
every split in full.
Everything here is plain data in and out, so that it runs the same in the calling process
and on a Dask worker.
"""

import contextlib
import dataclasses
import math
import os
import socket
import time

import numpy as np
import optuna
from optuna.trial import TrialState, create_trial

from nanoml.runner import fit, fit_takes, learner_inputs, make_learner

# Successive halving keeps the best third of the trials at each rung.
REDUCTION_FACTOR = 3
# Rows: rungs at a ninth, a third and all of the rows, none smaller than MIN_ROWS (or
# ROWS_PER_CLASS per class); epochs: rungs at epochs 1, 3, 9, 27, ...
ROW_RUNGS = 3
MIN_ROWS = 30
ROWS_PER_CLASS = 5
_RUNG_KEY = "completed_rung_{}"  # where Optuna's SuccessiveHalvingPruner keeps a rung's value


@dataclasses.dataclass
class SearchData:
    """What every trial reads, sent to each worker once: the dataset's training rows and
    the validation splits, (fit rows, held-out rows) index pairs into them."""

    dataset: object  # a nanoml.data.Dataset without its test rows
    splits: list

    def rows(self, cls, rows):
        """Inputs and targets of `rows`, as learner class `cls` reads them."""
        data = self.dataset
        y = None if data.y_train is None else data.y_train[rows]
        return learner_inputs(cls, data, data.X_train[rows]), y

    def n_classes(self):
        data = self.dataset
        return 0 if data.task != "classification" else len(np.unique(data.y_train))


def budget_unit(cls):
    """'epochs' for learners whose fit reports each epoch, else 'rows'."""
    return "epochs" if fit_takes(cls, "on_epoch") else "rows"


def min_budget(cls, data):
    """The smallest rung: 1 epoch, or the rows of the smallest of ROW_RUNGS rungs."""
    if budget_unit(cls) == "epochs":
        return 1
    n = len(data.splits[0][0])
    floor = max(MIN_ROWS, ROWS_PER_CLASS * data.n_classes())
    for k in range(ROW_RUNGS - 1, 0, -1):
        smallest = math.ceil(n / REDUCTION_FACTOR**k)
        if smallest >= floor:
            return smallest
    return n


@dataclasses.dataclass
class TrialSpec:
    """One trial: the learner class, every hyperparameter to set, the seed, and for
    pruning the smallest rung and the rung values the learner's finished trials reached
    (``None`` for no pruning)."""

    cls: type
    params: dict
    seed: int
    min_budget: int
    rungs: list = None


class Halving:
    """Optuna's SuccessiveHalvingPruner deciding for one trial, against the rungs other
    trials of the same learner completed (as known when this trial started: trials that
    run at the same time do not see each other's rungs)."""

    def __init__(self, min_budget, others):
        self.min_budget = min_budget
        self.others = others
        self._study = self._trial = None

    def should_stop(self, value, step):
        """Whether the trial, scoring `value` after `step` units of budget, should stop."""
        if step < self.min_budget:
            return False  # no rung yet: no need for a study
        if self._trial is None:
            with optuna_quiet():
                self._study = optuna.create_study(
                    direction="maximize",
                    pruner=optuna.pruners.SuccessiveHalvingPruner(
                        min_resource=self.min_budget, reduction_factor=REDUCTION_FACTOR),
                )
            self._study.add_trials(
                create_trial(state=TrialState.PRUNED, system_attrs={
                    _RUNG_KEY.format(k): v for k, v in enumerate(rungs)})
                for rungs in self.others if rungs
            )
            self._trial = self._study.ask()
        self._trial.report(value, step)
        return self._trial.should_prune()

    def reached(self):
        """The values this trial had at each rung it completed."""
        if self._trial is None:
            return []
        attrs = self._study.trials[-1].system_attrs
        rungs = []
        while _RUNG_KEY.format(len(rungs)) in attrs:
            rungs.append(attrs[_RUNG_KEY.format(len(rungs))])
        return rungs


class _Stopped(Exception):
    """Raised from inside a fit when successive halving stops the trial."""


def run_trial(spec, data):
    """Fit and score one trial; -> its outcome as plain values: state ('complete',
    'pruned' or 'fail'), value (the mean held-out score), budget (epochs or rows used
    last), intermediate (budget -> score), rungs, seconds, error, worker (host:pid)."""
    halving = None if spec.rungs is None else Halving(spec.min_budget, spec.rungs)
    outcome = {"state": "complete", "value": None, "budget": None, "intermediate": {},
               "rungs": [], "error": None}
    started = time.perf_counter()
    try:
        fitter = _by_epochs if budget_unit(spec.cls) == "epochs" else _by_rows
        scores = fitter(spec, data, halving, outcome)
        outcome["value"] = float(np.mean(scores))
        if not math.isfinite(outcome["value"]):
            outcome.update(state="fail", error=f"the score is {outcome['value']}")
    except _Stopped:
        outcome["state"] = "pruned"
        outcome["value"] = outcome["intermediate"][outcome["budget"]]
    except Exception as exc:  # a learner that fails costs its trial, not the search
        outcome.update(state="fail", error=f"{type(exc).__name__}: {exc}")
    outcome["rungs"] = halving.reached() if halving else []
    outcome["seconds"] = time.perf_counter() - started
    outcome["worker"] = f"{socket.gethostname()}:{os.getpid()}"
    return outcome


def _report(outcome, halving, value, step):
    outcome["intermediate"][step] = float(value)
    outcome["budget"] = step
    if halving is not None and halving.should_stop(value, step):
        raise _Stopped


def _score_key(task):
    return ("accuracy", 1.0) if task == "classification" else ("loss", -1.0)


def _by_epochs(spec, data, halving, outcome):
    """Each split trained in full; the first split's epochs report the learner's own
    validation score (accuracy, or minus the loss) and may stop the trial."""
    key, sign = _score_key(spec.cls.task)

    def on_epoch(epoch, results):
        value = results.get(f"val_{key}", results.get(key))
        _report(outcome, halving, sign * value, epoch)

    scores = []
    for i, (fit_rows, val_rows) in enumerate(data.splits):
        model = make_learner(spec.cls, spec.params, spec.seed)
        X, y = data.rows(spec.cls, fit_rows)
        fit(model, X, y, on_epoch=on_epoch if i == 0 else None)
        scores.append(model.score(*data.rows(spec.cls, val_rows)))
    return scores


def _by_rows(spec, data, halving, outcome):
    """The first split fitted on growing shares of its rows (each rung a new fit), then
    every split on all of them."""
    n = len(data.splits[0][0])
    step = spec.min_budget
    while halving is not None and step < n:  # rungs at min_budget * 3**k rows
        _report(outcome, halving, _fit_score(spec, data, data.splits[0], step), step)
        step *= REDUCTION_FACTOR
    scores = [_fit_score(spec, data, split) for split in data.splits]
    outcome["intermediate"][n] = float(scores[0])
    outcome["budget"] = n
    return scores


def _fit_score(spec, data, split, n_rows=None):
    fit_rows, val_rows = split
    model = make_learner(spec.cls, spec.params, spec.seed)
    fit(model, *data.rows(spec.cls, fit_rows[:n_rows]))
    return model.score(*data.rows(spec.cls, val_rows))


@contextlib.contextmanager
def optuna_quiet():
    """Optuna's INFO logs (one line per study and trial) off for a while."""
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(level)
