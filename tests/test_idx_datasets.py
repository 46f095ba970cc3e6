"""IDX files and the MNIST-family loaders: local folders, corrupt files, no network."""

import gzip

import numpy as np
import pytest

from nanoml.data import mnist
from nanoml.data.idx import parse_idx, read_idx, write_idx
from nanoml.errors import DatasetUnavailableError
from tests.samples import served_folder


def test_idx_round_trip_plain_and_gzip(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / "a", images)
    np.testing.assert_array_equal(read_idx(tmp_path / "a"), images)
    (tmp_path / "a.gz").write_bytes(gzip.compress((tmp_path / "a").read_bytes()))
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), images)


def test_big_endian_int32_payload():
    raw = (
        bytes([0, 0, 0x0C, 1])
        + np.array([3], ">u4").tobytes()
        + np.array([1, -2, 70000], ">i4").tobytes()
    )
    np.testing.assert_array_equal(parse_idx(raw), [1, -2, 70000])


@pytest.mark.parametrize(
    "mangle, fragment",
    [
        (lambda raw: raw[:-10], "truncated"),
        (lambda raw: raw + b"\0", "longer than its header says"),
        (lambda raw: b"\x01" + raw[1:], "bad magic"),
        (lambda raw: raw[:6], "truncated inside its header"),
    ],
)
def test_corrupt_idx_is_refused(tmp_path, mangle, fragment):
    write_idx(tmp_path / "ok", np.zeros((3, 4), np.uint8))
    raw = (tmp_path / "ok").read_bytes()
    (tmp_path / "bad").write_bytes(mangle(raw))
    with pytest.raises(DatasetUnavailableError, match=fragment):
        read_idx(tmp_path / "bad")


def test_broken_gzip_is_refused(tmp_path):
    path = tmp_path / "x.gz"
    payload = np.random.default_rng(0).integers(0, 256, 10000, dtype=np.uint8).tobytes()
    path.write_bytes(gzip.compress(payload)[:5000])
    with pytest.raises(DatasetUnavailableError, match="cannot read"):
        read_idx(path)


def _fake_mnist(folder, n_train=60000, n_test=10000):
    rng = np.random.default_rng(1)
    for key, n in (("train", n_train), ("test", n_test)):
        prefix = "train" if key == "train" else "t10k"
        write_idx(folder / f"{prefix}-images-idx3-ubyte", np.full((n, 28, 28), 255, np.uint8))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, n).astype(np.uint8))


def test_data_dir_is_read_and_scaled(tmp_path):
    _fake_mnist(tmp_path)
    data = mnist.load("mnist", data_dir=str(tmp_path))
    assert data.X_train.shape == (60000, 784) and data.X_test.shape == (10000, 784)
    assert data.X_train.dtype == np.float32 and data.X_train.max() == 1.0
    assert data.image_shape == (1, 28, 28) and set(np.unique(data.y_train)) <= set(range(10))


def test_wrong_counts_are_refused(tmp_path):
    _fake_mnist(tmp_path, n_test=9999)
    with pytest.raises(DatasetUnavailableError, match="expected 10000 images"):
        mnist.load("mnist", data_dir=str(tmp_path))


def test_data_dir_missing_files_names_them(tmp_path):
    with pytest.raises(DatasetUnavailableError, match="lacks train-images-idx3-ubyte"):
        mnist.load("fashion-mnist", data_dir=str(tmp_path))


def test_offline_without_a_copy_says_where_to_put_the_files(tmp_path, monkeypatch):
    monkeypatch.setitem(mnist.SOURCES["mnist"], "url", "http://127.0.0.1:9/")
    monkeypatch.setitem(mnist.SOURCES["mnist"], "system", [])
    monkeypatch.setattr(mnist, "cache_folder", lambda name: str(tmp_path / name))
    with pytest.raises(DatasetUnavailableError) as info:
        mnist.load("mnist")
    message = str(info.value)
    assert "no network connection" in message and str(tmp_path / "mnist") in message
    assert "\n" not in message
    assert not (tmp_path / "mnist").exists()  # nothing left behind


def test_a_download_that_fails_its_checksum_leaves_nothing_behind(tmp_path, monkeypatch):
    served = tmp_path / "server"
    served.mkdir()
    for stem in mnist.FILES.values():
        (served / (stem + ".gz")).write_bytes(b"not the real file" * 1000)
    monkeypatch.setitem(mnist.SOURCES["mnist"], "system", [])
    monkeypatch.setattr(mnist, "cache_folder", lambda name: str(tmp_path / name))
    with served_folder(served) as url:
        monkeypatch.setitem(mnist.SOURCES["mnist"], "url", url)
        with pytest.raises(DatasetUnavailableError, match="cannot download mnist"):
            mnist.load("mnist")
    assert not (tmp_path / "mnist").exists()
