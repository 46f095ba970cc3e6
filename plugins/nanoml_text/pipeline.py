"""The text pipeline: a vectorizer and a classifier fitted, saved and loaded as one learner.

``nanoml run multinomial-nb --dataset fortunes`` runs this learner with the classifier
``multinomial-nb`` (the dataset names it as the steps its raw text needs);
``--set vectorizer=tfidf`` picks the vectorizer and any other hyperparameter goes to
the vectorizer or the classifier, whichever has it. Classifiers that take sparse rows
(``accepts_sparse``) get the vectorizer's CSR matrix; others get it densified.
"""

import numpy as np

from nanoml import Learner
from nanoml.errors import ModelFileError, ParameterError
from nanoml.validation import check_choice
from nanoml_text.vectorizers import CountVectorizer, HashingVectorizer, TfidfVectorizer

VECTORIZERS = {"counts": CountVectorizer, "tfidf": TfidfVectorizer, "hashing": HashingVectorizer}
_PARTS = ("vectorizer", "classifier")


def _classifier_class(name):
    from nanoml.plugins import get_learner

    cls = get_learner(name)
    if cls.task != "classification":
        raise ParameterError(f"classifier must be a classification learner; '{name}' does "
                             f"{cls.task}")
    return cls


class TextPipeline(Learner):
    """Vectorizer -> classifier over documents (one string each), as one model file."""

    name = "text-pipeline"
    task = "classification"
    default_dataset = "fortunes"
    description = "text classification: a vectorizer (counts, tfidf, hashing) then a classifier"
    search_space = {"vectorizer": list(VECTORIZERS)}

    def __init__(self, vectorizer="counts", classifier="multinomial-nb", vectorizer_params=None,
                 classifier_params=None):
        self.vectorizer = vectorizer
        self.classifier = classifier
        self.vectorizer_params = vectorizer_params
        self.classifier_params = classifier_params

    @classmethod
    def settable_defaults(cls, classifier):
        """Hyperparameter -> default of every setting a pipeline around the `classifier`
        class takes: its own, any vectorizer's and the classifier's."""
        steps = [v.param_defaults() for v in VECTORIZERS.values()]
        return {**cls.param_defaults(), **{k: v for s in steps for k, v in s.items()},
                **classifier.param_defaults(), "classifier": classifier.name}

    def _parts(self):
        """(vectorizer class, classifier class) named by the hyperparameters."""
        check_choice("vectorizer", self.vectorizer, tuple(VECTORIZERS))
        return VECTORIZERS[self.vectorizer], _classifier_class(self.classifier)

    def set_params(self, **params):
        """Set the pipeline's own hyperparameters; hand any other to the vectorizer or the
        classifier that has it (the vectorizer first)."""
        own = self.param_defaults()
        super().set_params(**{k: v for k, v in params.items() if k in own})
        rest = {k: v for k, v in params.items() if k not in own}
        if not rest:
            return self
        steps = dict(zip(_PARTS, self._parts(), strict=True))
        for key, value in rest.items():
            part = next((p for p in _PARTS if key in steps[p].param_defaults()), None)
            if part is None:
                valid = [*own, *steps["vectorizer"].param_defaults(),
                         *steps["classifier"].param_defaults()]
                raise ParameterError(
                    f"neither the pipeline, its {self.vectorizer} vectorizer nor its "
                    f"{self.classifier} classifier has a hyperparameter '{key}'; valid ones: "
                    f"{', '.join(valid)}")
            held = f"{part}_params"
            setattr(self, held, {**(getattr(self, held) or {}), key: value})
        return self

    def check_params(self):
        for part in self._make():
            part.check_params()

    def _make(self):
        vectorizer, classifier = self._parts()
        return (vectorizer().set_params(**(self.vectorizer_params or {})),
                classifier().set_params(**(self.classifier_params or {})))

    def fit(self, X, y):
        vectorizer, classifier = self._make()
        features = vectorizer.fit_transform(X)
        classifier.fit(self._rows_for(classifier, features), y)
        self.vectorizer_, self.classifier_ = vectorizer, classifier
        return self

    @staticmethod
    def _rows_for(classifier, features):
        return features if getattr(classifier, "accepts_sparse", False) else features.toarray()

    def _features(self, X):
        self.check_fitted()
        return self._rows_for(self.classifier_, self.vectorizer_.transform(X))

    def predict(self, X):
        return self.classifier_.predict(self._features(X))

    def predict_proba(self, X):
        return self.classifier_.predict_proba(self._features(X))

    @property
    def classes_(self):
        return self.classifier_.classes_

    # -- one model file: each part's state under its own prefix --------------------------
    def _get_state(self):
        plain, arrays = {}, {}
        for part in _PARTS:
            part_plain, part_arrays = getattr(self, part + "_")._get_state()
            plain[part] = part_plain
            arrays.update({f"{part}.{k}": v for k, v in part_arrays.items()})
        return plain, arrays

    def check_state(self, plain, arrays):
        """Each part's state, checked by that part."""
        stray = [k for k in [*plain, *arrays] if k.split(".")[0] not in _PARTS]
        if stray:
            raise ModelFileError(f"'{stray[0]}' is no part of a text pipeline (those are "
                                 f"{' and '.join(_PARTS)})")
        checked_plain, checked_arrays = {}, {}
        for part, learner in zip(_PARTS, self._make(), strict=True):
            prefix = part + "."
            if not isinstance(plain.get(part), dict):
                raise ModelFileError(f"the state of the pipeline's {part} is missing")
            mine = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
            checked_plain[part], mine = learner.check_state(plain[part], mine)
            checked_arrays.update({prefix + k: v for k, v in mine.items()})
        return checked_plain, checked_arrays

    def _set_state(self, plain, arrays):
        self.vectorizer_, self.classifier_ = self._make()
        for part in _PARTS:
            prefix = part + "."
            mine = {k[len(prefix):]: np.asarray(v) for k, v in arrays.items()
                    if k.startswith(prefix)}
            getattr(self, part + "_")._set_state(plain[part], mine)
