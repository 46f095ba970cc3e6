"""Files of one's own as datasets: tables, arrays and image folders (nanoml.data.load_file)."""

import numpy as np
import pytest

import nanoml
from nanoml.data import load_dataset, load_file
from nanoml.data.tables import MAX_ONE_HOT
from nanoml.errors import InputError, ParameterError
from tests.samples import make_images, write_table


def test_a_table_is_encoded_and_split(houses):
    data = load_file(houses, impute="median", seed=1)
    assert data.task == "classification" and data.name == "houses.csv"
    assert data.feature_names == ["area", "rooms", "city=lyon", "city=nice", "city=paris",
                                  "garden"]
    X = np.vstack([data.X_train, data.X_test])
    assert X.shape == (200, 6) and np.isfinite(X).all()
    assert set(np.unique(X[:, 2:5].sum(axis=1))) == {1.0}  # one-hot: one city a row
    assert set(np.unique(X[:, 5])) == {0.0, 1.0}
    assert set(np.concatenate([data.y_train, data.y_test])) == {"flat", "house"}
    assert data.X_test.shape[0] == 50  # a quarter held out


def test_missing_values_are_refused_by_column_or_imputed(houses):
    with pytest.raises(InputError, match=r"column 'rooms' .* 8 missing value\(s\), the first "
                                         r"in row 8"):
        load_file(houses)
    import pyarrow.csv as pacsv

    raw = pacsv.read_csv(houses).column("rooms").to_numpy(zero_copy_only=False)
    known = raw[np.isfinite(raw)]
    values, counts = np.unique(known, return_counts=True)
    expected = {"mean": known.mean(), "median": np.median(known),
                "most-frequent": values[np.argmax(counts)]}
    for how, fill in expected.items():
        schema = load_file(houses, impute=how).schema
        assert schema.columns[1].fill == pytest.approx(fill)
        assert schema.columns[2].fill == "paris" or schema.columns[2].kind == "one-hot"
    with pytest.raises(ParameterError, match="impute must be one of"):
        load_file(houses, impute="zero")


def test_many_categories_are_ordinal_and_unseen_ones_refused(tmp_path):
    n = MAX_ONE_HOT + 8
    rows = [[f"c{i % n:02d}", i % 2] for i in range(4 * n)]
    path = write_table(tmp_path / "wide.csv", ["code", "y"], rows)
    data = load_file(path)
    assert data.schema.columns[0].kind == "ordinal" and data.n_features == 1
    import pyarrow as pa

    unseen = pa.table({"code": ["zz"], "y": [0]})
    with pytest.raises(InputError, match="value 'zz' \\(row 1\\), never seen in training"):
        data.schema.encode(unseen)


def test_task_follows_the_target_or_the_learner(tmp_path):
    rng = np.random.default_rng(0)
    rows = [[f"{x:.3f}", f"{2 * x + 0.3 * rng.normal():.3f}", int(x > 0)]
            for x in rng.standard_normal(120)]
    path = write_table(tmp_path / "t.csv", ["x", "y", "label"], rows)
    assert load_file(path).task == "classification"  # 0/1 integers
    assert load_file(path, target="y").task == "regression"
    assert load_file(path, task="regression").task == "regression"
    result = nanoml.run("ridge", str(path), target="y", out=tmp_path / "run")
    assert result.metrics["r2"] > 0.5


def test_parquet_tsv_and_csv_read_alike(houses, tmp_path):
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    table = pacsv.read_csv(houses)
    pq.write_table(table, tmp_path / "h.parquet")
    (tmp_path / "h.tsv").write_text(houses.read_text().replace(",", "\t"))
    reference = load_file(houses, impute="mean")
    for other in ("h.parquet", "h.tsv"):
        data = load_file(tmp_path / other, impute="mean")
        np.testing.assert_array_equal(data.X_train, reference.X_train)
        np.testing.assert_array_equal(data.y_test, reference.y_test)


def test_arrays_from_npz_and_npy(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((90, 3))
    np.savez(tmp_path / "xy.npz", X=X, y=(X[:, 0] > 0).astype(int))
    np.save(tmp_path / "x.npy", X)
    assert load_file(tmp_path / "xy.npz").task == "classification"
    assert load_file(tmp_path / "x.npy").task == "clustering"
    result = nanoml.run("k-means", str(tmp_path / "x.npy"), out=tmp_path / "km")
    assert result.model.n_features_in_ == 3
    with pytest.raises(InputError, match="holds no targets"):
        load_file(tmp_path / "x.npy", task="classification")


def test_image_folder_is_a_dataset_of_one_shape(tmp_path):
    folder = make_images(tmp_path / "imgs", ["cat", "dog"], odd_size=(20, 20))
    data = load_file(folder)
    assert data.image_shape == (1, 10, 12) and data.n_features == 120
    assert data.task == "classification" and set(data.y_train) == {"cat", "dog"}
    assert data.X_train.min() >= 0 and data.X_train.max() <= 1
    colour = make_images(tmp_path / "rgb", ["a", "b"], mode="RGB")
    assert load_file(colour).image_shape == (3, 10, 12)
    result = nanoml.run("cnn", str(folder), params={"epochs": 3}, out=tmp_path / "run")
    assert result.model.input_shape_ == (1, 10, 12) and result.metrics["accuracy"] > 0.9


@pytest.mark.parametrize(
    "name, content, fragment",
    [
        ("ragged.csv", "a,b,y\n1,2,0\n3,4\n", "Expected 3 columns, got 2"),
        ("empty.csv", "", "cannot read"),
        ("header.csv", "a,b,y\n", "holds no rows"),
        ("one.csv", "y\n1\n2\n", "has one column"),
        ("text.npy", None, "cannot read"),
        ("notes.txt", "hello", "not a file nanoml reads"),
    ],
)
def test_bad_files_give_one_clear_error(name, content, fragment, tmp_path):
    path = tmp_path / name
    if content is None:
        path.write_bytes(b"not numpy")
    else:
        path.write_text(content)
    with pytest.raises(InputError, match=fragment):
        load_file(path)


def test_bad_image_folders(tmp_path):
    one = make_images(tmp_path / "one", ["only"])
    with pytest.raises(InputError, match="at least two classes; found 1"):
        load_file(one)
    two = make_images(tmp_path / "two", ["a", "b"])
    (two / "a" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(InputError, match="cannot read the image .*broken.png"):
        load_file(two)


def test_registered_names_win_and_file_options_need_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "iris").mkdir()  # a folder of that name does not hide the dataset
    assert load_dataset("iris").name == "iris"
    with pytest.raises(ParameterError, match="registered dataset: target is only for"):
        load_dataset("iris", target="x")
    with pytest.raises(nanoml.errors.DatasetUnavailableError, match="does not exist"):
        load_dataset("missing.csv")
