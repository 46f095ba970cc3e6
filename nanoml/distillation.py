"""Knowledge distillation as a library call, `nanoml.distill`: a teacher (any classifier)
teaches a small deep student (Hinton, Vinyals and Dean, 2015)::

    import nanoml

    result = nanoml.distill("random-forest", "mlp", "digits", params={"epochs": 20})
    result.metrics["distilled"]["accuracy"], result.metrics["from_labels"]["accuracy"]

The teacher is a saved model file or a learner's name (then trained first, in the same run
folder). Its outputs on the training rows are computed once, as log-probabilities, and kept
in the run folder (``teacher_outputs.npy``); for a deep teacher they are its logits less
each row's log-sum-exp, which the softened softmax does not see. The student trains
through its own loop with `nanoml.losses.distillation` as its loss; the same student is
also trained from the labels alone (same seed, same epochs), and the run folder gets the
three models, ``metrics.json`` (accuracy, parameter count, model file size, inference
throughput on one thread, per-epoch test accuracy) and ``accuracy.png``.
"""

import dataclasses
import os
import time

import numba
import numpy as np
from threadpoolctl import threadpool_limits

from nanoml import modelfile
from nanoml.errors import ParameterError, UnknownLearnerError
from nanoml.learner import Learner
from nanoml.losses import distillation
from nanoml.modelfile import atomic_write, write_json
from nanoml.plots import _pyplot, _save, _styled
from nanoml.runner import (
    check_task,
    default_folder,
    fit,
    learner_class,
    learner_inputs,
    make_learner,
    run_folder,
)
from nanoml.validation import check_number

TEACHER_FILE = "teacher.npz"
STUDENT_FILE = "student.npz"
BASELINE_FILE = "from_labels.npz"
OUTPUTS_FILE = "teacher_outputs.npy"
# At most this many test rows are timed for the inference throughput.
THROUGHPUT_ROWS = 10_000


@dataclasses.dataclass
class DistillResult:
    """What a distillation produced: the three models, their metrics and where they are."""

    teacher: Learner
    student: Learner
    from_labels: Learner
    dataset: str
    metrics: dict
    folder: str
    files: list

    def summary(self):
        """The result as plain values, for JSON."""
        return {"dataset": self.dataset, "metrics": self.metrics, "run_folder": self.folder,
                "files": self.files}


def distilling(cls, teacher_outputs, temperature, alpha):
    """The deep classifier `cls`, trained with the distillation loss against
    `teacher_outputs` (one row per training row) instead of the labels alone. Its instances
    save as `cls` (same name), so the model file loads as the plain student."""

    class Distilled(cls):
        def _fit_targets(self, y, n):
            learned, codes = super()._fit_targets(y, n)
            return learned, (codes, teacher_outputs)

        def batch_loss(self, x, y, teacher):
            _, logits = super().batch_loss(x, y)
            return distillation(logits, y, teacher, temperature, alpha), logits

    Distilled.__name__ = Distilled.__qualname__ = f"Distilled{cls.__name__}"
    return Distilled


def teacher_outputs(teacher, X):
    """Log-probabilities of `teacher` on the rows X (float32, -inf where it says 0)."""
    with np.errstate(divide="ignore"):
        return np.log(teacher.predict_proba(X)).astype(np.float32)


def transfer_rows(X, copies, jitter, rng, shift=0, shape=None):
    """`copies` jittered copies of each row of X (a transfer set for the teacher to label):
    each an image of `shape` moved by up to `shift` pixels (`shifted`), then Gaussian noise
    of `jitter` times each feature's standard deviation added."""
    rows = np.repeat(X, copies, axis=0)
    if shift:
        rows = shifted(rows, shape, shift, rng)
    if jitter:
        rows = rows + rng.standard_normal(rows.shape) * (jitter * X.std(axis=0))
    return rows.astype(X.dtype)


