"""The search: one Optuna study per learner, asked for hyperparameters and told the
outcomes (ask-and-tell), trials run by an executor (`nanoml.tuning.execution`), each
finished trial journaled at once; then the best trial's learner refitted on all training
rows, saved and tested."""

import dataclasses
import itertools
import json
import os
import time

import numpy as np
import optuna
from optuna.trial import TrialState, create_trial

from nanoml.data import load_dataset, train_test_split
from nanoml.deep import show_progress
from nanoml.errors import NanomlError, ParameterError
from nanoml.modelfile import write_json
from nanoml.runner import (
    MODEL_FILE,
    check_task,
    default_folder,
    fit,
    learner_class,
    learner_inputs,
    make_learner,
    run_folder,
    tuned_as,
)
from nanoml.tuning import report
from nanoml.tuning.execution import open_executor
from nanoml.tuning.journal import JOURNAL_FILE, Journal, read_journal
from nanoml.tuning.space import check_known, fixed_params, grid_size, learner_space
from nanoml.tuning.trial import (
    SearchData,
    TrialSpec,
    budget_unit,
    min_budget,
    optuna_quiet,
    run_trial,
)
from nanoml.validation import check_seed

DEFAULT_TRIALS = 20  # per learner
HOLDOUT = 0.2  # share of the training rows held out to score trials, without cv
SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("asha", "none")
SETTINGS_FILE = "tune.json"
SUMMARY_FILE = "summary.json"
FIGURES = ("best_so_far.png", "hyperparameters.png")
_STATES = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED,
           "fail": TrialState.FAIL}


@dataclasses.dataclass
class TuneResult:
    """What a tuning run produced: the best learner refitted on all training rows, its
    validation and test scores, every trial, and where it was written."""

    model: object
    learner: str
    params: dict
    dataset: str
    score_name: str  # what validation_score measures: accuracy, r2 or score
    validation_score: float
    metrics: dict
    learners: list  # one row per learner: trials by state, best score and hyperparameters
    trials: list  # the journal's records
    trials_run: int  # trials this call ran (the rest were resumed)
    search_seconds: float  # wall time of this call's trials
    folder: str
    files: list

    def table(self):
        """The learners' rows as the lines of a table (what `nanoml tune` prints)."""
        return report.table(self.learners, self.score_name)

    def summary(self):
        """The result as plain values, for JSON."""
        return {
            "learner": self.learner, "params": self.params, "dataset": self.dataset,
            "score": self.score_name, "validation_score": self.validation_score,
            "test": self.metrics,
            "learners": self.learners, "trials_run": self.trials_run,
            "search_seconds": round(self.search_seconds, 4), "run_folder": self.folder,
            "files": self.files,
        }


class TuningInterrupted(KeyboardInterrupt):
    """A search stopped by Ctrl-C; the `finished` trials journaled in `folder` are kept."""

    def __init__(self, folder, finished):
        super().__init__(f"tuning stopped: {finished} finished trials kept in {folder}")
        self.folder, self.finished = folder, finished


