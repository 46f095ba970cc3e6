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

from nanoml.errors import ParameterError
from nanoml.learner import Learner
from nanoml.modelfile import write_json

MODEL_FILE = "model.npz"


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


def check_task(cls, data):
    """A supervised learner needs a dataset of its own task."""
    if cls.task in ("classification", "regression") and data.task != cls.task:
        raise ParameterError(
            f"learner '{cls.name}' does {cls.task} but dataset '{data.name}' is a "
            f"{data.task} dataset; pick a {cls.task} dataset ('nanoml datasets' lists them)"
        )


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
    """runs/NAME-TIME, the folder of a run that was not given one."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return os.path.join("runs", f"{name}-{stamp}")


@contextlib.contextmanager
def run_folder(path):
    """Make the run folder `path` (and missing parents); if the run fails before writing
    anything there, remove again what was made, so that a mistake leaves no empty folders."""
    made = []
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        made.append(probe)
        probe = os.path.dirname(probe)
    os.makedirs(path, exist_ok=True)
    try:
        yield path
    except BaseException:
        for folder in made:  # innermost first
            if os.listdir(folder):
                break
            os.rmdir(folder)
        raise


def run(learner, dataset=None, *, params=None, seed=0, out=None, data_dir=None, target=None,
        impute=None):
    """Train `learner` (a name or a Learner subclass) on `dataset` (default: the learner's
    own), evaluate it on the test rows and write the run folder `out` (default
    runs/NAME-TIME); -> RunResult.

    `dataset` is a registered dataset's name or the path of a file or folder of one's own
    (`nanoml.data.load_file`: `target` names its target column, `impute` fills missing
    values). `seed` draws the dataset's split and seeds learners that take a seed;
    `params` are hyperparameters; `data_dir` is a folder holding a registered dataset's
    files. Mistakes (an unknown learner, dataset or hyperparameter, a dataset of the wrong
    task) raise a `nanoml.NanomlError` before anything is written.
    """
    from nanoml import __version__
    from nanoml.data import load_dataset
    from nanoml.report import write_report

    cls = learner_class(learner)
    model = make_learner(cls, params, seed)
    dataset = dataset or cls.default_dataset
    data = load_dataset(dataset, seed=seed, data_dir=data_dir, target=target, impute=impute,
                        task=cls.task)
    check_task(cls, data)
    folder = out or default_folder(cls.name)
    with run_folder(folder):
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
