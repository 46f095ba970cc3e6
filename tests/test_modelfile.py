"""Model files: round trip, no pickle, corrupt or foreign files, atomic writes."""

import json
import zipfile

import numpy as np
import pytest
from nanoml_classic.linear import LinearRegression

from nanoml import Learner, load_model, modelfile
from nanoml.errors import ModelFileError


@pytest.fixture
def fitted(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 3))
    model = LinearRegression(solver="gd", lr=0.3).fit(X, X @ [1.0, -2.0, 0.5] + 3.0)
    path = tmp_path / "model.npz"
    model.save(path)
    return model, path, X


def test_round_trip_through_the_registry(fitted):
    model, path, X = fitted
    loaded = load_model(path)
    assert isinstance(loaded, LinearRegression)
    assert loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert loaded.history_ == model.history_


def test_file_loads_without_pickle(fitted):
    _, path, _ = fitted
    with np.load(path, allow_pickle=False) as archive:
        header = json.loads(str(archive["__nanoml__"]))
        assert header["format"] == "nanoml-model" and header["format_version"] == 1
        assert archive["coef_"].dtype == np.float64


def test_loading_as_the_wrong_class_is_refused(fitted):
    _, path, _ = fitted

    class Other(Learner):
        name = "other"

    with pytest.raises(ModelFileError, match="holds a 'linear-regression' model"):
        Other.load(path)


def test_newer_format_version_is_refused(fitted, tmp_path):
    model, _, _ = fitted
    path = tmp_path / "future.npz"
    plain, arrays = model._get_state()
    modelfile.save(path, {"learner": model.name, "params": {}, "state": plain}, arrays)
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    header = json.loads(str(np.load(path)["__nanoml__"]))
    header["format_version"] = 99
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            if name != "__nanoml__.npy":
                z.writestr(name, data)
    np.savez(tmp_path / "h.npz", __nanoml__=np.array(json.dumps(header)))
    with zipfile.ZipFile(tmp_path / "h.npz") as h, zipfile.ZipFile(path, "a") as z:
        z.writestr("__nanoml__.npy", h.read("__nanoml__.npy"))
    with pytest.raises(ModelFileError, match="version 99.*upgrade nanoml"):
        load_model(path)


@pytest.mark.parametrize("content", [b"", b"not a zip file at all", b"PK\x03\x04broken"])
def test_corrupt_file_is_a_model_file_error(tmp_path, content):
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match="bad.npz"):
        load_model(path)


def test_truncated_file_is_a_model_file_error(fitted, tmp_path):
    _, path, _ = fitted
    cut = tmp_path / "cut.npz"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ModelFileError):
        load_model(cut)


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model(tmp_path / "none.npz")


def test_failed_write_keeps_the_previous_file(fitted):
    _, path, _ = fitted
    before = path.read_bytes()

    def crash(fh):
        fh.write(b"half a model")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        modelfile.atomic_write(path, crash)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["model.npz"]
