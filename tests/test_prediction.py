"""`nanoml predict` and `nanoml evaluate`: a saved model applied to files, chunk by chunk."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

import nanoml
from nanoml.cli import cli
from nanoml.errors import InputError
from nanoml.prediction import evaluate_file, predict_file
from tests.samples import make_images, write_table


@pytest.fixture
def forest(houses, tmp_path):
    result = nanoml.run("random-forest", str(houses), impute="median",
                        params={"n_estimators": 10}, out=tmp_path / "run")
    return result, tmp_path / "run" / "model.npz"


def read_csv(path):
    import pyarrow.csv as pacsv

    return pacsv.read_csv(path).to_pydict()


def test_predictions_match_the_model_and_chunks_change_nothing(forest, houses, tmp_path):
    result, model_path = forest
    whole = predict_file(model_path, houses, tmp_path / "all.csv")
    chunked = predict_file(model_path, houses, tmp_path / "chunks.csv", rows=7)
    assert whole == chunked == 200
    a, b = read_csv(tmp_path / "all.csv"), read_csv(tmp_path / "chunks.csv")
    assert a == b and a["row"] == list(range(200))
    data = nanoml.data.load_file(houses, impute="median")
    X = data.schema.encode(__import__("pyarrow.csv").csv.read_csv(houses))
    assert a["prediction"] == result.model.predict(X).tolist()


def test_probabilities_to_parquet(forest, houses, tmp_path):
    import pyarrow.parquet as pq

    _, model_path = forest
    predict_file(model_path, houses, tmp_path / "p.parquet", proba=True)
    table = pq.read_table(tmp_path / "p.parquet").to_pydict()
    assert set(table) == {"row", "proba_flat", "proba_house"}
    total = np.add(table["proba_flat"], table["proba_house"])
    np.testing.assert_allclose(total, 1.0)


def test_evaluate_reads_the_target_column(forest, houses):
    result, model_path = forest
    metrics = evaluate_file(model_path, houses)
    assert set(metrics) == {"accuracy"} and metrics["accuracy"] >= result.metrics["accuracy"] - 0.1


def test_data_of_other_columns_is_refused_by_name(forest, tmp_path):
    _, model_path = forest
    other = write_table(tmp_path / "other.csv", ["area", "rooms", "town", "garden"],
                        [[50, 2, "lyon", "true"]])
    with pytest.raises(InputError, match="lacks the column\\(s\\) 'city'"):
        predict_file(model_path, other, tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()
    mistyped = write_table(tmp_path / "typed.csv", ["area", "rooms", "city", "garden"],
                           [["big", 2, "lyon", "true"]])
    with pytest.raises(InputError, match="cannot read"):
        predict_file(model_path, mistyped, tmp_path / "out.csv")


def test_models_without_a_schema_read_numeric_files_by_width(tmp_path):
    result = nanoml.run("ridge", "quadratic", out=tmp_path / "run")
    model_path = tmp_path / "run" / "model.npz"
    X = np.linspace(0, 2, 30)[:, None]
    np.save(tmp_path / "x.npy", X)
    write_table(tmp_path / "x.csv", ["x"], X.tolist())
    write_table(tmp_path / "wide.csv", ["x", "z"], np.hstack([X, X]).tolist())
    for name in ("x.npy", "x.csv"):
        predict_file(model_path, tmp_path / name, tmp_path / "out.csv")
        got = np.array(read_csv(tmp_path / "out.csv")["prediction"])
        np.testing.assert_allclose(got, result.model.predict(X))
    with pytest.raises(InputError, match="has 2 columns but the model was trained on 1"):
        predict_file(model_path, tmp_path / "wide.csv", tmp_path / "out.csv")


def test_image_folders_are_predicted_by_file(tmp_path):
    folder = make_images(tmp_path / "imgs", ["cat", "dog"])
    nanoml.run("logistic-regression", str(folder), out=tmp_path / "run")
    model_path = tmp_path / "run" / "model.npz"
    predict_file(model_path, folder, tmp_path / "out.csv")
    rows = read_csv(tmp_path / "out.csv")
    assert rows["file"][0].endswith("cat/0.png") and len(rows["file"]) == 24
    assert evaluate_file(model_path, folder)["accuracy"] > 0.9
    with pytest.raises(InputError, match="model reads images"):
        predict_file(model_path, tmp_path / "out.csv")


def test_cli_predict_evaluate_and_mistakes(forest, houses, tmp_path):
    _, model_path = forest
    runner = CliRunner()
    shown = runner.invoke(cli, ["predict", str(model_path), str(houses)])
    assert shown.exit_code == 0 and shown.stdout.splitlines()[0] == '"row","prediction"'
    assert len(shown.stdout.splitlines()) == 201
    metrics = json.loads(runner.invoke(cli, ["evaluate", str(model_path), str(houses),
                                             "--json"]).stdout)
    assert 0 <= metrics["accuracy"] <= 1
    for args, fragment in [
        (["predict", str(tmp_path / "nope.npz"), str(houses)], "does not exist"),
        (["predict", str(model_path), str(tmp_path / "nope.csv")], "does not exist"),
        (["predict", str(houses), str(houses)], "not a readable nanoml model"),
    ]:
        result = runner.invoke(cli, args)
        assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
        assert fragment in result.output


@pytest.mark.slow
def test_a_dask_cluster_predicts_the_same(forest, houses, tmp_path):
    from nanoml.cluster import connected

    _, model_path = forest
    ridge = nanoml.run("ridge", "quadratic", out=tmp_path / "ridge").model
    ridge.save(tmp_path / "ridge.npz")
    X = np.random.default_rng(0).standard_normal((500, 1))
    write_table(tmp_path / "x.csv", ["x"], X.tolist())
    jobs = [(model_path, houses), (tmp_path / "ridge.npz", tmp_path / "x.csv")]
    for i, (model, data) in enumerate(jobs):  # text: pyarrow reads parts; numbers: Numba
        predict_file(model, data, tmp_path / f"here{i}.csv", rows=50)
    with connected(workers=2) as client:
        for i, (model, data) in enumerate(jobs):
            predict_file(model, data, tmp_path / f"there{i}.csv", rows=50, client=client)
    for i in range(2):
        assert read_csv(tmp_path / f"here{i}.csv") == read_csv(tmp_path / f"there{i}.csv")
