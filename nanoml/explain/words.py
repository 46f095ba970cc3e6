"""Which words push a text classifier towards each class: `TopWords`, for a pipeline of a
vocabulary vectorizer (counts or TF-IDF) and multinomial naive Bayes or a linear model.

Both score class c of a document as a sum over its words of feature value × weight[c, w]
plus a constant of the class: a linear model's weights are its coefficients; naive
Bayes' are log p(w | c), taken here relative to their log-mean over the classes (how
much likelier the word is under c than on average), which changes every class's score
of a document by the same amount, so its prediction not at all.
"""

import numpy as np
from scipy.special import logsumexp

from nanoml.errors import ParameterError
from nanoml.explain.treeshap import is_linear_model


def word_weights(model):
    """(words, classes x words weights) of a text model whose class scores add up over
    its words, or None (no vocabulary, as with feature hashing, or another classifier)."""
    vectorizer = getattr(model, "vectorizer_", None)
    classifier = getattr(model, "classifier_", None)
    if vectorizer is None or not hasattr(vectorizer, "get_feature_names_out"):
        return None
    words = vectorizer.get_feature_names_out()
    if hasattr(classifier, "feature_log_prob_"):
        log_p = np.asarray(classifier.feature_log_prob_, np.float64)
        weights = log_p - (logsumexp(log_p, axis=0) - np.log(len(log_p)))
    elif is_linear_model(classifier):
        coef = np.atleast_2d(np.asarray(classifier.coef_, np.float64))
        # two classes: one row of coefficients scores the second class against the first
        weights = np.vstack([-coef, coef]) if len(coef) == 1 else coef
    else:
        return None
    return words, weights


class TopWords:
    """The words of largest weight for each class, and each document's words' share of
    its class scores (feature value × weight)."""

    def __init__(self, model):
        found = word_weights(model)
        if found is None:
            raise ParameterError(
                f"learner '{model.name}' has no word weights: top-words needs a text "
                "pipeline with a counts or tfidf vectorizer and multinomial naive Bayes or "
                "a linear classifier", argument="method")
        self.model = model
        self.words, self.weights = found
        self.classes = np.asarray(model.classes_)

    def top(self, k):
        """Per class (in `classes` order), the `k` words of largest weight, largest first:
        a list of (words, weights) pairs."""
        order = np.argsort(-self.weights, axis=1, kind="stable")[:, :k]
        return [(self.words[o], w[o]) for o, w in zip(order, self.weights, strict=True)]

    def attribute(self, documents, target):
        """(documents, words) contributions of each document's words to the score of its
        `target` class (column numbers of `classes`)."""
        features = self.model.vectorizer_.transform(documents)
        return features.multiply(self.weights[np.asarray(target)]).toarray()
