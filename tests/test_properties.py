"""Property-based tests: every registered learner, given odd but possible data, answers with
one line (a NanomlError) or a finite, sensible result, and never crashes.

Hypothesis draws cases: 0, 1 or a few rows and columns, one class or several, dtypes bool /
int / float16 / float32 / float64 / complex / object / str / text, magnitudes from 1e-300 to
1e300 (around an offset or not), NaN and infinity at random places, the odd data given to
`fit` or to `predict`. A case is a small dict: a child process builds its arrays from it and
runs it, so that a segmentation fault, heap corruption or hang fails the test naming the case
instead of taking the suite down. Each pytest process keeps one such child (restarted after a
death), so ``-n auto`` runs the learners side by side.

CI runs a few examples per learner, the same ones every time. A long campaign::

    NANOML_PROPERTY_EXAMPLES=5000 NANOML_PROPERTY_LOG=cases.jsonl \\
        python -m pytest tests/test_properties.py -n auto -p no:cacheprovider

runs about 5000 random cases shared among the learners (``--hypothesis-seed=N`` repeats a
campaign) and appends each case and its outcome to the log as a line of JSON.
"""

import json
import math
import multiprocessing
import os
import traceback
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

TOTAL_EXAMPLES = int(os.environ.get("NANOML_PROPERTY_EXAMPLES", "0"))  # 0: CI's few
CI_EXAMPLES = 4  # per learner
CASE_TIMEOUT = float(os.environ.get("NANOML_PROPERTY_TIMEOUT", "300"))  # s; compiles included
STARTUP_TIMEOUT = 300  # s, for a child to import nanoml and its plugins
LOG = os.environ.get("NANOML_PROPERTY_LOG")

# Tiny hyperparameters: a property is about the input, not about learning well.
QUICK = {
    "random-forest": {"n_estimators": 3},
    "random-forest-regressor": {"n_estimators": 3},
    "gradient-boosting": {"max_iter": 3},
    "gradient-boosting-regressor": {"max_iter": 3},
    "mlp": {"hidden_sizes": (4,), "epochs": 1, "batch_size": 16},
    "cnn": {"filters": 2, "epochs": 1, "batch_size": 16},
    "rnn": {"hidden_size": 4, "epochs": 1, "batch_size": 16},
    "lstm": {"hidden_size": 4, "epochs": 1, "batch_size": 16},
    "gru": {"hidden_size": 4, "epochs": 1, "batch_size": 16},
    "lstm-forecaster": {"hidden_size": 4, "epochs": 1, "batch_size": 16},
    "autoencoder": {"hidden_sizes": (4,), "code_size": 2, "epochs": 1, "batch_size": 16},
    "vae": {"hidden_sizes": (4,), "latent_size": 2, "epochs": 1, "batch_size": 16},
    "gan": {"hidden_sizes": (4,), "latent_size": 2, "epochs": 1, "batch_size": 16},
    "char-rnn": {"embedding_dim": 4, "hidden_size": 4, "seq_length": 8, "min_count": 1,
                 "epochs": 1},
    "text-rnn": {"embedding_dim": 4, "hidden_size": 4, "max_length": 8, "min_df": 1,
                 "epochs": 1},
    "hashing-vectorizer": {"n_features": 64},
}
DTYPES = ("bool", "int8", "int64", "uint8", "float16", "float32", "float64", "complex128",
          "object", "str", "text")
WORDS = ("", "a", "the", "cat", "Zoë", "日本", "x1", "--", " ", "nan", "1e308")


def _learners():
    from nanoml.plugins import plugin_set

    return {name: entry.cls for name, entry in sorted(plugin_set().learners.items())
            if entry.cls.task != "reinforcement"}  # those learn from environments, not X


def _is_text(cls):
    return cls.__module__.startswith("nanoml_text")


# -- cases ------------------------------------------------------------------------------------

