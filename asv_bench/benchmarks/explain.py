"""Explanations beside their peers: exact TreeSHAP against shap's TreeExplainer, and
permutation importance against scikit-learn's, on the same seeded data."""

import numpy as np

from .peers import _sklearn


def _shap():
    try:
        import shap
    except ImportError:
        raise NotImplementedError("shap is not installed") from None
    return shap


def _regression(n, d=10, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    return X, X[:, 0] * 2 + np.sin(3 * X[:, 1]) + X[:, 2] * X[:, 3] + rng.standard_normal(n)


class TreeSHAPForest:
    """SHAP values of `rows` rows under a 100-tree forest of depth 8, grown on 2,000 rows;
    each library explains its own forest, grown with the same settings on the same data."""

    params = [[100, 1_000]]
    param_names = ["rows"]

    def setup(self, rows):
        from nanoml_classic.forest import RandomForestRegressor

        from nanoml.explain.treeshap import TreeSHAP

        shap = _shap()
        X, y = _regression(2_000)
        self.X = X[:rows]
        forest = RandomForestRegressor(n_estimators=100, max_depth=8).fit(X, y)
        theirs = _sklearn("ensemble").RandomForestRegressor(
            n_estimators=100, max_depth=8, random_state=0, n_jobs=2).fit(X, y)
        self.ours = TreeSHAP(forest, X)
        self.theirs = shap.TreeExplainer(theirs)
        self.ours.attribute(self.X)  # compile (or load) the kernels untimed

    def time_nanoml(self, rows):
        self.ours.attribute(self.X)

    def time_shap(self, rows):
        self.theirs.shap_values(self.X, check_additivity=False)


class PermutationImportance:
    """Permutation importance of a 100-tree forest's 10 features on 2,000 rows, 5 repeats;
    both score the same nanoml model's predictions."""

    params = [[2_000]]
    param_names = ["rows"]

    def setup(self, rows):
        from nanoml_classic.forest import RandomForestRegressor

        from nanoml.explain.permutation import METRICS, permutation_importance

        self.inspection = _sklearn("inspection")
        X, y = _regression(rows + 2_000)
        model = RandomForestRegressor(n_estimators=100, max_depth=8).fit(X[rows:], y[rows:])
        self.X, self.y = X[:rows], y[:rows]
        self.r2 = METRICS["r2"]

        class Fitted:  # scikit-learn's view of the same model
            def fit(self, X, y):
                return self

            def predict(self, X):
                return model.predict(X)

        self.fitted = Fitted()
        self.ours = lambda: permutation_importance(model.predict, self.X, self.y,
                                                   metric=self.r2, repeats=5)
        model.predict(self.X[:10])  # compile (or load) the kernels untimed

    def time_nanoml(self, rows):
        self.ours()

    def time_sklearn(self, rows):
        self.inspection.permutation_importance(
            self.fitted, self.X, self.y, n_repeats=5, random_state=0,
            scoring=lambda est, X, y: self.r2(y, est.predict(X)))