def tune(learners=None, dataset=None, *, trials=None, space=None, params=None, sampler=None,
         pruner=None, cv=None, seed=None, workers=None, scheduler=None, out=None,
         data_dir=None, resume=None):
    """Search the hyperparameters of `learners` (names or Learner subclasses) on `dataset`
    (default: the first learner's own), choose the best, refit it on all training rows and
    test it; -> TuneResult. The run folder `out` (default runs/tune-TIME) gets tune.json
    (the settings), trials.jsonl (every finished trial, as it finishes), summary.json,
    model.npz and figures.

    - `trials`: trials per learner (default 20; with the grid sampler, the whole grid).
    - `space`: hyperparameter -> values to search instead of the learners' own
      ``search_space`` entries: a list, or text "low..high", "low..high:log", "a,b,c".
    - `params`: hyperparameters fixed in every trial (text is typed by the defaults).
      Both apply to each learner that has the hyperparameter.
    - `sampler`: "tpe" (default), "random" or "grid"; `pruner`: "asha" (default: successive
      halving over epochs or training rows) or "none".
    - `cv`: k-fold cross-validation on the training rows; default: 20% held out.
    - `seed`: draws the splits, seeds the samplers and learners (default 0). In-process
      a search with a seed is reproducible.
    - `workers`: run trials on a LocalCluster of that many processes; `scheduler`: on the
      running Dask cluster at that address; neither: in the calling process.
    - `resume`: a run folder of a stopped search to continue with its settings (only
      `trials`, `workers`, `scheduler` and `data_dir` may be given too): the trials in its
      journal are not run again.

    Ctrl-C raises TuningInterrupted once the workers are stopped; what finished stays in
    the journal. Mistakes raise `nanoml.NanomlError` before anything is written.
    """
    if resume is not None:
        given = dict(learners=learners, dataset=dataset, space=space, params=params,
                     sampler=sampler, pruner=pruner, cv=cv, seed=seed, out=out)
        settings = _resumed_settings(os.fspath(resume),
                                     [k for k, v in given.items() if v is not None])
        if trials is not None:
            settings["trials"] = _check_trials(trials)
        if data_dir is not None:
            settings["data_dir"] = data_dir
        classes = [learner_class(name) for name in settings["learners"]]
        folder = os.fspath(resume)
    else:
        classes, settings = _new_settings(learners, dataset, trials, space, params, sampler,
                                          pruner, cv, seed, data_dir)
        folder = os.fspath(out) if out else default_folder("tune")
    with optuna_quiet():
        plan = _Plan(classes, settings)
        executor = open_executor(workers, scheduler)
        try:
            with run_folder(folder):
                write_json(os.path.join(folder, SETTINGS_FILE), settings)
                journal = Journal(os.path.join(folder, JOURNAL_FILE))
                ran, seconds = _search(plan, executor, journal, folder)
        finally:
            executor.close()
        return _finish(plan, journal.records, ran, seconds, folder)


@dataclasses.dataclass
class _Learner:
    """One learner's part of the search: the class its trials fit (the learner, or the
    dataset's pipeline around it), its space, fixed settings and Optuna study."""

    name: str
    cls: type
    space: dict
    fixed: dict
    target: int  # trials to run in all
    study: optuna.Study
    min_budget: int
    grid_seed: int = None  # the whole space is tried point by point, in this seed's order
    rungs: list = dataclasses.field(default_factory=list)  # each finished trial's rungs
    finished: int = 0
    running: int = 0

    def wants_more(self):
        return self.finished + self.running < self.target

    def replay(self, record):
        """Tell the study about a trial journaled earlier."""
        dims = self.space
        self.study.add_trial(create_trial(
            state=_STATES[record["state"]],
            value=record["value"] if record["state"] != "fail" else None,
            params={n: dims[n].label(record["params"][n]) for n in dims},
            distributions={n: d.distribution for n, d in dims.items()},
            intermediate_values={int(k): v for k, v in record["intermediate"].items()},
        ))
        self.rungs.append(record["rungs"])
        self.finished += 1

    def queue_grid(self):
        """On a grid, queue every point not tried yet, in a seeded order: Optuna's
        ``enqueue_trial``, so that a resumed search skips exactly the points tried before.
        (Optuna's GridSampler numbers its points by trial number, which a resumed search
        with a lost trial would repeat, and raises after its last point outside
        ``study.optimize``, optuna issue 5141.)"""
        if self.grid_seed is None:
            return
        names = list(self.space)
        tried = {tuple(t.params[n] for n in names) for t in self.study.trials}
        points = list(itertools.product(*(self.space[n].grid() for n in names)))
        for i in np.random.default_rng(self.grid_seed).permutation(len(points)):
            if points[i] not in tried:
                self.study.enqueue_trial(dict(zip(names, points[i], strict=True)))

    def ask(self):
        """-> (Optuna trial, the hyperparameter values it asks for)."""
        trial = self.study.ask({n: d.distribution for n, d in self.space.items()})
        self.running += 1
        return trial, {n: d.value(trial.params[n]) for n, d in self.space.items()}

    def tell(self, trial, outcome):
        """Report a trial's outcome to the study."""
        self.running -= 1
        self.finished += 1
        for step, value in outcome["intermediate"].items():
            trial.report(value, int(step))
        state = _STATES[outcome["state"]]
        self.study.tell(
            trial, outcome["value"] if state == TrialState.COMPLETE else None, state=state)
        self.rungs.append(outcome["rungs"])