def cases(learner, text):
    """A Hypothesis strategy of case dicts for `learner` (text learners get text mostly)."""
    # half ordinary magnitudes, half extreme ones (squares of 1e155 overflow a float64)
    exponents = (st.integers(-5, 5) | st.just(0) | st.sampled_from([-300, -155, 155, 300])
                 | st.integers(-300, 300))
    return st.fixed_dictionaries({
        "learner": st.just(learner),
        "rows": st.sampled_from([0, 1, 2]) | st.integers(3, 40) | st.integers(3, 40),
        "columns": st.sampled_from([0, 1, 2, 3, 4, 9, 16]),  # 16: a 4x4 image for the cnn
        "dtype": st.sampled_from(("text", "text", "str", "object", "float64") if text
                                 else ("float64",) * 4 + DTYPES),
        "exponent": exponents,  # values are about 10**exponent wide...
        "offset": st.one_of(st.none(), exponents),  # ...around +10**offset, or 0
        "column_exponents": st.booleans(),  # each column its own magnitude
        "nan": st.sampled_from([0] * 8 + [1, 3]),
        "inf": st.sampled_from([0] * 8 + [1, 3]),
        "classes": st.sampled_from([1, 2, 3]),
        "labels": st.sampled_from(["int", "str", "float", "bool", "object"]),
        "y_exponent": exponents,
        "y_nan": st.sampled_from([False, False, False, True]),
        "phase": st.sampled_from(["fit", "predict"]),  # which call gets the odd X
        "seed": st.integers(0, 2**16),
    })


def make_features(case, rng, dtype=None):
    """The case's X: ``dtype`` (default the case's) with the case's rows, magnitudes, NaN
    and infinity."""
    dtype = dtype or case["dtype"]
    n, d = case["rows"], case["columns"]
    if dtype == "text":
        return np.array([" ".join(rng.choice(WORDS, rng.integers(0, 5))) for _ in range(n)])
    exponent = np.full(d, case["exponent"], dtype=np.float64)
    if case["column_exponents"]:
        exponent = rng.integers(-300, 301, d).astype(np.float64)
    X = rng.standard_normal((n, d)) * 10.0 ** exponent
    if case["offset"] is not None:
        X += 10.0 ** case["offset"]
    for value, count in ((np.nan, case["nan"]), (np.inf, case["inf"])):
        if X.size and count:
            X.flat[rng.integers(0, X.size, count)] = value * rng.choice([-1, 1], count)
    with np.errstate(all="ignore"):
        if dtype == "bool":
            return X > 0
        if dtype in ("int8", "int64", "uint8"):
            info = np.iinfo(dtype)
            return np.clip(np.nan_to_num(np.round(X)), info.min, info.max).astype(dtype)
        if dtype == "complex128":
            return X + 1j * X[:, ::-1]
        if dtype == "object":
            return X.astype(object)
        if dtype == "str":
            return X.astype(str)
        return X.astype(dtype)


def make_targets(case, cls, rng, n):
    """y for `cls`'s task: labels of the case's kind, or targets about 10**y_exponent."""
    if cls.task == "regression":
        y = rng.standard_normal(n) * 10.0 ** case["y_exponent"]
        if case["y_nan"] and n:
            y[rng.integers(0, n)] = np.nan
        return y
    if cls.task != "classification":
        return None
    codes = rng.integers(0, case["classes"], n)
    codes[: min(n, case["classes"])] = np.arange(min(n, case["classes"]))  # each class shows
    kind = case["labels"]
    if kind == "str":
        return np.array([f"class {c}" for c in codes])
    if kind == "float":
        return codes.astype(np.float64)
    if kind == "bool":
        return codes % 2 == 0
    if kind == "object":
        return codes.astype(object)
    return codes


# -- running a case (in the child) ------------------------------------------------------------

