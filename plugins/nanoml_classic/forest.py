"""Random forests: bagged CART trees that each split on a random subset of the features."""

from nanoml.validation import check_number
from nanoml_classic.tree import _TreeClassifier, _TreeRegressor


class _Forest:
    """What a forest adds to a tree: many trees, each grown on a bootstrap sample."""

    def _grow_settings(self):
        return self.n_estimators, True

    def _check_params(self):
        check_number("n_estimators", self.n_estimators, low=1, integer=True)
        super()._check_params()


class RandomForestClassifier(_Forest, _TreeClassifier):
    """Breiman's random forest for classification: averages the trees' class shares.

    Each tree is grown on a bootstrap sample and draws `max_features` candidate features
    at every split ("sqrt" of the feature count by default), as scikit-learn's
    RandomForestClassifier does. Trees grow in parallel, one per thread.
    """

    name = "random-forest"
    default_dataset = "digits"
    description = "bagged CART trees with random feature subsets, grown in parallel"
    search_space = {
        "n_estimators": [50, 100, 200],
        "max_features": ["sqrt", "log2", None],
        "min_samples_leaf": [1, 2, 5],
    }

    def __init__(self, n_estimators=100, criterion="gini", max_depth=None,
                 min_samples_split=2, min_samples_leaf=1, max_features="sqrt", seed=0):
        self.n_estimators = n_estimators
        self.criterion = criterion
        self.max_depth = max_depth
        self.min_samples_split = min_samples_split
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.seed = seed


class RandomForestRegressor(_Forest, _TreeRegressor):
    """Random forest for regression: averages the trees' leaf means.

    Splits consider every feature by default (max_features=1.0), scikit-learn's default
    for regression, so the randomness comes from the bootstrap samples.
    """

    name = "random-forest-regressor"
    default_dataset = "quadratic"
    description = "bagged CART regression trees, grown in parallel"
    search_space = {
        "n_estimators": [50, 100, 200],
        "max_features": [1.0, "sqrt", 0.5],
        "min_samples_leaf": [1, 2, 5],
    }

    def __init__(self, n_estimators=100, max_depth=None, min_samples_split=2,
                 min_samples_leaf=1, max_features=1.0, seed=0):
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.min_samples_split = min_samples_split
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.seed = seed
