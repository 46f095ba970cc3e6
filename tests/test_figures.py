"""The figures every run folder gets for its learner's task (nanoml.figures, nanoml.plots)."""

import numpy as np
import pytest

import nanoml
from nanoml import figures, metrics
from nanoml.data import Dataset

PNG = b"\x89PNG\r\n\x1a\n"

# learner, dataset, params -> the figures its run folder must have, and must not
CASES = {
    "iris": ("logistic-regression", "iris", {},
             {"confusion_matrix.png"}, {"roc.png", "decision_regions.png"}),
    "moons": ("svm", "moons", {},
              {"confusion_matrix.png", "roc.png", "decision_regions.png"}, set()),
    "quadratic": ("ridge", "quadratic", {}, {"predicted_vs_true.png", "fit.png"}, set()),
    "blobs": ("k-means", "blobs", {}, {"clusters.png"}, set()),
    "digits": ("pca", "digits", {"n_components": 5}, {"explained_variance.png"}, set()),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return {key: nanoml.run(learner, dataset, params=params, out=root / key)
            for key, (learner, dataset, params, _, _) in CASES.items()}


def assert_drawn(path):
    """A PNG with something on it: its pixels are not all one colour."""
    import matplotlib.image

    assert path.read_bytes()[:8] == PNG, path
    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert pixels[..., :3].var() > 1e-3, f"{path.name} is blank"


@pytest.mark.parametrize("case", CASES)
def test_each_task_gets_its_figures(runs, case):
    *_, wanted, unwanted = CASES[case]
    result = runs[case]
    folder = result.folder
    for name in wanted:
        assert name in result.files
        assert_drawn(folder / name)
    assert not unwanted & set(result.files)
    assert not any((folder / name).exists() for name in unwanted)
    on_disk = {p.name for p in folder.iterdir()}
    assert sorted(result.files) == sorted(on_disk)


def test_the_roc_scores_of_a_one_vs_one_svm_are_turned_towards_the_second_class(runs):
    """The SVM's pairwise decision is positive for the first class; the figure's scores
    must still grow with classes_[1], or the curve would be drawn upside down."""
    model = runs["moons"].model
    data = nanoml.data.load_dataset("moons")
    raw = model.pairwise_decision(data.X_test)[:, 0]
    scores = figures.positive_scores(model, data.X_test, model.predict(data.X_test),
                                     model.classes_)
    assert metrics.roc_auc(data.y_test, -raw) > 0.95  # the raw values point the other way
    assert metrics.roc_auc(data.y_test, scores) > 0.95


class Threshold(nanoml.Learner):
    """Class 1 where the first feature is above the training mean; no scores of any kind."""

    name = "threshold"
    task = "classification"
    default_dataset = "moons"

    def fit(self, X, y):
        self.cut_ = float(np.mean(X[:, 0]))
        return self

    def predict(self, X):
        return (np.asarray(X)[:, 0] > self.cut_).astype(np.int64)


class FlippedThreshold(Threshold):
    """The same, with a decision function positive for class 0, as an OvO SVM's is."""

    name = "flipped-threshold"

    def decision_function(self, X):
        return (self.cut_ - np.asarray(X)[:, 0])[:, None]


def test_a_classifier_without_scores_gets_no_roc_curve(tmp_path):
    result = nanoml.run(Threshold, "moons", out=tmp_path / "run")
    assert {"confusion_matrix.png", "decision_regions.png"} <= set(result.files)
    assert "roc.png" not in result.files
    assert_drawn(tmp_path / "run" / "decision_regions.png")


def test_a_one_column_decision_function_is_oriented_by_the_predictions():
    data = nanoml.data.load_dataset("moons")
    model = FlippedThreshold().fit(data.X_train, data.y_train)
    scores = figures.positive_scores(model, data.X_test, model.predict(data.X_test),
                                     np.array([0, 1]))
    np.testing.assert_allclose(scores, data.X_test[:, 0] - model.cut_)


def test_no_confusion_matrix_past_the_class_limit(tmp_path):
    rng = np.random.default_rng(0)
    k = figures.MAX_CLASSES + 1
    X, y = rng.normal(size=(300, 3)), np.arange(300) % k
    many = Dataset("many", "classification", X, y, X, y)

    class Echo(Threshold):
        name = "echo"

        def predict(self, X):
            return np.arange(len(X)) % k

    assert figures.task_figures(Echo().fit(X, y), tmp_path, many) == []
    assert list(tmp_path.iterdir()) == []


def test_sample_rows_caps_the_points_drawn():
    rows = figures.sample_rows(10_000)
    assert len(rows) == figures.MAX_POINTS == len(np.unique(rows))
    assert np.all(np.diff(rows) > 0) and rows.max() < 10_000
    np.testing.assert_array_equal(figures.sample_rows(5), np.arange(5))


def test_the_principal_plane_matches_scikit_learns_pca():
    decomposition = pytest.importorskip("sklearn.decomposition",
                                        reason="scikit-learn is the reference")
    X = nanoml.data.load_dataset("digits").X_test
    project, shares = figures.principal_plane(X)
    reference = decomposition.PCA(2).fit(X)
    np.testing.assert_allclose(shares, reference.explained_variance_ratio_, rtol=1e-8)
    # components have a sign of their own choosing: compare up to it
    ours, theirs = project(X[:20]), reference.transform(X[:20])
    np.testing.assert_allclose(np.abs(ours), np.abs(theirs), atol=1e-8)