def shifted(X, shape, shift, rng):
    """Each row of X, an image of `shape` (channels, height, width) flattened, moved by a
    random whole number of pixels from -`shift` to `shift` along each axis; the pixels it
    leaves are 0 (the background of digit and clothing images)."""
    images = X.reshape(-1, *shape)
    out = np.zeros_like(images)
    moves = rng.integers(-shift, shift + 1, size=(images.shape[0], 2))
    height, width = shape[-2:]

    def span(move, size):  # (source, destination) slices of a move along one axis
        return slice(max(-move, 0), size - max(move, 0)), slice(max(move, 0), size + min(move, 0))

    for dy in range(-shift, shift + 1):
        (src_y, dst_y) = span(dy, height)
        for dx in range(-shift, shift + 1):
            (src_x, dst_x) = span(dx, width)
            rows = np.flatnonzero((moves[:, 0] == dy) & (moves[:, 1] == dx))
            out[rows, :, dst_y, dst_x] = images[rows, :, src_y, src_x]
    return out.reshape(X.shape)


def parameter_count(model, path):
    """The network's parameters for a deep learner; else the entries of the learned arrays
    in its model file `path`."""
    module = getattr(model, "module_", None)
    if module is not None:
        return int(sum(p.data.size for p in module.parameters()))
    return int(sum(a.size for a in modelfile.load(path)[1].values()))


def throughput(model, X, repeats=3):
    """Rows per second `model.predict` gets through on (up to THROUGHPUT_ROWS of) X on one
    thread: the best of `repeats` timings after one untimed pass (compilation, allocation).

    One thread (BLAS and Numba), because threads that wait for busy cores make a timing on
    a shared machine vary fifty-fold; one thread compares the models' own costs.
    """
    X = X[:THROUGHPUT_ROWS]
    threads = numba.get_num_threads()
    with threadpool_limits(limits=1):
        numba.set_num_threads(1)
        try:
            model.predict(X)
            best = np.inf
            for _ in range(repeats):
                started = time.perf_counter()
                model.predict(X)
                best = min(best, time.perf_counter() - started)
        finally:
            numba.set_num_threads(threads)
    return X.shape[0] / best


def _setting(name, value, **bounds):
    """`check_number`, its error naming `name` as the argument."""
    try:
        return check_number(name, value, **bounds)
    except ParameterError as exc:
        raise ParameterError(str(exc), argument=name) from None


def _teacher_class(teacher):
    """The class a teacher given by name (or class) is; a name that is no learner's, and no
    file either, is an error about the teacher."""
    try:
        return learner_class(teacher)
    except UnknownLearnerError:
        raise ParameterError(f"teacher '{teacher}' is neither a model file nor a learner's "
                             "name ('nanoml list' shows them)", argument="teacher") from None


def check_student(cls):
    """A deep classifier, which the distillation loss can train."""
    from nanoml.deep import DeepLearner

    if not (issubclass(cls, DeepLearner) and cls.task == "classification"):
        raise ParameterError(
            f"student must be a deep classifier (a nanoml.deep.DeepLearner subclass), got "
            f"'{cls.name}' ({cls.task})", argument="student")


def check_teacher(cls):
    """A classifier with class probabilities."""
    if cls.task != "classification" or not hasattr(cls, "predict_proba"):
        raise ParameterError(
            f"teacher must be a classifier with class probabilities, got '{cls.name}' "
            f"({cls.task})", argument="teacher")


def check_labels(teacher, classes):
    """The teacher predicts the labels `classes` of the student's dataset."""
    if not (teacher.classes_.shape == classes.shape and np.all(teacher.classes_ == classes)):
        raise ParameterError(
            f"teacher '{teacher.name}' predicts the labels {teacher.classes_.tolist()} but "
            f"the dataset has {classes.tolist()}", argument="teacher")


