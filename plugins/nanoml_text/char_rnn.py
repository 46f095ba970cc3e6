"""`char-rnn`: a character-level language model, characters -> embedding -> LSTM -> linear.

The training documents are read as one stream, each entry preceded by a separator
(id 0, which also ends the stream); characters seen fewer than `min_count` times share
the id 1. The stream is cut into windows of `seq_length` + 1 ids, and the network learns
to predict each window's next character from the ones before (softmax cross-entropy).
Held-out text is scored as bits per character: the mean of -log2 p(next) over every
character of the held-out stream, separators included (they mark where an entry ends),
reading the stream in order with the LSTM's state carried from window to window.
"""

import math
import os

import numpy as np

from nanoml import nn
from nanoml.deep import DeepLearner
from nanoml.errors import InputError
from nanoml.losses import cross_entropy
from nanoml.modelfile import atomic_write
from nanoml.optim import CosineAnnealingLR
from nanoml.state_schema import Array, Int, Require
from nanoml.tensor import Tensor, no_grad
from nanoml.validation import check_choice, check_number
from nanoml_text.text_rnn import IdSequences
from nanoml_text.vectorizers import documents

SEPARATOR, RARE = 0, 1  # ids before the alphabet's characters
# Held-out text is scored as up to this many streams read side by side, each of at least
# seq_length characters.
EVAL_STREAMS = 64
ANNEALING = ("cosine", "none")


def bits_per_character(logits, targets):
    """Mean of -log2 softmax(logits)[target] over rows: (n, V) logits, n target ids."""
    logits = np.asarray(logits, np.float64)
    top = logits.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(logits - top).sum(axis=1)) + top[:, 0]
    picked = logits[np.arange(targets.size), targets]
    return float(np.mean(log_norm - picked) / math.log(2))


class _CharLSTM(nn.Module):
    """Embedding -> LSTM -> Linear over the characters; forward(x, hx) -> (logits, state)
    with logits of shape (batch * steps, characters)."""

    def __init__(self, n_ids, embedding_dim, hidden_size, num_layers, rng):
        super().__init__()
        self.embedding = nn.Embedding(n_ids, embedding_dim, rng=rng)
        self.recurrent = nn.LSTM(embedding_dim, hidden_size, num_layers=num_layers,
                                 batch_first=True, rng=rng)
        self.head = nn.Linear(hidden_size, n_ids, rng=rng)

    def forward(self, x, hx=None):
        ids = np.asarray(x.cpu().data).astype(np.int64)
        outputs, state = self.recurrent(self.embedding(ids), hx)
        return self.head(outputs.reshape(-1, outputs.shape[2])), state