class _Plan:
    """The data, the validation splits and one `_Learner` per learner, from the settings."""

    def __init__(self, classes, settings):
        self.settings = settings
        seed = settings["seed"]
        self.data = load_dataset(settings["dataset"], seed=seed, data_dir=settings["data_dir"])
        for cls in classes:
            check_task(cls, self.data)
        data = self.data
        train_only = dataclasses.replace(
            data, X_test=data.X_test[:0], y_test=None if data.y_test is None else data.y_test[:0])
        self.search_data = SearchData(train_only, _splits(data, settings["cv"], seed))
        self.learners = {}
        space = _tuples(settings["space"])
        for i, cls in enumerate(classes):
            fitted, base, defaults, searched = tuned_as(cls, settings["dataset"], seed)
            fixed = fixed_params(cls, _tuples(settings["params"]), defaults)
            dims = learner_space(cls, space, fixed, defaults, searched)
            fixed = {**base, **fixed}
            make_learner(fitted, fixed)  # unknown or mistyped settings fail here, not per trial
            target = _target(settings, dims)
            sampler_seed = int(np.random.SeedSequence([seed, i]).generate_state(1)[0])
            # the grid sampler, or any whose trials cover the whole space: each point once
            grid = settings["sampler"] == "grid" or grid_size(dims) == target
            sampler = (optuna.samplers.TPESampler if settings["sampler"] == "tpe" and not grid
                       else optuna.samplers.RandomSampler)(seed=sampler_seed)
            study = optuna.create_study(direction="maximize", sampler=sampler,
                                        pruner=optuna.pruners.NopPruner())
            self.learners[cls.name] = _Learner(cls.name, fitted, dims, fixed, target, study,
                                               min_budget(fitted, self.search_data),
                                               sampler_seed if grid else None)

    @property
    def score_name(self):
        """What `Learner.score` measures for these learners: accuracy, r2, or their own."""
        tasks = {s.cls.task for s in self.learners.values()}
        task = tasks.pop() if len(tasks) == 1 else None
        return {"classification": "accuracy", "regression": "r2"}.get(task, "score")


def _target(settings, dims):
    """Trials for one learner: as asked, but no more than its space has points."""
    size = grid_size(dims)
    if settings["sampler"] == "grid":
        return min(settings["trials"] or size, size)
    wanted = settings["trials"] or DEFAULT_TRIALS
    return wanted if size is None else min(wanted, size)