def _test_curve(model, X, y):
    """An on_epoch callback and the list it fills with each epoch's test accuracy."""
    curve = []

    def record(epoch, results):
        curve.append(float(model.score(X, y)))

    return record, curve


@_styled
def plot_accuracy(curves, path, title):
    """Test accuracy per epoch of each named curve; a single value is a flat line."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.8))
    longest = max(len(c) for c in curves.values())
    for label, values in curves.items():
        if len(values) == 1:
            ax.axhline(values[0], linestyle="--", color="grey", label=f"{label} ({values[0]:.4f})")
        else:
            ax.plot(np.arange(1, len(values) + 1), values, marker=".",
                    label=f"{label} (last {values[-1]:.4f})")
    ax.set_xlim(0.5, longest + 0.5)
    ax.set_xlabel("epoch")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("test accuracy")
    ax.set_title(title)
    ax.legend()
    _save(fig, path)


def _model_metrics(model, path, X, y, curve, extra):
    """One model's line of metrics.json."""
    return {
        "learner": model.name,
        "accuracy": float(model.score(X, y)),
        "parameters": parameter_count(model, path),
        "file_bytes": os.path.getsize(path),
        "rows_per_second": throughput(model, X),
        **extra,
        "test_accuracy_by_epoch": curve,
    }


