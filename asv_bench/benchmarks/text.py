"""Vectorize + fit on fortunes (4 categories), nanoml beside scikit-learn's identical
pipeline: counts + multinomial naive Bayes, TF-IDF + logistic regression.

Runs only where Debian's ``fortunes`` package is installed: a benchmark does not download.
"""

from .peers import _sklearn

PIPELINES = ["counts+multinomial-nb", "tfidf+logistic-regression"]


class TextPipelineFortunes:
    params = [PIPELINES]
    param_names = ["pipeline"]
    timeout = 600

    def setup(self, pipeline):
        from nanoml_classic.logistic import LogisticRegression
        from nanoml_classic.naive_bayes import MultinomialNB
        from nanoml_text.fortunes import available
        from nanoml_text.vectorizers import CountVectorizer, TfidfVectorizer

        from nanoml.data import load_dataset

        if not available():
            raise NotImplementedError("Debian's fortunes package is not installed")
        text, linear, bayes = (_sklearn(m) for m in
                               ("feature_extraction.text", "linear_model", "naive_bayes"))
        self.data = load_dataset("fortunes")
        self.docs = list(self.data.X_train[:, 0])
        self.ours, self.theirs = {
            "counts+multinomial-nb": ((CountVectorizer, MultinomialNB),
                                      (text.CountVectorizer, bayes.MultinomialNB)),
            "tfidf+logistic-regression": ((TfidfVectorizer, LogisticRegression),
                                          (text.TfidfVectorizer, linear.LogisticRegression)),
        }[pipeline]
        self._fit(self.ours)  # compile the kernels

    def _fit(self, pair):
        vectorizer, classifier = pair[0](), pair[1]()
        classifier.fit(vectorizer.fit_transform(self.docs), self.data.y_train)
        return vectorizer, classifier

    def _accuracy(self, pair):
        vectorizer, classifier = self._fit(pair)
        test = vectorizer.transform(list(self.data.X_test[:, 0]))
        return float((classifier.predict(test) == self.data.y_test).mean())

    def time_nanoml(self, pipeline):
        self._fit(self.ours)

    def time_sklearn(self, pipeline):
        self._fit(self.theirs)

    def track_accuracy_nanoml(self, pipeline):
        return self._accuracy(self.ours)

    def track_accuracy_sklearn(self, pipeline):
        return self._accuracy(self.theirs)

    track_accuracy_nanoml.unit = track_accuracy_sklearn.unit = "test accuracy"
