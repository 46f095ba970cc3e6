"""The Learner contract every plugin's learner follows (scikit-learn's estimator contract).

- The constructor takes only keyword hyperparameters with defaults and stores them as given.
- ``fit(X, y=None)`` returns self; learned state lives in attributes ending in ``_``.
- ``predict``, ``score`` (accuracy, R², or the task's own), ``evaluate`` (the metrics
  `nanoml run` prints), and ``transform`` / ``sample`` where the task has one.
- ``save(path)`` / ``Learner.load(path)``: one `nanoml.modelfile`, no pickle. Loading
  treats the file as untrusted: ``check_params`` on its hyperparameters, ``check_state``
  (the class's ``state_schema``, `nanoml.state_schema`) on its learned state.
"""

import inspect

import numpy as np

from nanoml import metrics, modelfile
from nanoml.errors import (
    LearnerContractError,
    ModelFileError,
    NanomlError,
    NotFittedError,
    ParameterError,
)
from nanoml.state_schema import check_generic

TASKS = ("classification", "regression", "clustering", "decomposition", "generation",
         "reinforcement")
_JSON_SCALARS = (bool, int, float, str, type(None))


def _is_plain(value):
    """True for values JSON stores faithfully: scalars and lists/dicts of them."""
    if isinstance(value, _JSON_SCALARS):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    return False


