"""A run as a library call, `nanoml.run`: the steps the `nanoml run` command takes, for
scripts and for the commands built on it (tuning, distillation, explanations)::

    import nanoml

    result = nanoml.run("cnn", dataset="digits", seed=0, params={"lr": 3e-3}, out="runs/x")
    result.metrics        # {"accuracy": 0.98...}
    result.model          # the fitted learner, also saved as runs/x/model.npz

A run makes its folder, fits the learner on the dataset's training rows (a learner whose
``fit`` takes ``checkpoint`` gets the model file's path, written at every improvement),
evaluates it on the test rows, and writes the model, ``metrics.json``, ``config.json`` and
the learner's figures. A run that fails before writing anything leaves no folder behind.
"""

import contextlib
import dataclasses
import datetime
import inspect
import os
import time

from nanoml.errors import ParameterError, RunFolderError
from nanoml.learner import Learner
from nanoml.modelfile import write_json

MODEL_FILE = "model.npz"
# The learner that reads a table file of documents: a vectorizer, then the classifier run.
TEXT_PIPELINE = "text-pipeline"


@dataclasses.dataclass
class RunResult:
    """What a run produced: the fitted model, its test metrics and where it was written."""

    model: Learner
    learner: str
    dataset: str
    metrics: dict
    fit_seconds: float
    folder: str
    files: list

    def summary(self):
        """The result as plain values, for JSON."""
        return {
            "learner": self.learner,
            "dataset": self.dataset,
            "metrics": self.metrics,
            "fit_seconds": round(self.fit_seconds, 4),
            "run_folder": self.folder,
            "files": self.files,
        }


def learner_class(learner):
    """A learner given by its registered name or as a Learner subclass -> the class."""
    if isinstance(learner, str):
        from nanoml.plugins import get_learner

        return get_learner(learner)
    if isinstance(learner, type) and issubclass(learner, Learner):
        return learner
    raise ParameterError(
        f"learner must be a learner's name or a nanoml.Learner subclass, got {learner!r}"
    )


def make_learner(cls, params=None, seed=None):
    """An unfitted `cls` with hyperparameters `params`; `seed` goes to learners that take
    one, unless `params` sets it. Unknown names raise ParameterError listing valid ones."""
    params = dict(params or {})
    if seed is not None and "seed" in cls.param_defaults():
        params.setdefault("seed", seed)
    return cls().set_params(**params)


def pipeline_for(cls, dataset):
    """The learner class a run of `cls` on `dataset` wraps it in: a registered dataset's
    pipeline (the steps its raw rows need, e.g. a vectorizer for text), or TEXT_PIPELINE
    for a table file of documents, where that does `cls`'s task and is not `cls` itself;
    else None."""
    from nanoml.data.tables import table_reads_documents
    from nanoml.plugins import plugin_set

    entry = plugin_set().datasets.get(dataset) if isinstance(dataset, str) else None
    if entry is not None:
        pipeline = entry.pipeline
    elif dataset is not None and table_reads_documents(dataset):
        pipeline = TEXT_PIPELINE
        if pipeline not in plugin_set().learners:
            raise ParameterError(f"'{dataset}' holds free text, which needs the learner "
                                 f"'{TEXT_PIPELINE}' (the nanoml_text plugin); none is "
                                 "registered")
    else:
        return None
    if not pipeline or pipeline == cls.name or getattr(cls, "reads_text", False):
        return None  # no steps needed, or a learner that reads raw documents itself
    chain = learner_class(pipeline)
    return chain if chain.task == cls.task else None


def settable(cls, dataset):
    """Hyperparameter -> default for what a run of `cls` on `dataset` can be given: the
    learner's own, or, where the dataset's pipeline wraps it, the pipeline's and its steps'."""
    chain = pipeline_for(cls, dataset)
    return cls.param_defaults() if chain is None else chain.settable_defaults(cls)


