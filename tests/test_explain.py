"""nanoml.explain: attributions against closed forms and peers, and the command's errors."""

import itertools
import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from nanoml_classic.forest import RandomForestClassifier, RandomForestRegressor
from nanoml_classic.linear import LinearRegression
from nanoml_classic.logistic import LogisticRegression
from nanoml_classic.tree import DecisionTreeClassifier

import nanoml
from nanoml.cli import cli
from nanoml.explain import gradients, treeshap
from nanoml.explain.gradients import IntegratedGradients, Saliency
from nanoml.explain.permutation import METRICS, Occlusion, permutation_importance
from nanoml.explain.treeshap import LinearSHAP, TreeSHAP


def _grid_data(n=400, d=5, seed=0):
    """Distinct values on a 1/4 grid: midpoints are exact in float32, so scikit-learn's
    float32 trees split where nanoml's float64 trees do."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.permutation(n) for _ in range(d)]) * 0.25 - 50.0
    signal = np.sin(X[:, 0] / 20) + X[:, 1] * X[:, 2] / 2500 + 0.1 * rng.standard_normal(n)
    return X, (signal > 0).astype(int) + (X[:, 3] > 0)


# -- integrated gradients and the gradient methods ----------------------------------------
def test_integrated_gradients_match_the_closed_form_of_a_linear_model():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((6, 3)).astype(np.float32)
    X = rng.standard_normal((9, 6)).astype(np.float32)
    base = rng.standard_normal(6).astype(np.float32)
    ig, delta = IntegratedGradients(lambda x: x @ w).attribute(
        X, target=2, baselines=base, steps=4, return_convergence_delta=True)
    np.testing.assert_allclose(ig, (X - base) * w[:, 2], atol=1e-5)
    assert np.abs(delta).max() < 1e-5


def test_integrated_gradients_match_the_closed_form_of_a_quadratic_model(monkeypatch):
    rng = np.random.default_rng(1)
    a = rng.standard_normal(6).astype(np.float32)
    X = rng.standard_normal((7, 6)).astype(np.float32)
    base = rng.standard_normal(6).astype(np.float32)
    forward = lambda x: (x * x * a).sum(axis=1).reshape(-1, 1)  # noqa: E731
    # ∫ 2a(b + α(x - b)) dα (x - b) = a (x² - b²)
    expected = a * (X**2 - base**2)
    ig = IntegratedGradients(forward).attribute(X, baselines=base, steps=3)
    np.testing.assert_allclose(ig, expected, atol=1e-5)
    # path points split across many small batches: the same sums, so bounded memory
    monkeypatch.setattr(gradients, "BATCH", 5)
    chunked, delta = IntegratedGradients(forward).attribute(
        X, baselines=base, steps=3, return_convergence_delta=True)
    np.testing.assert_allclose(chunked, expected, atol=1e-5)
    assert np.abs(delta).max() < 1e-4


def test_network_gradient_matches_finite_differences():
    from nanoml_deep.mlp import MLP

    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 4))
    y = (X[:, 0] - X[:, 1] > 0).astype(int)
    model = MLP(hidden_sizes=(8,), epochs=2).fit(X, y)
    forward = gradients.network_forward(model)
    x = X[:3].astype(np.float32)
    with gradients.frozen(model.module_):
        grad, _ = gradients.gradient(forward, x, np.array([1, 1, 1]))
    assert all(p.grad is None for p in model.module_.parameters())
    h = 1e-2
    for j in range(4):
        step = np.zeros(4, np.float32)
        step[j] = h
        up = gradients.outputs(forward, x + step)[:, 1]
        down = gradients.outputs(forward, x - step)[:, 1]
        np.testing.assert_allclose(grad[:, j], (up - down) / (2 * h), rtol=0.05, atol=1e-3)
    saliency = Saliency(forward).attribute(x, target=1)
    np.testing.assert_allclose(saliency, np.abs(grad), rtol=1e-6)


# -- exact SHAP values -------------------------------------------------------------------
def _brute_force_shap(model, cover, x):
    """Shapley values of the path-dependent value function, by every coalition."""
    def value(coalition):
        def walk(node):
            f = model.feature_[node]
            if f < 0:
                return model.value_[node]
            left, right = model.left_[node], model.right_[node]
            if f in coalition:
                return walk(left if x[f] <= model.threshold_[node] else right)
            return (cover[left] * walk(left) + cover[right] * walk(right)) / cover[node]
        return walk(model.roots_[0])

    d = len(x)
    phi = np.zeros((d, model.value_.shape[1]))
    for j in range(d):
        others = [k for k in range(d) if k != j]
        for size in range(d):
            for subset in itertools.combinations(others, size):
                weight = math.factorial(size) * math.factorial(d - size - 1) / math.factorial(d)
                phi[j] += weight * (value({*subset, j}) - value(set(subset)))
    return phi


@pytest.fixture(params=["algorithm 2", "tables"])
def treeshap_route(request, monkeypatch):
    """Run a test with TreeSHAP's path walk (Algorithm 2) or its coalition tables."""
    monkeypatch.setattr(TreeSHAP, "tabulate", lambda self, n_rows: request.param == "tables")
    return request.param