def _search(plan, executor, journal, folder):
    """Run trials until each learner has its target, journaling each as it finishes;
    -> (trials run, seconds)."""
    for record in journal.records:
        if record["learner"] in plan.learners:
            plan.learners[record["learner"]].replay(record)
    for search in plan.learners.values():
        search.queue_grid()
    prune = plan.settings["pruner"] == "asha"
    started = time.monotonic()
    before = max((r["elapsed"] for r in journal.records), default=0.0)
    number = itertools.count(1 + max((r["trial"] for r in journal.records), default=-1))
    remaining = sum(max(0, s.target - s.finished) for s in plan.learners.values())
    bar = _progress_bar(remaining)
    running, turn, ran = {}, _RoundRobin(list(plan.learners.values())), 0
    try:
        data = executor.scatter(plan.search_data)
        while True:
            while len(running) < executor.slots() and (search := turn.next()) is not None:
                trial, params = search.ask()
                spec = TrialSpec(search.cls, {**search.fixed, **params}, plan.settings["seed"],
                                 search.min_budget, list(search.rungs) if prune else None)
                running[executor.submit(run_trial, spec, data)] = (search, trial, params,
                                                                   next(number))
            if not running:
                break
            for future in executor.first_done(running):
                search, trial, params, trial_number = running.pop(future)
                outcome = executor.outcome(future)
                search.tell(trial, outcome)
                journal.append({
                    "trial": trial_number, "learner": search.name,
                    "state": outcome["state"], "value": outcome["value"], "params": params,
                    "budget": outcome["budget"], "budget_unit": budget_unit(search.cls),
                    "seconds": outcome["seconds"],
                    "elapsed": before + time.monotonic() - started,
                    "finished_at": time.time(), "intermediate": outcome["intermediate"],
                    "rungs": outcome["rungs"], "error": outcome["error"],
                    "worker": outcome["worker"],
                })
                ran += 1
                bar.update(1)
    except KeyboardInterrupt:  # count from the file: Ctrl-C may come just after a line
        raise TuningInterrupted(folder, len(read_journal(journal.path))) from None
    finally:
        bar.close()
    return ran, time.monotonic() - started


class _RoundRobin:
    """The learners that want more trials, in turn."""

    def __init__(self, searches):
        self.searches, self.i = searches, 0

    def next(self):
        n = len(self.searches)
        for k in range(n):
            search = self.searches[(self.i + k) % n]
            if search.wants_more():
                self.i = (self.i + k + 1) % n
                return search
        return None


def _progress_bar(total):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="tuning", unit="trial", disable=not show_progress(),
                dynamic_ncols=True)


def _finish(plan, records, ran, seconds, folder):
    """The table, figures and summary; the best trial's learner refitted on all
    training rows, saved as the model file and scored on the test rows."""
    names = list(plan.learners)
    complete = [r for r in records if r["state"] == "complete" and r["learner"] in names]
    if not complete:
        failed = [r for r in records if r["state"] == "fail"]
        reason = f"; the first failure: {failed[0]['error']}" if failed else ""
        raise NanomlError(f"no trial completed, nothing to choose from{reason}")
    best = max(complete, key=lambda r: (r["value"], -r["trial"]))
    search = plan.learners[best["learner"]]
    model = make_learner(search.cls, {**search.fixed, **_tuples(best["params"])},
                         plan.settings["seed"])
    data = plan.data
    model_path = os.path.join(folder, MODEL_FILE)
    fit(model, learner_inputs(search.cls, data, data.X_train), data.y_train,
        checkpoint=model_path)
    metrics = model.evaluate(learner_inputs(search.cls, data, data.X_test), data.y_test)
    model.save(model_path)
    figures = model.write_artifacts(folder, data)
    rows = report.learner_rows(records, names)
    spaces = {name: s.space for name, s in plan.learners.items()}
    report.plot_best_so_far(records, names, os.path.join(folder, FIGURES[0]), plan.score_name)
    report.plot_hyperparameters(records, spaces, os.path.join(folder, FIGURES[1]),
                                plan.score_name)
    result = TuneResult(
        model=model, learner=search.name, params=model.get_params(),
        dataset=plan.settings["dataset"], score_name=plan.score_name,
        validation_score=best["value"], metrics=metrics,
        learners=rows, trials=records, trials_run=ran, search_seconds=seconds, folder=folder,
        files=[SETTINGS_FILE, JOURNAL_FILE, SUMMARY_FILE, MODEL_FILE, *FIGURES, *figures],
    )
    write_json(os.path.join(folder, SUMMARY_FILE),
               {**result.summary(), "best_trial": best["trial"]})
    return result