def chained(cls, dataset, params, seed):
    """(class, hyperparameters) of the learner a run fits: `cls` itself, or its dataset's
    pipeline with `cls` as the classifier and `params` (and `seed`, if `cls` takes one)
    handed through to it."""
    chain = pipeline_for(cls, dataset)
    if chain is None:
        return cls, params
    params = {"classifier": cls.name, **(params or {})}
    if seed is not None and "seed" in cls.param_defaults():
        params.setdefault("seed", seed)
    return chain, params


def tuned_as(cls, dataset, seed=None):
    """What tuning `cls` on `dataset` searches: (the class a trial fits, the settings every
    trial carries, hyperparameter -> default of what a trial may set, the search space).
    The learner itself, or the dataset's pipeline around it, whose own search space (a text
    dataset's vectorizers) joins the learner's."""
    chain, base = chained(cls, dataset, {}, seed)
    if chain is cls:
        return cls, base, cls.param_defaults(), dict(cls.search_space)
    return (chain, base, chain.settable_defaults(cls),
            {**chain.search_space, **cls.search_space})


def check_task(cls, data):
    """A supervised learner needs a dataset of its own task."""
    if cls.task in ("classification", "regression") and data.task != cls.task:
        raise ParameterError(
            f"learner '{cls.name}' does {cls.task} but dataset '{data.name}' is a "
            f"{data.task} dataset; pick a {cls.task} dataset ('nanoml datasets' lists them)"
        )


def environment_inputs(name):
    """What a reinforcement learner learns from, in a run: the environment `name`, handed
    to its ``fit`` and ``evaluate`` in place of the training and test rows (the learner
    makes the environment from its name)."""
    from nanoml.data import Dataset

    return Dataset(name=name, task="reinforcement", X_train=name, y_train=None, X_test=name,
                   y_test=None)


def learner_inputs(cls, data, X):
    """Rows of `data` as the learner reads them: in the dataset's sample shape (images,
    sequences) for learners with an ``input_ndim``, else flat."""
    return data.shaped(X) if cls.input_ndim else X


def fit_takes(learner, option):
    """Whether `learner`'s (a class or an instance) fit takes the keyword `option`."""
    return option in inspect.signature(learner.fit).parameters


def fit(model, X, y, checkpoint=None, on_epoch=None):
    """``model.fit(X, y)``, passing `checkpoint` (a model file written at every
    improvement) and `on_epoch` (called with each epoch's metrics) where the learner's fit
    takes them; -> the seconds it took."""
    given = {"checkpoint": checkpoint, "on_epoch": on_epoch}
    extra = {k: v for k, v in given.items() if v is not None and fit_takes(model, k)}
    started = time.perf_counter()
    model.fit(X, y, **extra)
    return time.perf_counter() - started