def _sensible(cls, learner, out, n, y):
    """None when `out` (predict's answer for n rows) makes sense for the task; else why not."""
    if hasattr(out, "nnz"):  # sparse rows (vectorizers)
        if out.shape[0] != n:
            return f"predict gave {out.shape[0]} rows for {n}"
        return None if np.isfinite(out.data).all() else "predict gave NaN or infinity"
    out = np.asarray(out)
    if out.shape[:1] != (n,):
        return f"predict gave shape {out.shape} for {n} rows"
    if cls.task == "classification":
        unknown = set(out.tolist()) - set(np.asarray(y).tolist())
        return f"predict gave labels never trained on: {sorted(map(repr, unknown))}" if unknown \
            else None
    if out.dtype.kind in "fc" and not np.isfinite(out).all():
        return "predict gave NaN or infinity"
    if cls.task == "clustering" and out.size and (out.min() < 0 or
                                                  out.max() >= learner.n_clusters):
        return f"cluster labels outside 0..{learner.n_clusters - 1}: {np.unique(out)}"
    return None


def _answer(learner, X):
    """The learner's answer about X: predict, else transform, else score (char-rnn)."""
    from nanoml.learner import Learner

    if type(learner).predict is not Learner.predict:
        return learner.predict(X)
    if hasattr(learner, "transform"):
        return learner.transform(X)
    return np.array([learner.score(X)] * X.shape[0])


def run_case(case):
    """Fit and predict as the case says; -> {"outcome": "ok" | "error" | "bad", ...}.
    None only loads the plugins."""
    from nanoml.errors import NanomlError
    from nanoml.plugins import get_learner, plugin_set

    if case is None:
        return plugin_set()

    cls = get_learner(case["learner"])
    rng = np.random.default_rng(case["seed"])
    odd = make_features(case, rng)
    n = odd.shape[0]
    if case["phase"] == "predict":  # fit on tidy data of the same width first
        tidy_case = {**case, "rows": 30, "exponent": 0, "offset": None, "nan": 0, "inf": 0,
                     "column_exponents": False, "y_exponent": 0, "y_nan": False,
                     "classes": max(case["classes"], 2)}
        tidy_dtype = "text" if _is_text(cls) else "float64"
        fit_X = make_features(tidy_case, rng, dtype=tidy_dtype)
        fit_y = make_targets(tidy_case, cls, rng, fit_X.shape[0])
    else:
        fit_X, fit_y = odd, make_targets(case, cls, rng, n)
    learner = cls(**QUICK.get(case["learner"], {}))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            learner.fit(fit_X, fit_y)
            out = _answer(learner, odd)
    except NanomlError as exc:
        message = str(exc)
        if not message or "\n" in message:
            return {"outcome": "bad", "type": type(exc).__name__,
                    "message": f"not one line: {message!r}"}
        return {"outcome": "error", "type": type(exc).__name__, "message": message}
    except Exception as exc:  # a bug: no NanomlError
        return {"outcome": "bad", "type": type(exc).__name__,
                "message": "".join(traceback.format_exception(exc)[-6:])}
    why = _sensible(cls, learner, out, n, fit_y)
    return {"outcome": "bad" if why else "ok", "type": None, "message": why}


def _serve(connection, runner):
    """The child: get ready (``runner(None)``), say so, then run each case received and send
    back its result."""
    os.environ["NANOML_PROGRESS"] = "off"
    runner(None)
    connection.send("ready")
    while True:
        case = connection.recv()
        connection.send(runner(case))


class Sandbox:
    """One child process that runs cases through `runner` (a module-level function); a
    death or a hang (no answer within `timeout` seconds) is reported as the case's result
    and a fresh child takes over."""

    def __init__(self, runner=run_case, timeout=CASE_TIMEOUT):
        self._context = multiprocessing.get_context("spawn")  # no fork of a threaded parent
        self._runner, self._timeout = runner, timeout
        self._child = None

    def _start(self):
        ours, theirs = self._context.Pipe()
        self._child = self._context.Process(target=_serve, args=(theirs, self._runner),
                                            daemon=True)
        self._child.start()
        theirs.close()
        self._connection = ours
        if not ours.poll(STARTUP_TIMEOUT) or ours.recv() != "ready":
            raise RuntimeError(f"the sandbox did not start within {STARTUP_TIMEOUT} s")

    def run(self, case):
        if self._child is None or not self._child.is_alive():
            self._start()
        self._connection.send(case)
        if not self._connection.poll(self._timeout):
            self.close()
            return {"outcome": "crash", "type": "hang",
                    "message": f"no answer within {self._timeout:g} s"}
        try:
            return self._connection.recv()
        except EOFError:
            self._child.join()
            code = self._child.exitcode
            self._child = None
            return {"outcome": "crash", "type": f"exit {code}",
                    "message": f"the process died (exit code {code})"}

    def close(self):
        if self._child is not None:
            self._child.kill()
            self._child.join()
            self._child = None


