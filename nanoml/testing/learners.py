"""`check_learner`: the Learner contract as one call, for our plugins and third-party ones.

    from nanoml.testing import check_learner

    def test_contract():
        check_learner(MyLearner, params={"n_iter": 5})
"""

import os
import tempfile

import numpy as np

from nanoml.errors import InputError, NotFittedError, ParameterError
from nanoml.learner import Learner, contract_problem


def _problem(task, seed=0, n=60, d=3):
    """A small dataset of the learner's task: (X, y) with y None where unsupervised."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    if task == "regression":
        return X, X @ rng.standard_normal(d) + 0.1 * rng.standard_normal(n)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int64)
    X[y == 1] += 1.0  # separable enough that any classifier learns something
    return (X, y) if task == "classification" else (X, None)


def _same_outputs(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind in "fc":
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8)
    else:
        np.testing.assert_array_equal(a, b)


def _expect(error, action, what):
    try:
        action()
    except error as exc:
        if not str(exc):
            raise AssertionError(f"{what}: {error.__name__} raised with an empty message") from None
        return
    raise AssertionError(f"{what}: expected {error.__name__}, nothing was raised")


def check_learner(cls, params=None, data=None):
    """Run the contract checks on `cls`; raise AssertionError naming the first broken rule.

    `params` are hyperparameters for a quick fit (few epochs); `data` is (X, y) for learners
    that need a particular input (images, sequences); otherwise a small problem of the
    learner's task is generated.
    """
    params = dict(params or {})
    problem = contract_problem(cls)  # what registering the class would refuse
    assert problem is None, problem
    for attr in ("default_dataset", "description"):
        assert getattr(cls, attr), f"{cls.__name__}.{attr} must be set"
    _check_name_is_free(cls)

    defaults = cls.param_defaults()
    fresh = cls()
    assert fresh.get_params() == defaults, "the constructor must store hyperparameters as given"
    for key in params:
        assert key in defaults, f"check_learner params: {cls.__name__} has no '{key}'"
    learner = cls(**params)
    assert learner.get_params() == {**defaults, **params}, "get_params must return what was set"
    assert learner.set_params(**params) is learner, "set_params must return self"
    _expect(ParameterError, lambda: cls().set_params(no_such_parameter=1), "unknown hyperparameter")
    assert not learner.is_fitted(), "the constructor must not learn anything"

    X, y = data if data is not None else _problem(cls.task)
    _expect(NotFittedError, lambda: learner.predict(X), "predict before fit")
    assert learner.fit(X, y) is learner, "fit must return self"
    first = learner.predict(X)
    assert len(first) == X.shape[0], "predict must return one output per sample"

    bad = np.array(X, dtype=np.float64, copy=True)
    bad.flat[0] = np.nan
    if getattr(cls, "allow_nan", False):  # NaN is a missing value the learner models
        assert len(cls(**params).fit(bad, y).predict(bad)) == X.shape[0]
    else:
        _expect(InputError, lambda: cls(**params).fit(bad, y), "NaN in X at fit")
        _expect(InputError, lambda: learner.predict(bad), "NaN in X at predict")
    wrong = np.concatenate([X, X[:, :1]], axis=1) if X.ndim == 2 else X[..., :-1]
    _expect(InputError, lambda: learner.predict(wrong), "wrong feature count at predict")
    if y is not None:
        _expect(InputError, lambda: cls(**params).fit(X, y[:-1]), "X and y of different lengths")

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.npz")
        learner.save(path)
        loaded = cls.load(path)
        assert type(loaded) is cls, "load must return the saved learner's class"
        assert loaded.get_params() == learner.get_params(), "load must restore hyperparameters"
        _same_outputs(first, loaded.predict(X))
        via_base = Learner.load(path) if cls.name in _registered_names() else loaded
        _same_outputs(first, via_base.predict(X))
    return learner


def _registered_names():
    from nanoml.plugins import plugin_set

    return plugin_set().learners


def _check_name_is_free(cls):
    """The name is not another installed class's: two registrations of one name are both
    refused."""
    from nanoml.plugins import plugin_set

    plugins = plugin_set()
    refused = plugins.refused_learners.get(cls.name)
    assert refused is None, str(refused)
    entry = plugins.learners.get(cls.name)
    if entry is not None and entry.cls is not cls:
        assert entry.cls.__module__ == cls.__module__ and (
            entry.cls.__qualname__ == cls.__qualname__
        ), (
            f"learner name '{cls.name}' of {cls.__qualname__} is already registered by plugin "
            f"'{entry.plugin}' for {entry.cls.__module__}.{entry.cls.__qualname__}; "
            "pick another name"
        )
