"""Conventions users rely on: what is refused with one clear message, and what is accepted."""

import os
import warnings

import numpy as np
import pytest

from nanoml import modelfile
from nanoml.errors import InputError, ModelFileError, NotFittedError
from nanoml.validation import check_array, encode_labels


def test_not_fitted_is_a_value_error_as_in_scikit_learn():
    assert issubclass(NotFittedError, ValueError)
    assert issubclass(NotFittedError, AttributeError)


@pytest.mark.parametrize("X, words", [
    (np.ones((3, 2), dtype=complex), "complex"),
    (np.ones((3, 0)), "0 features"),
])
def test_arrays_refused_with_the_reason(X, words):
    with pytest.raises(InputError, match=words):
        check_array(X)


def test_a_sparse_matrix_is_named_as_such():
    sparse = pytest.importorskip("scipy.sparse", reason="needs scipy")
    with pytest.raises(InputError, match="sparse matrix"):
        check_array(sparse.csr_matrix(np.eye(3)))


def test_object_arrays_of_numbers_are_labels_like_numbers():
    classes, codes = encode_labels(np.array([1, 0, 2, 1], dtype=object), 4)
    assert classes.dtype.kind == "i" and list(classes) == [0, 1, 2]
    assert list(codes) == [1, 0, 2, 1]
    classes, _ = encode_labels(np.array([1.0, 0.0, 1.0]), 3)  # whole floats are labels
    assert list(classes) == [0.0, 1.0]


def test_continuous_targets_are_refused_by_classifiers():
    with pytest.raises(InputError, match="continuous.*regression"):
        encode_labels(np.array([0.1, 0.5, 0.25, 0.9]), 4)


@pytest.mark.parametrize("header", ['[1, 2]', '{"format": "nanoml-model", "format_version": 0}',
                                    '{"format": "nanoml-model", "format_version": -5}',
                                    '{"format": "nanoml-model", "format_version": true}'])
def test_model_file_headers_are_checked(tmp_path, header):
    path = tmp_path / "m.npz"
    np.savez(path, __nanoml__=np.array(header))
    with pytest.raises(ModelFileError):
        modelfile.load(path)


def test_written_files_follow_the_umask(tmp_path):
    previous = os.umask(0o027)
    try:
        modelfile.write_json(tmp_path / "a.json", {"x": 1})
    finally:
        os.umask(previous)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o640


def test_ctrl_c_exits_130_with_one_line(monkeypatch):
    from click.testing import CliRunner

    import nanoml
    from nanoml.cli import cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(nanoml, "run", interrupted)
    result = CliRunner().invoke(cli, ["run", "ridge"])
    assert result.exit_code == 130
    assert "interrupted" in result.output and "Traceback" not in result.output


def test_a_solver_stopped_at_its_cap_says_so_in_one_line(tmp_path):
    from click.testing import CliRunner
    from nanoml_classic.logistic import LinearSVM

    from nanoml.cli import cli
    from nanoml.errors import ConvergenceWarning

    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3)) * [1, 100, 1e4]
    y = (X[:, 0] > 0).astype(int)
    with pytest.warns(ConvergenceWarning, match="max_iter=1 "):
        LinearSVM(max_iter=1).fit(X, y)
    result = CliRunner().invoke(cli, ["run", "linear-svm", "--set", "max_iter=1", "--out",
                                      str(tmp_path / "run")])
    assert result.exit_code == 0
    lines = [line for line in result.output.splitlines() if "max_iter" in line]
    assert lines == [lines[0]]
    assert lines[0].startswith("warning: linear-svm's dual coordinate descent stopped")


@pytest.mark.parametrize("learner, params", [
    ("logistic-regression", {"max_iter": 1}),
    ("lasso", {"max_iter": 1, "tol": 1e-12}),
    ("elastic-net", {"max_iter": 1, "tol": 1e-12}),
])
def test_every_capped_solver_warns_and_the_warning_names_its_cap(learner, params):
    from nanoml.errors import ConvergenceWarning
    from nanoml.plugins import get_learner
    from nanoml.runner import make_learner

    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 4)) * [1, 10, 100, 1000]
    y = X @ [1.0, 0.1, 0.01, 0.001] + 0.1 * rng.standard_normal(80)
    cls = get_learner(learner)
    model = make_learner(cls, params, 0)
    target = y if model.task == "regression" else (y > 0).astype(int)
    with pytest.warns(ConvergenceWarning, match=f"^{learner}'s .* max_iter=1 "):
        model.fit(X, target)
    params["max_iter"] = 10_000
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        make_learner(cls, params | {"tol": 1e-4}, 0).fit(X, target)