class CharRNN(IdSequences, DeepLearner):
    """Character-level LSTM language model over documents; evaluate gives held-out bits
    per character and a run writes samples.txt, text drawn with temperature sampling."""

    name = "char-rnn"
    task = "generation"
    default_dataset = "fortunes-all"
    description = "character-level LSTM language model: bits per character, sampled text"
    search_space = {"hidden_size": [128, 256, 512], "seq_length": [50, 100], "lr": [2e-3, 5e-3]}
    reads_text = True
    state_schema = DeepLearner.state_schema.extend(
        checks=[Require(lambda v: v["alphabet_"].size > 0, "alphabet_", "is empty")],
        **IdSequences.unscaled,
        n_features_in_=Int(low="seq_length", high="seq_length"),  # ids a window
        alphabet_=Array(np.int64, shape=("n_alphabet",), low=1, high=0x10FFFF),  # code points
    )

    def __init__(self, embedding_dim=32, hidden_size=256, num_layers=1, seq_length=100,
                 min_count=5, epochs=14, batch_size=32, lr=4e-3, annealing="cosine", seed=0,
                 validation_fraction=0.02, patience=None, device="cpu"):
        self.store_params(locals())

    def check_params(self):
        super().check_params()
        for name in ("embedding_dim", "hidden_size", "num_layers", "seq_length", "min_count"):
            check_number(name, getattr(self, name), low=1, integer=True)
        check_choice("annealing", self.annealing, ANNEALING)

    def lr_schedule(self, optimizer, epochs):
        """With ``annealing="cosine"``, the rate falls from `lr` towards 0 over the epochs
        (the held-out loss levels off under a constant rate while it still falls under a
        shrinking one); "none" keeps it constant."""
        return CosineAnnealingLR(optimizer, epochs) if self.annealing == "cosine" else None

    # -- text as ids ---------------------------------------------------------------------
    def _stream(self, X):
        """X's documents as one int64 id stream, each preceded by SEPARATOR and the whole
        ended by one."""
        docs = documents(X)
        text = "".join("\x00" + doc for doc in docs) + "\x00"
        codes = np.frombuffer(text.encode("utf-32-le"), dtype="<u4").astype(np.int64)
        if len(text) == len(docs) + 1:
            raise InputError("X holds no characters: every document is empty")
        return codes

    def _ids(self, codes):
        where = np.searchsorted(self.alphabet_, codes)
        where[where == self.alphabet_.size] = 0
        known = self.alphabet_[where] == codes
        ids = np.where(known, where + 2, RARE)
        ids[codes == 0] = SEPARATOR
        return ids

    def fit(self, X, y=None, **kwargs):
        """Learn the alphabet from X's documents, then train on windows of their stream."""
        self.check_params()
        codes = self._stream(X)
        found, counts = np.unique(codes[codes != 0], return_counts=True)
        self.alphabet_ = found[counts >= self.min_count]
        ids = self._ids(codes)
        n = (ids.size - 1) // self.seq_length
        if n == 0:
            self._forget()
            raise InputError(f"X holds {ids.size - 1} characters, fewer than one window of "
                             f"seq_length={self.seq_length}", argument="X")
        inputs = ids[:n * self.seq_length].reshape(n, self.seq_length)
        targets = ids[1:n * self.seq_length + 1].reshape(n, self.seq_length)
        try:
            return super().fit(inputs.astype(np.float32), targets, **kwargs)
        except BaseException:
            self._forget()
            raise

    def _fit_targets(self, y, n):
        return {}, np.asarray(y, np.int64)

    def n_outputs(self):
        return self.alphabet_.size + 2

    def build_network(self, rng):
        return _CharLSTM(self.n_outputs(), self.embedding_dim, self.hidden_size,
                         self.num_layers, rng)

    def batch_loss(self, x, y):
        logits, _ = self.module_(x)
        return cross_entropy(logits, np.asarray(y).reshape(-1)), None

    # -- held-out bits per character -----------------------------------------------------
    def bits_per_character(self, X):
        """Bits per character of X's documents as one stream (see the module docstring)."""
        self.check_fitted()
        ids = self._ids(self._stream(X))
        streams = max(1, min(EVAL_STREAMS, (ids.size - 1) // self.seq_length))
        per_stream = (ids.size - 1) // streams
        inputs = ids[:streams * per_stream].reshape(streams, per_stream)
        targets = ids[1:streams * per_stream + 1].reshape(streams, per_stream)
        # the tail that does not fill a row of streams is scored as one more stream
        pieces = [(inputs, targets)]
        if streams * per_stream < ids.size - 1:
            rest = streams * per_stream
            pieces.append((ids[rest:-1][None], ids[rest + 1:][None]))
        self.module_.eval()
        total, count = 0.0, 0
        with no_grad():
            for inp, tgt in pieces:
                state = None
                for start in range(0, inp.shape[1], self.seq_length):
                    chunk = slice(start, start + self.seq_length)
                    logits, state = self.module_(Tensor(inp[:, chunk].astype(np.float32)),
                                                 state)
                    n = tgt[:, chunk].size
                    total += bits_per_character(logits.data, tgt[:, chunk].reshape(-1)) * n
                    count += n
        return total / count

    def evaluate(self, X, y=None):
        return {"bits_per_character": self.bits_per_character(X)}

    def score(self, X, y=None):
        """Negative bits per character: higher is better."""
        return -self.bits_per_character(X)

    # -- sampling ------------------------------------------------------------------------
    def sample(self, n_samples=5, length=300, temperature=0.8, seed=None):
        """`n_samples` new entries of at most `length` characters, each drawn character by
        character from softmax(logits / temperature), starting after a separator and
        stopping at the next."""
        self.check_fitted()
        check_number("n_samples", n_samples, low=1, integer=True)
        check_number("length", length, low=1, integer=True)
        check_number("temperature", temperature, low=0, low_open=True)
        rng = np.random.default_rng(seed)
        chars = np.array(["", "\ufffd", *map(chr, self.alphabet_.tolist())])
        current = np.full((n_samples, 1), SEPARATOR, np.float32)
        drawn = np.full((n_samples, length), SEPARATOR, np.int64)
        state = None
        self.module_.eval()
        with no_grad():
            for step in range(length):
                logits, state = self.module_(Tensor(current), state)
                scaled = logits.data.astype(np.float64) / temperature
                probs = np.exp(scaled - scaled.max(axis=1, keepdims=True))
                cumulative = np.cumsum(probs, axis=1)
                u = rng.random(n_samples)[:, None] * cumulative[:, -1:]
                drawn[:, step] = np.minimum((cumulative < u).sum(axis=1), probs.shape[1] - 1)
                current = drawn[:, step:step + 1].astype(np.float32)
                if (drawn[:, :step + 1] == SEPARATOR).any(axis=1).all():
                    break  # every entry has ended
        texts = []
        for row in drawn:
            ends = np.flatnonzero(row == SEPARATOR)
            texts.append("".join(chars[row[:ends[0] if ends.size else length]]))
        return texts

    def write_artifacts(self, folder, dataset):
        """The training curves, and samples.txt: entries drawn at temperatures 0.5, 0.8, 1."""
        written = super().write_artifacts(folder, dataset)
        parts = []
        for temperature in (0.5, 0.8, 1.0):
            texts = self.sample(5, 400, temperature, seed=self.seed)
            parts.append(f"== temperature {temperature} ==\n" + "\n%\n".join(texts) + "\n")
        text = "\n".join(parts).encode("utf-8")
        atomic_write(os.path.join(folder, "samples.txt"), lambda fh: fh.write(text))
        return [*written, "samples.txt"]