def default_folder(name):
    """runs/NAME-TIME, the folder of a run that was not given one (runs/NAME-TIME-2 and so
    on when runs started in the same second)."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = os.path.join("runs", f"{name}-{stamp}")
    candidate, n = folder, 1
    while os.path.exists(candidate):
        n += 1
        candidate = f"{folder}-{n}"
    return candidate


# Files whose presence marks a folder as holding a finished (or started) run.
_RUN_FILES = (MODEL_FILE, "metrics.json")
_LOCK = ".nanoml-run.lock"


@contextlib.contextmanager
def run_folder(path, *, overwrite=True):
    """Make the run folder `path` (and missing parents) and hold it for this run; if the run
    fails before writing anything there, remove again what was made, so that a mistake
    leaves no empty folders.

    While held, a lock file keeps a second run (another process) out of the folder. Unless
    `overwrite`, a folder that already holds a run is refused.
    """
    made = []
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        made.append(probe)
        probe = os.path.dirname(probe)
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise RunFolderError(f"cannot make the run folder '{path}': {exc.strerror}",
                             argument="out") from None
    if not overwrite and any(os.path.exists(os.path.join(path, f)) for f in _RUN_FILES):
        raise RunFolderError(f"'{path}' already holds a run; choose another out folder, or "
                             "overwrite it", argument=("out", "overwrite"))
    lock = _take_lock(path)
    try:
        yield path
    except BaseException:
        os.unlink(lock)
        for folder in made:  # innermost first
            if os.listdir(folder):
                break
            os.rmdir(folder)
        raise
    os.unlink(lock)


def _take_lock(folder):
    """Create the folder's lock file holding this process id; refuse when a live process
    holds it (a lock left by a process that died is taken over)."""
    lock = os.path.join(folder, _LOCK)
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if _holder_alive(lock):
                raise RunFolderError(f"another run is writing to '{folder}' right now; "
                                     "choose another out folder", argument="out") from None
            os.unlink(lock)
            continue
        except OSError as exc:
            raise RunFolderError(f"cannot write to the run folder '{folder}': {exc.strerror}",
                                 argument="out") from None
        with os.fdopen(fd, "w") as fh:
            fh.write(str(os.getpid()))
        return lock
    raise RunFolderError(f"cannot lock the run folder '{folder}'", argument="out")


def _holder_alive(lock):
    try:
        with open(lock) as fh:
            pid = int(fh.read().strip() or 0)
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, ValueError):
        return True  # unreadable, or a process we may not signal: assume it runs
    return pid > 0


def run(learner, dataset=None, *, params=None, seed=0, out=None, data_dir=None, target=None,
        impute=None, overwrite=False):
    """Train `learner` (a name or a Learner subclass) on `dataset` (default: the learner's
    own), evaluate it on the test rows and write the run folder `out` (default
    runs/NAME-TIME); -> RunResult.

    `dataset` is a registered dataset's name or the path of a file or folder of one's own
    (`nanoml.data.load_file`: `target` names its target column, `impute` fills missing
    values). `seed` draws the dataset's split and seeds learners that take a seed;
    `params` are hyperparameters; `data_dir` is a folder holding a registered dataset's
    files. Mistakes (an unknown learner, dataset or hyperparameter, a dataset of the wrong
    task) raise a `nanoml.NanomlError` before anything is written, and so does an `out`
    folder that holds another run, unless `overwrite`.
    """
    from nanoml import __version__
    from nanoml.data import load_dataset
    from nanoml.report import write_report

    cls = learner_class(learner)
    dataset = dataset or cls.default_dataset
    if cls.task == "reinforcement":
        data = environment_inputs(dataset)
    else:
        data = load_dataset(dataset, seed=seed, data_dir=data_dir, target=target,
                            impute=impute, task=cls.task)
    check_task(cls, data)
    cls, params = chained(cls, dataset, params, seed)
    model = make_learner(cls, params, seed)
    folder = out or default_folder(cls.name)
    with run_folder(folder, overwrite=overwrite):
        model_path = os.path.join(folder, MODEL_FILE)
        fit_seconds = fit(model, learner_inputs(cls, data, data.X_train), data.y_train,
                          checkpoint=model_path)
        metrics = model.evaluate(learner_inputs(cls, data, data.X_test), data.y_test)
        model.save(model_path, inputs=data.schema)
        figures = model.write_artifacts(folder, data)
        record = {"test": metrics, "fit_seconds": fit_seconds,
                  "history": getattr(model, "history_", None) or {}}
        write_json(os.path.join(folder, "metrics.json"), record)
        config = {"learner": cls.name, "params": model.get_params(), "dataset": dataset,
                  "seed": seed, "nanoml_version": __version__}
        write_json(os.path.join(folder, "config.json"), config)
        files = [MODEL_FILE, "metrics.json", "config.json", *figures]
        page = write_report(folder, config, record, figures, defaults=cls.param_defaults(),
                            options={"data_dir": data_dir, "target": target, "impute": impute},
                            files=files)
    return RunResult(
        model=model, learner=cls.name, dataset=dataset, metrics=metrics,
        fit_seconds=fit_seconds, folder=folder, files=[*files, page],
    )