# -- settings --------------------------------------------------------------------------------
def _new_settings(learners, dataset, trials, space, params, sampler, pruner, cv, seed,
                  data_dir):
    if isinstance(learners, (str, type)):
        learners = [learners]
    if not learners:
        raise ParameterError("name at least one learner to tune")
    classes = [learner_class(learner) for learner in learners]
    if len({c.name for c in classes}) < len(classes):
        raise ParameterError("a learner is named twice; name each once")
    sampler = _check_choice("sampler", sampler or "tpe", SAMPLERS)
    pruner = _check_choice("pruner", pruner or "asha", PRUNERS)
    if cv is not None and (not _is_int(cv) or cv < 2):
        raise ParameterError(f"cv must be an integer of at least 2 (folds), got {cv!r}",
                             argument="cv")
    seed = check_seed(0 if seed is None else seed)
    space, params = dict(space or {}), dict(params or {})
    dataset = dataset or classes[0].default_dataset
    views = [tuned_as(cls, dataset) for cls in classes]
    check_known(classes, space, "space", [view[2] for view in views])
    check_known(classes, params, "params", [view[2] for view in views])
    for cls, (_, _, defaults, searched) in zip(classes, views, strict=True):
        # the space's text is read now: a mistake stops here
        fixed = fixed_params(cls, _tuples(params), defaults)
        dims = learner_space(cls, _tuples(space), fixed, defaults, searched)
        if sampler == "grid":
            for dim in dims.values():
                dim.grid()  # a range of floats has none
    settings = {
        "learners": [c.name for c in classes],
        "dataset": dataset,
        "trials": None if trials is None else _check_trials(trials),
        "space": space, "params": params, "sampler": sampler, "pruner": pruner, "cv": cv,
        "seed": seed, "data_dir": None if data_dir is None else str(data_dir),
    }
    return classes, settings


def _resumed_settings(folder, given):
    path = os.path.join(folder, SETTINGS_FILE)
    if not os.path.exists(path):
        raise NanomlError(f"there is no tuning run to resume in '{folder}' (no "
                          f"{SETTINGS_FILE})", argument="resume")
    if given:
        raise ParameterError(
            f"a resumed search keeps the settings in {path}; do not give "
            f"{', '.join(given)} (only trials, workers, scheduler or data_dir)",
            argument="resume")
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _check_trials(trials):
    if not _is_int(trials) or trials < 1:
        raise ParameterError(f"trials must be a positive integer, got {trials!r}",
                             argument="trials")
    return trials


def _check_choice(name, value, choices):
    if value not in choices:
        raise ParameterError(f"{name} must be one of {', '.join(choices)}, got {value!r}",
                             argument=name)
    return value


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _tuples(values):
    """JSON's lists back as tuples (hyperparameters given as sequences are tuples), one
    level into lists of choices."""
    def fix(v):
        if isinstance(v, list):
            return tuple(fix(x) for x in v)
        return v

    return {k: [fix(x) for x in v] if isinstance(v, list) else fix(v)
            for k, v in values.items()}


def _splits(data, cv, seed):
    """(fit rows, held-out rows) pairs of the training rows: one with HOLDOUT held out,
    or `cv` folds; stratified for classification, the fit rows in random order."""
    n = data.X_train.shape[0]
    y = data.y_train if data.task == "classification" else None
    if cv is None:
        fit_rows, _, val_rows, _ = train_test_split(np.arange(n), y, test_fraction=HOLDOUT,
                                                    seed=seed)
        return [(fit_rows, val_rows)]
    if cv > n:
        raise ParameterError(f"cv is {cv} folds but the dataset has {n} training rows",
                             argument="cv")
    rng = np.random.default_rng(seed)
    fold = np.empty(n, dtype=np.int64)
    groups = [np.flatnonzero(y == c) for c in np.unique(y)] if y is not None else [np.arange(n)]
    dealt = 0
    for rows in groups:  # each class dealt round the folds, continuing where the last ended
        fold[rng.permutation(rows)] = (dealt + np.arange(rows.size)) % cv
        dealt += rows.size
    return [(rng.permutation(np.flatnonzero(fold != k)), np.flatnonzero(fold == k))
            for k in range(cv)]