def distill(teacher, student, dataset=None, *, params=None, teacher_params=None,
            temperature=4.0, alpha=0.1, transfer=None, jitter=0.1, shift=0, seed=0,
            out=None, data_dir=None):
    """Distil `teacher` into `student` on `dataset`; -> DistillResult.

    `teacher`: a saved model file's path, or a classifier's name or class, trained here
    with `teacher_params`. `student`: a deep classifier's name or class, built with
    `params` (its own hyperparameters). `dataset` (default: the student's own) is a
    registered dataset; `data_dir` a folder with its files. The loss is `alpha` times the
    hard-label cross-entropy plus (1 - alpha) * T² times the KL divergence of the
    `temperature`-softened distributions. `transfer` > 0 adds that many jittered copies of
    each training row (noise of `jitter` feature standard deviations), labelled by the
    teacher; on an image dataset `shift` > 0 first moves each copy by up to that many
    pixels along each axis (jitter=0 for shifts alone). `seed` draws the split, the
    transfer set, and seeds the learners. Mistakes raise a `nanoml.NanomlError` naming
    the argument before anything is written.
    """
    from nanoml import __version__, load_model
    from nanoml.data import load_dataset

    _setting("temperature", temperature, low=0, low_open=True)
    _setting("alpha", alpha, low=0, high=1)
    _setting("jitter", jitter, low=0)
    transfer = int(_setting("transfer", transfer or 0, low=0, integer=True))
    shift = int(_setting("shift", shift, low=0, integer=True))
    if shift and not transfer:
        raise ParameterError("shift moves the transfer set's copies: give transfer > 0 too",
                             argument="shift")
    student_cls = learner_class(student)
    check_student(student_cls)
    from_file = isinstance(teacher, (str, os.PathLike)) and os.path.isfile(teacher)
    teacher_model = load_model(teacher) if from_file else None
    teacher_cls = type(teacher_model) if from_file else _teacher_class(teacher)
    check_teacher(teacher_cls)
    if teacher_model is None:
        teacher_model = make_learner(teacher_cls, teacher_params, seed)
    baseline = make_learner(student_cls, params, seed)
    baseline.check_params()
    dataset = dataset or student_cls.default_dataset
    data = load_dataset(dataset, seed=seed, data_dir=data_dir, task="classification")
    check_task(student_cls, data)
    if shift and data.sample_shape is None:
        raise ParameterError(f"shift moves images, and the rows of '{dataset}' are none",
                             argument="shift")
    classes = np.unique(data.y_train)
    if from_file:
        check_labels(teacher_model, classes)

    def inputs(cls, X):
        return learner_inputs(cls, data, X)

    X_test, y_test = data.X_test, data.y_test
    folder = out or default_folder(f"distill-{student_cls.name}")
    with run_folder(folder):
        def path(name):
            return os.path.join(folder, name)

        teacher_path = teacher if from_file else path(TEACHER_FILE)
        record, curve = _test_curve(teacher_model, inputs(teacher_cls, X_test), y_test)
        extra = {}
        if not from_file:
            extra["fit_seconds"] = fit(teacher_model, inputs(teacher_cls, data.X_train),
                                       data.y_train, on_epoch=record)
            teacher_model.save(teacher_path, inputs=data.schema)
        curves = {"teacher": curve or [float(teacher_model.score(
            inputs(teacher_cls, X_test), y_test))]}
        stats = {"teacher": extra}

        X_train, y_train = data.X_train, data.y_train
        if transfer:
            jittered = transfer_rows(X_train, transfer, jitter, np.random.default_rng(seed),
                                     shift, data.sample_shape)
            X_train = np.concatenate([X_train, jittered])
        outputs = teacher_outputs(teacher_model, inputs(teacher_cls, X_train))
        if transfer:  # the teacher's choices are the transfer rows' labels
            chosen = teacher_model.classes_[outputs[y_train.shape[0]:].argmax(axis=1)]
            y_train = np.concatenate([y_train, chosen])
        atomic_write(path(OUTPUTS_FILE), lambda fh: np.save(fh, outputs))

        students = {
            "distilled": (make_learner(distilling(student_cls, outputs, temperature, alpha),
                                       params, seed), STUDENT_FILE, X_train, y_train),
            "from_labels": (baseline, BASELINE_FILE, data.X_train, data.y_train),
        }
        models, files = {"teacher": teacher_model}, {"teacher": teacher_path}
        for key, (model, name, X, y) in students.items():
            record, curves[key] = _test_curve(model, inputs(student_cls, X_test), y_test)
            seconds = fit(model, inputs(student_cls, X), y, checkpoint=path(name),
                          on_epoch=record)
            model.save(path(name), inputs=data.schema)
            models[key], files[key] = student_cls.load(path(name)), path(name)
            stats[key] = {"fit_seconds": seconds, "epochs": len(curves[key])}

        metrics = {key: _model_metrics(model, files[key], inputs(type(model), X_test), y_test,
                                       curves[key], stats[key])
                   for key, model in models.items()}
        gap = metrics["teacher"]["accuracy"] - metrics["from_labels"]["accuracy"]
        gain = metrics["distilled"]["accuracy"] - metrics["from_labels"]["accuracy"]
        metrics["gap_closed"] = gain / gap if gap > 0 else None
        metrics["speedup"] = (metrics["distilled"]["rows_per_second"]
                              / metrics["teacher"]["rows_per_second"])
        config = {"teacher": teacher_path if from_file else teacher_cls.name,
                  "teacher_params": teacher_model.get_params(), "student": student_cls.name,
                  "params": baseline.get_params(), "dataset": dataset, "seed": seed,
                  "temperature": temperature, "alpha": alpha, "transfer": transfer,
                  "jitter": jitter, "shift": shift, "nanoml_version": __version__}
        write_json(path("metrics.json"), metrics)
        write_json(path("config.json"), config)
        plot_accuracy({"teacher": curves["teacher"], "distilled": curves["distilled"],
                       "from labels": curves["from_labels"]}, path("accuracy.png"),
                      f"{teacher_cls.name} -> {student_cls.name} on {dataset}, T={temperature}")
    written = [OUTPUTS_FILE, STUDENT_FILE, BASELINE_FILE, "metrics.json", "config.json",
               "accuracy.png"]
    return DistillResult(
        teacher=teacher_model, student=models["distilled"], from_labels=models["from_labels"],
        dataset=dataset, metrics=metrics, folder=folder,
        files=([] if from_file else [TEACHER_FILE]) + written,
    )
