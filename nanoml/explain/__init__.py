"""Explanations of fitted learners, `nanoml.explain`: which inputs drove a prediction, what
a network learned, and how much each feature matters::

    import nanoml

    result = nanoml.explain("runs/cnn/model.npz", "fashion-mnist", rows=[0, 1, 2])
    result.methods["integrated-gradients"]["completeness"]   # relative errors per row
    result.folder                                             # PNGs + explanation.json

The methods, each a class or function of its own module with Captum's shape (built from
the model, one ``attribute(...)``, a convergence delta on request):

- gradients.py: saliency, gradient x input, SmoothGrad, integrated gradients (deep learners);
- activations.py: filters, feature maps (convolutional learners), a 2-D map of the last
  hidden layer (deep classifiers);
- permutation.py: permutation importance (every supervised learner), occlusion (images);
- treeshap.py: exact TreeSHAP (trees, forests, gradient boosting) and exact linear SHAP
  (linear models);
- words.py: each class's words of largest weight, and each document's words' shares
  (text pipelines of naive Bayes or a linear model).
"""

import dataclasses
import os
import re
import sys
import types

import numpy as np

from nanoml.errors import InputError, ParameterError
from nanoml.modelfile import write_json
from nanoml.validation import check_number

GRADIENT_METHODS = ("saliency", "gradient-x-input", "smoothgrad", "integrated-gradients")
METHODS = (*GRADIENT_METHODS, "activations", "permutation", "occlusion", "treeshap",
           "linear-shap", "top-words")
EXPLANATION_FILE = "explanation.json"
# Rows explained by default: the first test row of each class, up to this many classes.
DEFAULT_ROWS = 10
# Permutation importance on many features (an image's pixels) is left to be asked for.
MAX_DEFAULT_PERMUTATION_FEATURES = 100


@dataclasses.dataclass
class ExplainResult:
    """What an explanation produced: each method's numbers and the folder's files."""

    learner: str
    dataset: str
    rows: list
    methods: dict
    folder: str
    files: list

    def summary(self):
        """The result as plain values, for JSON."""
        return {"learner": self.learner, "dataset": self.dataset, "rows": self.rows,
                "methods": self.methods, "folder": self.folder, "files": self.files}


def reads_documents(data):
    """Whether `data`'s rows are documents (one text column), not numbers."""
    return np.asarray(data.X_test).dtype.kind in "OUS"


def available_methods(model, data):
    """The methods `model` can take on `data`, in METHODS order."""
    from nanoml.deep import DeepLearner
    from nanoml.explain.treeshap import is_linear_model, is_tree_model
    from nanoml.explain.words import word_weights

    supervised = model.task in ("classification", "regression")
    if reads_documents(data):  # the methods above read numbers
        return ["top-words"] if word_weights(model) is not None else []
    deep = isinstance(model, DeepLearner) and supervised
    can = set()
    if deep:
        can.update(GRADIENT_METHODS)
        can.add("activations")
    if supervised:
        can.add("permutation")
        if data.image_shape is not None:
            can.add("occlusion")
    if is_tree_model(model):
        can.add("treeshap")
    if is_linear_model(model):
        can.add("linear-shap")
    return [m for m in METHODS if m in can]


def default_methods(model, data):
    """What `explain` runs when no method is named: the exact method where there is one,
    saliency, integrated gradients and activations for deep learners, and permutation
    importance where the features are few enough."""
    can = available_methods(model, data)
    chosen = [m for m in ("saliency", "integrated-gradients", "activations", "treeshap",
                          "linear-shap", "top-words") if m in can]
    if "permutation" in can and (data.n_features <= MAX_DEFAULT_PERMUTATION_FEATURES
                                 or not chosen):
        chosen.append("permutation")
    return chosen


def parse_methods(method, model, data):
    """`method` (a name, comma-separated names or a list; None: the defaults) -> names the
    model can take; anything else raises ParameterError naming what it can take."""
    if method is None:
        chosen = default_methods(model, data)
        if not chosen:
            raise ParameterError(f"no explanation method applies to learner '{model.name}' "
                                 f"on {data.name}")
        return chosen
    names = [m.strip() for m in method.split(",")] if isinstance(method, str) else list(method)
    can = available_methods(model, data)
    for name in names:
        if name not in METHODS:
            raise ParameterError(f"unknown method '{name}'; methods: {', '.join(METHODS)}",
                                 argument="method")
        if name not in can:
            raise ParameterError(f"method '{name}' does not apply to learner '{model.name}'; "
                                 f"on {data.name} it takes: {', '.join(can) or 'none'}",
                                 argument="method")
    return list(dict.fromkeys(names))