def test_treeshap_equals_brute_force_shapley_values_and_adds_up(treeshap_route):
    X, y = _grid_data(200)
    tree = DecisionTreeClassifier(max_depth=6).fit(X, y)
    explainer = TreeSHAP(tree, X)
    phi, delta = explainer.attribute(X[:3], return_convergence_delta=True)
    for i in range(3):
        np.testing.assert_allclose(phi[i], _brute_force_shap(tree, explainer.cover, X[i]),
                                   atol=1e-12)
    assert np.abs(delta).max() <= 1e-6


@pytest.mark.parametrize("cls", [RandomForestClassifier, RandomForestRegressor])
def test_treeshap_of_a_forest_adds_up_to_the_prediction(cls, treeshap_route):
    X, y = _grid_data(300)
    forest = cls(n_estimators=10, max_depth=8).fit(X, y)
    # background other than the training rows: some nodes are reached by no row
    phi, delta = TreeSHAP(forest, X[:40]).attribute(X[:50], return_convergence_delta=True)
    assert phi.shape[:2] == (50, 5)
    assert np.abs(delta).max() <= 1e-6


@pytest.mark.parametrize("classes", [0, 2, 3])
def test_treeshap_of_gradient_boosting_adds_up_to_its_raw_scores(classes, treeshap_route):
    from nanoml_classic.boosting import GradientBoostingClassifier, GradientBoostingRegressor

    X, y = _grid_data(300)
    model = (GradientBoostingRegressor(max_iter=15).fit(X, X[:, 0] + X[:, 1] * X[:, 2])
             if classes == 0 else GradientBoostingClassifier(max_iter=15).fit(X, y % classes))
    explainer = TreeSHAP(model, X)
    phi, delta = explainer.attribute(X[:30], return_convergence_delta=True)
    assert phi.shape == (30, 5, 1 if classes <= 2 else classes)
    assert np.abs(delta).max() <= 1e-6
    np.testing.assert_allclose(phi.sum(axis=1) + explainer.expected_value,
                               model.raw_score(X[:30]), atol=1e-9)


def test_treeshap_tables_equal_the_path_walk_in_parts_and_whole(monkeypatch):
    X, y = _grid_data(300)
    forest = RandomForestRegressor(n_estimators=5, max_depth=7).fit(X, y)
    explainer = TreeSHAP(forest, X)
    assert explainer.tabulate(300) and not explainer.tabulate(1)
    walked = explainer.attribute(X[:1])
    whole = explainer.attribute(X)
    monkeypatch.setattr(treeshap, "TABLE_ENTRIES", 256)  # many small parts
    np.testing.assert_array_equal(explainer.attribute(X), whole)
    np.testing.assert_allclose(whole[:1], walked, atol=1e-12)