class Learner:
    """Base class of all learners; subclasses set the class attributes below."""

    name = None  # the name `nanoml run` knows it by, e.g. "linear-regression"
    task = None  # one of TASKS
    default_dataset = None  # dataset `nanoml run` uses when none is named
    description = ""  # one line for `nanoml list`
    search_space = {}  # hyperparameter -> list of values worth trying when tuning
    # Axes of one sample for learners that read shaped samples (3: images as channels,
    # height, width; 2: sequences as steps, features); `nanoml.run` then gives them X in
    # the dataset's sample shape. None: flat rows of features.
    input_ndim = None
    # The learned attributes a model file may set, checked when it is loaded: a
    # `nanoml.state_schema.StateSchema`. None: only the generic checks of learned names.
    state_schema = None

    def __init__(self):
        """A learner without hyperparameters needs no constructor of its own."""

    # -- hyperparameters ---------------------------------------------------------------
    @classmethod
    def param_defaults(cls):
        """Hyperparameter name -> default, read from the constructor's signature."""
        params = {}
        for p in inspect.signature(cls.__init__).parameters.values():
            if p.name == "self":
                continue
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.default is p.empty:
                raise LearnerContractError(
                    f"{cls.__name__}.__init__ must take only keyword hyperparameters with "
                    f"defaults; '{p.name}' is not one"
                )
            params[p.name] = p.default
        return params

    def store_params(self, arguments):
        """Store the constructor's arguments (pass its ``locals()``) as hyperparameters."""
        for name in self.param_defaults():
            setattr(self, name, arguments[name])

    def get_params(self, deep=True):
        """The hyperparameters as given to the constructor (or `set_params`)."""
        return {name: getattr(self, name) for name in self.param_defaults()}

    def set_params(self, **params):
        """Change hyperparameters; an unknown name raises ParameterError listing valid ones."""
        valid = self.param_defaults()
        for key, value in params.items():
            if key not in valid:
                raise ParameterError(
                    f"{type(self).__name__} has no hyperparameter '{key}'; "
                    f"valid ones: {', '.join(valid) or '(none)'}"
                )
            setattr(self, key, value)
        return self

    def check_params(self):
        """Raise ParameterError naming the first hyperparameter with an invalid value.

        `fit` calls it, and `load` on the hyperparameters of a model file. The default
        checks nothing; learners override it (calling ``super().check_params()``).
        """

    def __repr__(self):
        defaults = self.param_defaults()
        changed = [
            f"{k}={v!r}" for k, v in self.get_params().items() if not _same(v, defaults[k])
        ]
        return f"{type(self).__name__}({', '.join(changed)})"

    # -- learning ------------------------------------------------------------------------
    def fit(self, X, y=None):
        raise NotImplementedError

    def predict(self, X):
        raise NotImplementedError

    def score(self, X, y):
        """Accuracy for classifiers, R² for regressors; other tasks override."""
        self.check_fitted()
        if self.task == "classification":
            return metrics.accuracy(y, self.predict(X))
        if self.task == "regression":
            return metrics.r2_score(y, self.predict(X))
        raise NotImplementedError(f"{type(self).__name__} must define score()")

    def evaluate(self, X, y=None):
        """The metrics `nanoml run` reports on held-out data, as name -> float."""
        self.check_fitted()
        if self.task == "classification":
            return {"accuracy": metrics.accuracy(y, self.predict(X))}
        if self.task == "regression":
            pred = self.predict(X)
            return {"r2": metrics.r2_score(y, pred), "mse": metrics.mean_squared_error(y, pred)}
        return {"score": float(self.score(X, y))}

    def write_artifacts(self, folder, dataset):
        """Write this learner's figures into a run folder; returns the file names written.

        The default plots the training curves (``history_``, name -> per-epoch values),
        for a regression on one feature the fitted curve, and the task's figures of
        `nanoml.figures` (confusion matrix, ROC, decision regions, predicted vs true,
        clusters). Learners add their own: override, call this, extend its list.
        """
        from nanoml import figures, plots

        written = []
        about = f"{self.name} on {dataset.name}"
        history = getattr(self, "history_", None)
        if history:
            plots.plot_history(history, f"{folder}/curves.png", title=f"{about}: training")
            written.append("curves.png")
        if self.task == "regression" and dataset.n_features == 1 and not self.input_ndim:
            X = dataset.X_test
            plots.plot_regression(X[:, 0], dataset.y_test, self.predict(X), f"{folder}/fit.png",
                                  title=f"{about}: model and test rows")
            written.append("fit.png")
        return written + figures.task_figures(self, folder, dataset)

    def is_fitted(self):
        return bool(self._learned_names())

    def check_fitted(self):
        if not self.is_fitted():
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet: call fit(X, y) before using it"
            )

    def _learned_names(self):
        return [k for k in vars(self) if k.endswith("_") and not k.startswith("_")]

    # -- persistence ---------------------------------------------------------------------
    def _get_state(self):
        """Learned state -> (JSON-able dict, name -> ndarray). Override for richer state."""
        plain, arrays = {}, {}
        for key in self._learned_names():
            value = getattr(self, key)
            if isinstance(value, np.generic):
                value = value.item()
            if isinstance(value, np.ndarray):
                arrays[key] = value
            elif _is_plain(value):
                plain[key] = value
            else:
                raise TypeError(
                    f"{type(self).__name__}.{key} is a {type(value).__name__}; "
                    "override _get_state/_set_state to save it"
                )
        return plain, arrays

    def check_state(self, plain, arrays):
        """Refuse, with a ModelFileError naming the attribute, learned state (as `_get_state`
        returns it) that this learner cannot hold; return it as `_set_state` is to set it.

        Checks ``state_schema`` (see `nanoml.state_schema`) or, where the learner declares
        none, only the names. Learners that override `_get_state` may override this too.
        """
        schema = type(self).state_schema
        if schema is None:
            check_generic(self, [*plain, *arrays])
            return plain, arrays
        return schema.check(self, plain, arrays)

    def _set_state(self, plain, arrays):
        for key, value in {**plain, **arrays}.items():
            setattr(self, key, value)

    def save(self, path, *, inputs=None):
        """Write hyperparameters and learned state to one model file, atomically.

        `inputs`: how the training data's files became X (a `nanoml.data.files` schema),
        kept so that predictions read new files the same way.
        """
        self.check_fitted()
        plain, arrays = self._get_state()
        header = {"learner": self.name, "params": self.get_params(), "state": plain}
        if inputs is not None:
            header["inputs"] = inputs.to_json()
        modelfile.save(path, header, arrays)

    @classmethod
    def load(cls, path):
        """Read a model file. On `Learner` itself, the learner class is found by name.

        The file is untrusted: its hyperparameters are checked as `fit` checks them and its
        learned state against `check_state`; any defect is one ModelFileError.
        """
        header, arrays = modelfile.load(path)
        name = header.get("learner")
        if not isinstance(name, str):
            raise ModelFileError(f"'{path}' names no learner (learner: {name!r})")
        if cls is Learner:
            from nanoml.plugins import get_learner

            try:
                target = get_learner(name)
            except NanomlError as exc:
                raise ModelFileError(f"'{path}' holds learner '{name}': {exc}") from None
        elif name != cls.name:
            raise ModelFileError(f"'{path}' holds a '{name}' model, not a '{cls.name}'")
        else:
            target = cls
        params, state = header.get("params", {}), header.get("state", {})
        for key, value in (("params", params), ("state", state)):
            if not isinstance(value, dict):
                raise ModelFileError(f"'{path}': its header's {key} must be a JSON object, "
                                     f"got {type(value).__name__}")
        # JSON stores tuples as lists; hyperparameters given as sequences are tuples again
        params = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
        try:
            learner = target().set_params(**params)
            learner.check_params()
            state, arrays = learner.check_state(state, arrays)
            learner._set_state(state, arrays)
        except (NanomlError, TypeError, KeyError, ValueError, IndexError, ArithmeticError,
                MemoryError) as exc:
            message = " ".join(str(exc).split())  # one line, whatever the error held
            raise ModelFileError(f"'{path}' does not hold a valid '{name}' model: "
                                 f"{message}") from None
        return learner


def contract_problem(cls):
    """What is wrong with learner class `cls` as registered, in one line; None if nothing.

    Checks what can be known without fitting: a `Learner` subclass with a ``name``, a
    known ``task`` and a constructor of keyword hyperparameters with defaults.
    """
    what = getattr(cls, "__qualname__", repr(cls))
    if not (isinstance(cls, type) and issubclass(cls, Learner)):
        return f"{what} is not a subclass of nanoml.Learner"
    if not isinstance(cls.name, str) or not cls.name.strip():
        return f"{what} sets no name (the class attribute `nanoml run` knows it by)"
    if cls.task not in TASKS:
        return f"{what}.task is {cls.task!r}; it must be one of {', '.join(TASKS)}"
    try:
        cls.param_defaults()
    except LearnerContractError as exc:
        return str(exc)
    return None


def _same(a, b):
    try:
        return bool(a == b)
    except Exception:
        return a is b