def parse_rows(rows, n_rows):
    """Test rows given as "0,5,10-20" (ranges inclusive) or a list of ints -> sorted unique
    row numbers, each below `n_rows`."""
    if isinstance(rows, str):
        picked = []
        for part in filter(None, (p.strip() for p in rows.split(","))):
            match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
            if not match:
                raise InputError(f"rows must be numbers and ranges such as 0,5,10-20; got "
                                 f"'{part}'", argument="rows")
            low, high = int(match[1]), int(match[2] or match[1])
            picked.extend(range(low, high + 1))
    else:
        picked = [int(r) for r in np.atleast_1d(rows)]
    if not picked:
        raise InputError("rows names no row", argument="rows")
    wrong = [r for r in picked if not 0 <= r < n_rows]
    if wrong:
        raise InputError(f"rows {wrong[0]} is out of range: the test split has {n_rows} rows "
                         f"(0-{n_rows - 1})", argument="rows")
    return sorted(set(picked))


def default_rows(model, data):
    """The first test row of each class (up to DEFAULT_ROWS classes), else the first rows."""
    y = data.y_test
    if model.task == "classification":
        _, first = np.unique(y, return_index=True)
        return sorted(int(i) for i in first[:DEFAULT_ROWS])
    return list(range(min(5, len(y))))


def _columns(group, data):
    """A group of columns given by index or by the dataset's column names -> indices."""
    names = list(data.feature_names or ())
    columns = []
    for column in np.atleast_1d(group).tolist():
        if isinstance(column, str):
            if column not in names:
                raise ParameterError(f"groups names column '{column}', which dataset "
                                     f"'{data.name}' does not have", argument="groups")
            column = names.index(column)
        columns.append(column)
    return columns


def load_model(model):
    """A fitted Learner, or the path of a model file -> the fitted learner."""
    from nanoml.learner import Learner

    if isinstance(model, (str, os.PathLike)):
        model = Learner.load(model)
    if not isinstance(model, Learner):
        raise ParameterError(f"model must be a fitted nanoml learner or a model file's path, "
                             f"got {model!r}", argument="model")
    model.check_fitted()
    return model


def explain(model, dataset=None, *, method=None, rows=None, steps=50, out=None, data_dir=None,
            seed=None, repeats=5, metric=None, groups=None):
    """Explain `model` (a fitted learner or a model file's path) on the test rows of
    `dataset` and write the folder `out` (default runs/explain-NAME-TIME) of PNG figures
    and explanation.json; -> ExplainResult. `dataset` and `seed` default to those of the
    run that wrote the model file (its folder's config.json), else to the learner's own
    dataset and 0.

    `method`: one of METHODS or several, comma-separated (default: `default_methods`).
    `rows`: the test rows whose attributions are drawn ("0,5,10-20" or a list; default
    one per class). `steps`: integrated gradients' path steps. `seed` draws the dataset's
    split and the random parts of the methods. `repeats`, `metric`,
    `groups` (lists of columns, by index or name, shuffled together): permutation
    importance. Mistakes raise a `nanoml.NanomlError` before anything is written.
    """
    from nanoml.data import load_dataset
    from nanoml.explain.permutation import check_groups, metric_function
    from nanoml.explain.report import write_explanation
    from nanoml.report import model_run_config
    from nanoml.runner import check_task, default_folder, run_folder

    run = model_run_config(model) if dataset is None or seed is None else {}
    model = load_model(model)
    dataset = dataset or run.get("dataset") or model.default_dataset
    seed = seed if seed is not None else run.get("seed", 0)
    data = load_dataset(dataset, seed=seed, data_dir=data_dir, task=model.task)
    check_task(type(model), data)
    if not reads_documents(data) and data.n_features != model.n_features_in_:
        raise InputError(f"the model reads {model.n_features_in_} features but dataset "
                         f"'{data.name}' has {data.n_features}", argument="dataset")
    methods = parse_methods(method, model, data)
    picked = default_rows(model, data) if rows is None else parse_rows(rows, len(data.X_test))
    check_number("steps", steps, low=1, integer=True)
    check_number("repeats", repeats, low=1, integer=True)
    metric_function(metric, model.task)
    if groups is not None:
        groups = check_groups([_columns(g, data) for g in groups], data.n_features)
    options = {"steps": steps, "seed": seed, "repeats": repeats, "metric": metric,
               "groups": groups}
    folder = out or default_folder(f"explain-{model.name}")
    with run_folder(folder):
        numbers, files = write_explanation(model, data, methods, picked, options, folder)
        record = {"learner": model.name, "dataset": dataset, "seed": seed, "rows": picked,
                  "methods": numbers, "files": files}
        write_json(os.path.join(folder, EXPLANATION_FILE), record)
    return ExplainResult(learner=model.name, dataset=dataset, rows=picked, methods=numbers,
                         folder=folder, files=[*files, EXPLANATION_FILE])


class _CallableModule(types.ModuleType):
    """`nanoml.explain` is this package once it is imported (Python binds a subpackage to
    its parent's attribute), so the package itself must be callable for
    ``nanoml.explain(model, ...)`` to keep working, as `nanoml.tensor` does."""

    def __call__(self, *args, **kwargs):
        return explain(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