def test_treeshap_agrees_with_shap_on_a_scikit_learn_tree_of_the_same_splits(treeshap_route):
    shap = pytest.importorskip("shap", reason="shap (the test extra) is not installed")
    tree_module = pytest.importorskip("sklearn.tree", reason="scikit-learn is not installed")
    X, y = _grid_data()
    ours = DecisionTreeClassifier(max_depth=4).fit(X, y)
    theirs = tree_module.DecisionTreeClassifier(max_depth=4, random_state=0).fit(X, y)
    assert np.array_equal(ours.feature_, np.where(theirs.tree_.feature < 0, -1,
                                                  theirs.tree_.feature))
    assert np.array_equal(ours.threshold_, theirs.tree_.threshold)
    explainer = TreeSHAP(ours, X)
    reference = shap.TreeExplainer(theirs)
    expected = np.asarray(reference.shap_values(X[:100])).reshape(100, 5, 3)
    np.testing.assert_allclose(explainer.attribute(X[:100]), expected, atol=1e-9)
    np.testing.assert_allclose(explainer.expected_value, reference.expected_value, atol=1e-12)


@pytest.mark.parametrize("cls", [LinearRegression, LogisticRegression])
def test_linear_shap_is_the_closed_form_and_adds_up(cls):
    X, y = _grid_data(200)
    y = X @ np.arange(5.0) if cls is LinearRegression else y
    model = cls().fit(X, y)
    explainer = LinearSHAP(model, X)
    phi, delta = explainer.attribute(X[:20], return_convergence_delta=True)
    coef = np.atleast_2d(model.coef_)
    np.testing.assert_allclose(phi[:, :, 0], (X[:20] - X.mean(axis=0)) * coef[0])
    assert np.abs(delta).max() <= 1e-6


# -- model-agnostic methods --------------------------------------------------------------
def test_permutation_importance_equals_scikit_learn_on_the_same_permutations():
    inspection = pytest.importorskip("sklearn.inspection",
                                     reason="scikit-learn is not installed")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 6))
    y = (X[:, 0] + 0.5 * X[:, 1] + 0.3 * rng.standard_normal(300) > 0).astype(int)
    model = LogisticRegression().fit(X, y)

    class Fitted:  # scikit-learn's view of the same predictions
        def fit(self, X, y):
            return self

        def predict(self, X):
            return model.predict(X)

    seed, repeats = 3, 4
    # scikit-learn's draws: one seed for every column, each repeat shuffling the last
    state = np.random.RandomState(np.random.RandomState(seed).randint(2**31))
    shuffle, order, permutations = np.arange(300), np.arange(300), []
    for _ in range(repeats):
        state.shuffle(shuffle)
        order = order[shuffle]
        permutations.append(order)
    ours = permutation_importance(model.predict, X, y, metric=METRICS["accuracy"],
                                  repeats=repeats, permutations=np.array(permutations))
    theirs = inspection.permutation_importance(
        Fitted(), X, y, n_repeats=repeats, random_state=seed,
        scoring=lambda est, X, y: METRICS["accuracy"](y, est.predict(X)))
    np.testing.assert_array_equal(ours["importances"], theirs.importances)
    assert ours["mean"][0] > ours["mean"][2]
    grouped = permutation_importance(model.predict, X, y, metric=METRICS["accuracy"],
                                     repeats=2, groups=[[0, 1], [2, 3, 4, 5]], workers=2)
    assert grouped["importances"].shape == (2, 2)