@pytest.fixture(scope="module")
def sandbox():
    box = Sandbox()
    yield box
    box.close()


LEARNERS = _learners()
EXAMPLES = (max(1, math.ceil(TOTAL_EXAMPLES / len(LEARNERS))) if TOTAL_EXAMPLES
            else CI_EXAMPLES)


def _record(case, result):
    if LOG:
        with open(LOG, "a") as log:  # one short line per write: appends do not interleave
            log.write(json.dumps({"case": case, **result}) + "\n")


@pytest.mark.parametrize("name", list(LEARNERS))
def test_odd_data_gives_one_line_or_a_sensible_result(sandbox, name):
    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              derandomize=not TOTAL_EXAMPLES, suppress_health_check=list(HealthCheck))
    @given(case=cases(name, _is_text(LEARNERS[name])))
    def check(case):
        result = sandbox.run(case)
        _record(case, result)
        assert result["outcome"] in ("ok", "error"), (
            f"{result['outcome']} ({result['type']}): {result['message']}\ncase: {case}")

    check()


# -- the sandbox itself ---------------------------------------------------------------------

def _misbehave(case):
    """A runner that crashes or hangs as the case says."""
    if case == "segfault":
        import ctypes

        ctypes.string_at(0)
    if case == "hang":
        import time

        time.sleep(60)
    return {"outcome": "ok", "type": None, "message": None}


def test_a_crash_or_a_hang_is_a_result_and_the_next_case_runs():
    box = Sandbox(runner=_misbehave, timeout=2)
    try:
        crashed = box.run("segfault")
        assert crashed["outcome"] == "crash" and crashed["type"] == "exit -11", crashed
        assert box.run("hang")["type"] == "hang"  # in a new child
    finally:
        box.close()


# -- what the campaigns found: each test failed before its fix ----------------------------

def _blobs():
    """Three well separated blobs of 20 points in 2-D, and their labels."""
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [10.0, 10.0], [-10.0, 10.0]])
    X = np.concatenate([rng.standard_normal((20, 2)) + c for c in centres])
    return X, np.repeat([0, 1, 2], 20)


@pytest.mark.parametrize("scale", [1e-300, 1e-155, 1e155, 1e300])
def test_distance_learners_find_the_same_groups_in_any_units(scale):
    # Squared distances of such values underflow to 0 or overflow to infinity: k-means made
    # one cluster, kNN voted with arbitrary neighbours, label-spreading raised "negative
    # axis 1 index" and then corrupted the heap.
    from nanoml_classic.kmeans import KMeans
    from nanoml_classic.neighbors import KNeighborsClassifier
    from nanoml_classic.semi_supervised import LabelSpreading

    X, y = _blobs()
    X = X * scale
    labels = KMeans().fit(X).predict(X)
    assert all(np.unique(labels[y == k]).size == 1 for k in range(3))
    assert np.unique(labels).size == 3
    np.testing.assert_array_equal(KNeighborsClassifier().fit(X, y).predict(X), y)
    np.testing.assert_array_equal(LabelSpreading().fit(X, y).predict(X), y)


def test_k_means_centres_and_inertia_stay_in_the_data_units():
    from nanoml_classic.kmeans import KMeans

    X, _ = _blobs()
    plain = KMeans().fit(X)
    for scale in (1e-200, 1e120):
        scaled = KMeans().fit(X * scale)
        np.testing.assert_allclose(scaled.cluster_centers_, plain.cluster_centers_ * scale)
        assert scaled.inertia_ == pytest.approx(plain.inertia_ * scale * scale, rel=1e-9)
        assert scaled.score(X * scale) == pytest.approx(-scaled.inertia_, rel=1e-9)


