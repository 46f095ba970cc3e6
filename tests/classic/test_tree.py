"""Decision trees: the same trees as scikit-learn (up to ties), the kernels, bad input."""

import numpy as np
import pytest
from nanoml_classic import tree as tree_module
from nanoml_classic.forest import RandomForestClassifier
from nanoml_classic.tree import DecisionTreeClassifier, DecisionTreeRegressor
from nanoml_classic.tree_kernels import LEAF, rank_columns, sum_tree_values

from nanoml import Learner
from nanoml.errors import InputError, ParameterError
from nanoml.testing import check_learner


def _classes(n=300, d=5, seed=0, ties=False):
    """Three classes from an interaction, a threshold and noise: trees need many splits."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = (X[:, 0] * X[:, 1] + 0.5 * rng.standard_normal(n) > 0).astype(np.int64)
    return _tied(X) if ties else X, y + (X[:, 2] > 0.5)


def _targets(n=300, d=5, seed=0, ties=False):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    return _tied(X) if ties else X, X[:, 0] * X[:, 1] + 0.3 * rng.standard_normal(n)


def _tied(X):
    """Like pixels: few distinct values, half of them 0, and a constant column."""
    X = np.maximum(np.round(X, 1), 0.0)
    X[:, -1] = 0.5
    return X


@pytest.fixture(params=["sorted per node", "carried presorted"])
def route(request, monkeypatch):
    """Each test of this fixture runs with every feature on each of the two routes."""
    carry_all = request.param == "carried presorted"
    monkeypatch.setattr(tree_module, "CARRY_DISTINCT", 0 if carry_all else 2**62)
    return request.param


@pytest.mark.parametrize("cls", [DecisionTreeClassifier, DecisionTreeRegressor])
def test_contract(cls):
    check_learner(cls)


def _split_cost(y, goes_left, criterion):
    """Weighted impurity of the two children of a split."""
    cost = 0.0
    for side in (y[goes_left], y[~goes_left]):
        if criterion == "squared_error":
            cost += ((side - side.mean()) ** 2).sum()
            continue
        share = np.bincount(side) / len(side)
        if criterion == "gini":
            cost += len(side) * (1.0 - share @ share)
        else:
            share = share[share > 0]
            cost -= len(side) * (share @ np.log(share))
    return cost


def _assert_same_tree(ours, theirs, X, y, criterion):
    """Walk both trees together; where they split differently, the splits must tie.

    scikit-learn visits features in a random order, so of two equally good splits it may
    take either; below such a node the trees differ legitimately. Everywhere else the
    leaves, features, partitions and values must agree. Returns the number of ties.
    """
    t = theirs.tree_
    ties = 0
    stack = [(0, 0, np.ones(len(X), dtype=bool))]
    while stack:
        a, b, members = stack.pop()
        assert (ours.feature_[a] == LEAF) == (t.children_left[b] == -1)
        if ours.feature_[a] == LEAF:
            np.testing.assert_allclose(ours.value_[a], t.value[b].ravel(), rtol=1e-12)
            continue
        left_a = X[:, ours.feature_[a]] <= ours.threshold_[a]
        left_b = X[:, t.feature[b]] <= t.threshold[b]
        if ours.feature_[a] != t.feature[b] or not np.array_equal(
            left_a & members, left_b & members
        ):
            np.testing.assert_allclose(
                _split_cost(y[members], left_a[members], criterion),
                _split_cost(y[members], left_b[members], criterion),
                rtol=1e-10,
            )
            ties += 1
            continue
        assert abs(ours.threshold_[a] - t.threshold[b]) < 1e-6  # theirs is float32-based
        stack.append((ours.left_[a], t.children_left[b], members & left_a))
        stack.append((ours.right_[a], t.children_right[b], members & ~left_a))
    return ties


SETTINGS = [{}, {"max_depth": 3}, {"min_samples_leaf": 5}, {"min_samples_split": 12}]


@pytest.mark.parametrize("settings", SETTINGS)
@pytest.mark.parametrize("criterion", ["gini", "entropy"])
@pytest.mark.parametrize("ties", [False, True])
def test_classifier_grows_sklearns_tree(criterion, settings, ties, route):
    tree = pytest.importorskip("sklearn.tree")
    for seed in range(3):
        X, y = _classes(seed=seed, ties=ties)
        ours = DecisionTreeClassifier(criterion=criterion, **settings).fit(X, y)
        theirs = tree.DecisionTreeClassifier(
            criterion=criterion, random_state=seed, **settings
        ).fit(X, y)
        _assert_same_tree(ours, theirs, X, y, criterion)


@pytest.mark.parametrize("settings", SETTINGS)
@pytest.mark.parametrize("ties", [False, True])
def test_regressor_grows_sklearns_tree(settings, ties, route):
    tree = pytest.importorskip("sklearn.tree")
    for seed in range(3):
        X, y = _targets(seed=seed, ties=ties)
        ours = DecisionTreeRegressor(**settings).fit(X, y)
        theirs = tree.DecisionTreeRegressor(random_state=seed, **settings).fit(X, y)
        if _assert_same_tree(ours, theirs, X, y, "squared_error") == 0:
            assert len(ours.feature_) == theirs.tree_.node_count


def _arrays(model):
    return [getattr(model, name) for name in ("feature_", "threshold_", "left_", "right_",
                                              "value_", "roots_")]


@pytest.mark.parametrize("params", [
    {"criterion": "gini"}, {"criterion": "entropy", "min_samples_leaf": 3},
])
def test_both_routes_grow_the_same_forest(params, monkeypatch):
    """Without ties both routes see every node's samples in the same order: same bits.

    (Regression trees may sum a node's targets in another order on each route, so their
    equal splits can tie-break apart; the comparisons with scikit-learn cover them.)
    """
    X, y = _classes(n=400, d=6)
    grown = []
    for carry in (0, 2**62):
        monkeypatch.setattr(tree_module, "CARRY_DISTINCT", carry)
        grown.append(_arrays(RandomForestClassifier(n_estimators=4, seed=7, **params).fit(X, y)))
    for ours, theirs in zip(*grown, strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_ranks_take_the_narrowest_type_and_every_type_grows_the_same_forest(monkeypatch):
    assert [tree_module._rank_dtype(k) for k in (1, 256, 257, 65536, 65537)] == [
        np.uint8, np.uint8, np.uint16, np.uint16, np.int32]
    X, y = _classes(n=400, d=6, ties=True)  # pixel-like: below 256 distinct values a feature
    assert tree_module.rank_features(X, 2, None, 1)[0].dtype == np.uint8
    grown = []
    for dtype in (np.uint8, np.uint16, np.int32):
        monkeypatch.setattr(tree_module, "_rank_dtype", lambda n, dtype=dtype: dtype)
        grown.append(_arrays(RandomForestClassifier(n_estimators=4, seed=7).fit(X, y)))
    for narrow, wide in ((grown[0], grown[2]), (grown[1], grown[2])):
        for ours, theirs in zip(narrow, wide, strict=True):
            np.testing.assert_array_equal(ours, theirs)


def test_rank_columns_matches_numpy():
    X, _ = _classes(n=500, d=4, ties=True)
    X[:7, 0] = -0.0  # equal to 0.0
    Xt = np.ascontiguousarray(X.T)
    ranks = np.empty(Xt.shape, np.int32)
    n_distinct = np.empty(4, np.int64)
    rank_columns(Xt, np.argsort(Xt, axis=1), ranks, n_distinct)
    for f in range(4):
        values, inverse = np.unique(Xt[f], return_inverse=True)
        np.testing.assert_array_equal(ranks[f], inverse)
        assert n_distinct[f] == len(values)


def test_same_predictions_as_sklearn_where_nothing_ties():
    """Large leaves leave no ties: every prediction agrees, to the last digit."""
    tree = pytest.importorskip("sklearn.tree")
    X, y = _targets(n=600, seed=4)
    queries = np.random.default_rng(5).standard_normal((500, X.shape[1]))
    ours = DecisionTreeRegressor(min_samples_leaf=15).fit(X, y)
    theirs = tree.DecisionTreeRegressor(min_samples_leaf=15, random_state=0).fit(X, y)
    assert _assert_same_tree(ours, theirs, X, y, "squared_error") == 0
    np.testing.assert_allclose(ours.predict(queries), theirs.predict(queries), rtol=1e-12)
    X, y = _classes(n=600, seed=4)
    for criterion in ("gini", "entropy"):
        ours = DecisionTreeClassifier(criterion=criterion, max_depth=3).fit(X, y)
        theirs = tree.DecisionTreeClassifier(
            criterion=criterion, max_depth=3, random_state=0
        ).fit(X, y)
        np.testing.assert_allclose(
            ours.predict_proba(queries), theirs.predict_proba(queries), rtol=1e-12
        )


def _walk(X, model):
    """Plain-Python reference for sum_tree_values."""
    out = np.zeros((X.shape[0], model.value_.shape[1]))
    for i, x in enumerate(X):
        for root in model.roots_:
            node = root
            while model.feature_[node] != LEAF:
                go_left = x[model.feature_[node]] <= model.threshold_[node]
                node = model.left_[node] if go_left else model.right_[node]
            out[i] += model.value_[node]
    return out


def test_sum_tree_values_matches_a_serial_walk():
    X, y = _classes(n=200)
    forest = RandomForestClassifier(n_estimators=7, max_depth=6).fit(X, y)
    queries = np.random.default_rng(1).standard_normal((150, X.shape[1]))
    out = np.zeros((150, forest.value_.shape[1]))
    sum_tree_values(
        queries, forest.feature_, forest.threshold_, forest.left_, forest.right_,
        forest.value_, forest.roots_, out,
    )
    np.testing.assert_allclose(out, _walk(queries, forest), rtol=1e-14)


def test_stopping_rules_hold():
    X, y = _targets(n=400)
    model = DecisionTreeRegressor(max_depth=4, min_samples_leaf=7).fit(X, y)
    depth = np.zeros(len(model.feature_), dtype=np.int64)
    for node in range(len(model.feature_)):  # parents come before their children
        if model.feature_[node] != LEAF:
            depth[model.left_[node]] = depth[model.right_[node]] = depth[node] + 1
    reached = np.zeros(len(model.feature_), dtype=np.int64)
    for x in X:
        node = 0
        while model.feature_[node] != LEAF:
            below = x[model.feature_[node]] <= model.threshold_[node]
            node = model.left_[node] if below else model.right_[node]
        reached[node] += 1
    is_leaf = model.feature_ == LEAF
    assert depth.max() == 4
    assert reached[is_leaf].min() >= 7
    assert reached[~is_leaf].sum() == 0


def test_max_features_draws_per_seed_and_skips_constant_features():
    X, y = _classes(n=300, d=8)
    a = DecisionTreeClassifier(max_features=2, seed=1).fit(X, y)
    b = DecisionTreeClassifier(max_features=2, seed=1).fit(X, y)
    c = DecisionTreeClassifier(max_features=2, seed=2).fit(X, y)
    np.testing.assert_array_equal(a.feature_, b.feature_)
    assert not np.array_equal(a.feature_, c.feature_)
    # with one informative feature among constants, a draw keeps going until it finds it
    lone = np.zeros((300, 6))
    lone[:, 4] = X[:, 0]
    model = DecisionTreeClassifier(max_features=1, seed=0).fit(lone, X[:, 0] > 0.3)
    assert model.score(lone, X[:, 0] > 0.3) == 1.0
    assert set(model.feature_[model.feature_ != LEAF]) == {4}


def test_string_labels_round_trip(tmp_path):
    X, y = _classes()
    names = np.array(["low", "mid", "high"])[y]
    model = DecisionTreeClassifier(max_depth=4).fit(X, list(names))
    assert set(model.predict(X)) <= set(names)
    path = tmp_path / "tree.npz"
    model.save(path)
    loaded = Learner.load(path)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X))


def test_bad_input_raises():
    X, y = _classes(n=40)
    with pytest.raises(InputError, match="class"):
        DecisionTreeClassifier().fit(X, np.zeros(40))
    with pytest.raises(InputError, match="empty"):
        DecisionTreeClassifier().fit(np.empty((0, 5)), np.empty(0))
    with pytest.raises(InputError, match="NaN"):
        DecisionTreeRegressor().fit(X, np.where(y == 1, np.nan, 1.0))
    with pytest.raises(InputError, match="fitted with 5"):
        DecisionTreeClassifier().fit(X, y).predict(X[:, :3])
    with pytest.raises(InputError, match="samples"):
        DecisionTreeRegressor().fit(X, y[:-2])


@pytest.mark.parametrize(
    "params, words",
    [
        ({"criterion": "mse"}, "criterion"),
        ({"max_depth": 0}, "max_depth"),
        ({"min_samples_split": 1}, "min_samples_split"),
        ({"min_samples_leaf": 0}, "min_samples_leaf"),
        ({"max_features": "all"}, "max_features"),
        ({"max_features": 1.5}, "max_features"),
        ({"max_features": 9}, "max_features=9 exceeds"),
    ],
)
def test_bad_parameters_raise(params, words):
    X, y = _classes(n=40)
    with pytest.raises(ParameterError, match=words):
        DecisionTreeClassifier(**params).fit(X, y)
