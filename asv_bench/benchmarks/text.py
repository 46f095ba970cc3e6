"""Vectorize + fit on fortunes (4 categories), nanoml beside scikit-learn's identical
pipeline: counts + multinomial naive Bayes, TF-IDF + logistic regression; and one
training step of char-rnn's language model beside PyTorch's identical LSTM model.

Runs only where Debian's ``fortunes`` package is installed: a benchmark does not download.
"""

import numpy as np

from .peers import _sklearn, _torch

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


class CharRNNTrainingStep:
    """Forward, backward and Adam step on a batch of 32 windows of 100 characters: embedding
    (105 ids, 32 wide) -> LSTM (256 hidden) -> Linear over the ids, cross-entropy over every
    step; char-rnn's default model, on random ids (the step's cost does not depend on them)."""

    IDS, EMBEDDING, HIDDEN, BATCH, STEPS = 105, 32, 256, 32, 100
    number = 1
    repeat = 5

    def setup(self):
        from nanoml_text.char_rnn import CharRNN

        from nanoml.optim import Adam
        from nanoml.tensor import Tensor

        torch = _torch()
        rng = np.random.default_rng(0)
        ids = rng.integers(0, self.IDS, (self.BATCH, self.STEPS + 1))
        learner = CharRNN(embedding_dim=self.EMBEDDING, hidden_size=self.HIDDEN)
        learner.alphabet_ = np.arange(2, self.IDS)  # n_outputs() = IDS
        learner.module_ = learner.build_network(rng)
        self.learner, self.optimizer = learner, Adam(learner.module_.parameters(), lr=4e-3)
        self.x, self.y = Tensor(ids[:, :-1].astype(np.float32)), ids[:, 1:]

        class CharLSTM(torch.nn.Module):
            def __init__(self, ids, embedding, hidden):
                super().__init__()
                self.embedding = torch.nn.Embedding(ids, embedding)
                self.lstm = torch.nn.LSTM(embedding, hidden, batch_first=True)
                self.head = torch.nn.Linear(hidden, ids)

            def forward(self, x):
                outputs, _ = self.lstm(self.embedding(x))
                return self.head(outputs.reshape(-1, outputs.shape[2]))

        self.torch = torch
        self.model = CharLSTM(self.IDS, self.EMBEDDING, self.HIDDEN)
        self.torch_optimizer = torch.optim.Adam(self.model.parameters(), lr=4e-3)
        self.tx = torch.from_numpy(ids[:, :-1])
        self.ty = torch.from_numpy(ids[:, 1:].reshape(-1))
        self.time_nanoml()  # compile (or load) the kernels untimed

    def time_nanoml(self):
        loss, _ = self.learner.batch_loss(self.x, self.y)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()

    def time_torch(self):
        loss = self.torch.nn.functional.cross_entropy(self.model(self.tx), self.ty)
        self.torch_optimizer.zero_grad()
        loss.backward()
        self.torch_optimizer.step()