def test_deep_learners_take_large_finite_data_or_say_what_is_wrong():
    from nanoml_deep.mlp import MLP

    from nanoml.errors import InputError

    X, y = _blobs()
    quick = {"hidden_sizes": (4,), "epochs": 1, "batch_size": 16}
    # float32 sums of values near 1e38 overflowed: the loss "became nan"
    assert set(MLP(**quick).fit(X * 1e37, y).predict(X * 1e37)) <= {0, 1, 2}
    # beyond float32: called "NaN or infinity", which it is not
    with pytest.raises(InputError, match="beyond 3.4e[+]38 .*rescale"):
        MLP(**quick).fit(X * 1e300, y)
    # below it: rounded to zeros, the network learnt one class
    with pytest.raises(InputError, match="feature 0 .* rounds them to 0"):
        MLP(**quick).fit(X * 1e-300, y)


def test_a_deep_regressor_predicts_targets_near_1e300():
    from nanoml_deep.recurrent import LSTMForecaster

    X, _ = _blobs()
    y = X[:, 0] * 1e300  # y.std() overflowed: predictions were -inf
    predicted = LSTMForecaster(hidden_size=4, epochs=1).fit(X, y).predict(X)
    assert np.isfinite(predicted).all()


@pytest.mark.parametrize("name", ["linear-regression", "ridge", "lasso", "elastic-net", "pca"])
@pytest.mark.parametrize("scale, words", [(1e200, "overflow"), (1e-300, "underflow")])
def test_features_whose_squares_do_not_fit_a_float64_are_refused(name, scale, words):
    # lasso, elastic-net and pca returned NaN for them
    from nanoml.errors import InputError
    from nanoml.plugins import get_learner

    X, y = _blobs()
    X[:, 1] *= scale
    with pytest.raises(InputError, match=f"feature 1 .* squares {words}"):
        get_learner(name)().fit(X, y.astype(np.float64))
    if name != "pca":  # and targets, for the regressors
        with pytest.raises(InputError, match=f"^y has .* squares {words}"):
            get_learner(name)().fit(X[:, :1], y * scale)


def test_documents_without_words_are_zero_rows():
    from nanoml_text.vectorizers import HashingVectorizer

    docs = ["", "a", "the cat"]  # no tokens in the first two: integer data, then a raw error
    rows = HashingVectorizer(n_features=16).fit(docs).transform(docs).toarray()
    assert rows.dtype == np.float64 and not rows[:2].any()
    np.testing.assert_allclose(np.linalg.norm(rows[2]), 1.0)


# -- regressors stop on divergence as classifiers do --------------------------------------

def test_a_diverging_deep_regressor_stops_with_one_line(tmp_path):
    # It reported R² = -1e17 and exit 0.
    from click.testing import CliRunner

    from nanoml.cli import cli

    result = CliRunner().invoke(cli, ["run", "lstm-forecaster", "--set", "lr=1e10",
                                      "--epochs", "2", "--out", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "loss became" in lines[0] and "(--lr)" in lines[0], lines
    assert "Traceback" not in result.output


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")
@pytest.mark.parametrize("name, rate", [("gradient-boosting-regressor", 100.0),
                                        ("gradient-boosting-regressor", 5.0),
                                        ("gradient-boosting", 1000.0)])
def test_gradient_boosting_stops_when_its_learning_rate_diverges(name, rate):
    # The regressor returned R² = -inf; the classifier raised ZeroDivisionError.
    from nanoml.errors import ParameterError
    from nanoml.plugins import get_learner

    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 3))
    target = X[:, 0] + rng.standard_normal(200)  # noisy: no tree fits it exactly
    target = target if name.endswith("regressor") else (target > 0).astype(int)
    learner = get_learner(name)(learning_rate=rate, max_iter=10)
    with pytest.raises(ParameterError, match=f"learning_rate={rate} makes gradient boosting"):
        learner.fit(X, target)
    learner.set_params(learning_rate=0.1).fit(X, target)