@pytest.mark.parametrize("kind", ["forest", "forest-regressor", "boosting"])
def test_permutation_importance_of_trees_replays_exactly_what_predict_gives(kind):
    from nanoml_classic.boosting import GradientBoostingClassifier

    from nanoml.explain.permutation import TreeReplay

    X, y = _grid_data(300)
    if kind == "forest-regressor":
        y = X[:, 0] * X[:, 1] / 100
    model = {"forest": RandomForestClassifier(n_estimators=8),
             "forest-regressor": RandomForestRegressor(n_estimators=8, max_depth=6),
             "boosting": GradientBoostingClassifier(max_iter=8)}[kind].fit(X, y)
    metric = METRICS["r2" if kind == "forest-regressor" else "accuracy"]
    assert TreeReplay.of(model.predict, X) is not None
    assert TreeReplay.of(lambda rows: model.predict(rows), X) is None
    for groups in (None, [[0, 1], [4], [2, 3]]):
        replayed = permutation_importance(model.predict, X, y, metric=metric, repeats=3,
                                          groups=groups, seed=1)
        called = permutation_importance(lambda rows: model.predict(rows), X, y,
                                        metric=metric, repeats=3, groups=groups, seed=1)
        for key in ("importances", "baseline"):
            np.testing.assert_array_equal(replayed[key], called[key])
    assert replayed["mean"].max() > 0


def test_occlusion_of_a_linear_model_with_one_pixel_windows_is_weight_times_input():
    rng = np.random.default_rng(0)
    w = rng.standard_normal(16)
    X = rng.standard_normal((2, 16))
    found = Occlusion(lambda rows: (rows @ w)[:, None], (1, 4, 4)).attribute(
        X, target=0, window=1, stride=1)
    np.testing.assert_allclose(found, X * w)


# -- the library call and the command ----------------------------------------------------
@pytest.fixture(scope="module")
def tree_file(tmp_path_factory):
    from nanoml.data import load_dataset

    data = load_dataset("breast-cancer")
    path = tmp_path_factory.mktemp("model") / "tree.npz"
    DecisionTreeClassifier(max_depth=4).fit(data.X_train, data.y_train).save(path)
    return str(path)


def test_explain_writes_figures_and_numbers(tree_file, tmp_path):
    result = CliRunner().invoke(cli, ["explain", tree_file, "--rows", "0,3-4", "--out",
                                      str(tmp_path / "x"), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["rows"] == [0, 3, 4]
    saved = json.loads((tmp_path / "x" / "explanation.json").read_text())
    assert saved["methods"]["treeshap"]["max_additivity_error"] <= 1e-6
    for name in summary["files"]:
        assert (tmp_path / "x" / name).stat().st_size > 0
    assert {"treeshap.png", "permutation.png"} <= set(summary["files"])


def test_explain_a_cnn_draws_heatmaps_filters_and_a_hidden_map(tmp_path):
    from nanoml_deep.cnn import CNN

    from nanoml.data import load_dataset

    data = load_dataset("digits")
    model = CNN(epochs=1).fit(data.shaped(data.X_train[:300]), data.y_train[:300])
    result = nanoml.explain(model, "digits", rows=[0, 1], out=str(tmp_path / "c"),
                            method="integrated-gradients,saliency,occlusion,activations")
    assert result.methods["integrated-gradients"]["max_completeness_error"] < 0.05
    assert {"attributions.png", "filters.png", "feature_maps.png", "hidden_map.png"} \
        <= set(result.files)


@pytest.mark.parametrize("arguments, words", [
    (["--method", "integrated-gradients"],
     "--method 'integrated-gradients' does not apply to learner 'decision-tree'"),
    (["--rows", "0,999"], "--rows 999 is out of range"),
    (["--rows", "x"], "--rows must be numbers"),
])
def test_bad_requests_are_one_line_and_exit_2(tree_file, tmp_path, arguments, words):
    out = tmp_path / "never"
    result = CliRunner().invoke(cli, ["explain", tree_file, *arguments, "--out", str(out)])
    assert result.exit_code == 2
    assert words in result.output and len(result.output.strip().splitlines()) == 1
    assert not out.exists()


def test_a_model_file_that_does_not_load_is_one_line_and_exit_2(tmp_path):
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not a model")
    result = CliRunner().invoke(cli, ["explain", str(broken), "--dataset", "iris"])
    assert result.exit_code == 2
    assert "not a readable nanoml model file" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_gradient_target_must_be_integers():
    with pytest.raises(nanoml.NanomlError, match="target"):
        Saliency(lambda x: x * 2).attribute(np.ones((2, 3)), target=np.array([0.5, 1.0]))


def test_a_run_folders_model_is_explained_on_that_runs_dataset_and_split(tmp_path):
    run = nanoml.run("decision-tree", "wine", seed=3, params={"max_depth": 3},
                     out=str(tmp_path / "run"))
    assert run.model.default_dataset != "wine"
    result = nanoml.explain(str(tmp_path / "run" / "model.npz"), method="treeshap",
                            rows=[0], out=str(tmp_path / "x"))
    assert result.dataset == "wine"
    saved = json.loads((tmp_path / "x" / "explanation.json").read_text())
    assert saved["seed"] == 3


# -- text --------------------------------------------------------------------------------
def _fruit_corpus(n=60, seed=0):
    """Documents of filler words, each class with a word of its own in most of its rows."""
    rng = np.random.default_rng(seed)
    filler = np.array(["the", "a", "of", "and", "to", "in", "is", "it"])
    docs, y = [], []
    for i in range(n):
        label = i % 3
        words = list(rng.choice(filler, 6))
        if rng.random() < 0.8:
            words.insert(rng.integers(0, 6), ["apple", "banana", "cherry"][label])
        docs.append(" ".join(words))
        y.append(["a", "b", "c"][label])
    return np.array(docs, dtype=object), np.array(y)


@pytest.mark.parametrize("classifier, vectorizer", [("multinomial-nb", "counts"),
                                                    ("logistic-regression", "tfidf")])
def test_top_words_find_each_classs_word_and_add_up_to_its_scores(classifier, vectorizer):
    from nanoml_text.pipeline import TextPipeline

    from nanoml.explain.words import TopWords

    docs, y = _fruit_corpus()
    model = TextPipeline(vectorizer=vectorizer, classifier=classifier).fit(docs, y)
    explainer = TopWords(model)
    assert [words[0] for words, _ in explainer.top(3)] == ["apple", "banana", "cherry"]
    # each class's score of a document is its words' shares plus a constant of the class
    shares = np.column_stack([explainer.attribute(docs, np.full(len(docs), c)).sum(axis=1)
                              for c in range(3)])
    inner = model.classifier_
    if classifier == "multinomial-nb":
        predicted = explainer.classes[np.argmax(shares + inner.class_log_prior_, axis=1)]
        np.testing.assert_array_equal(predicted, model.predict(docs))
    else:
        scores = inner.decision_function(model.vectorizer_.transform(docs))
        np.testing.assert_allclose(shares + inner.intercept_, scores, atol=1e-9)


def test_explain_a_text_model_from_its_run_folder(tmp_path):
    from tests.test_text import WORDS, _four_categories

    folder = str(_four_categories(tmp_path / "f", WORDS))
    nanoml.run("multinomial-nb", "fortunes", data_dir=folder, out=str(tmp_path / "run"))
    model = str(tmp_path / "run" / "model.npz")
    result = CliRunner().invoke(cli, ["explain", model, "--data-dir", folder, "--out",
                                      str(tmp_path / "x"), "--json"])
    assert result.exit_code == 0, result.output
    top = json.loads(result.stdout)["methods"]["top-words"]["top_words"]
    assert {word for words in top.values() for word in list(words)[:4]} \
        == {word for words in WORDS for word in words}
    assert (tmp_path / "x" / "top_words.png").stat().st_size > 0
    bad = CliRunner().invoke(cli, ["explain", model, "--data-dir", folder, "--method",
                                   "treeshap"])
    assert bad.exit_code == 2 and "takes: top-words" in bad.output
    nanoml.run("multinomial-nb", "fortunes", data_dir=folder, out=str(tmp_path / "hashed"),
               params={"vectorizer": "hashing", "alternate_sign": False})
    hashed = CliRunner().invoke(cli, ["explain", str(tmp_path / "hashed" / "model.npz"),
                                      "--data-dir", folder])
    assert hashed.exit_code == 2
    assert "no explanation method applies to learner 'text-pipeline'" in hashed.output
