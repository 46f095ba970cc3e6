"""Text vectorizers: documents -> scipy.sparse CSR rows of n-gram counts, TF-IDF weights or
hashed counts, with scikit-learn's defaults (its token pattern, lowercasing, smoothed idf,
l2 norm), so their columns and values equal CountVectorizer's and TfidfVectorizer's.

Each document is tokenised by one regular-expression pass; everything after works on
arrays of all occurrences at once: n-grams are joined with NumPy string ops, distinct
features found with one ``np.unique`` (sorted, hence scikit-learn's column order), and
a matrix's entries are the distinct (row, column) keys and their counts.
"""

import itertools
import re

import numpy as np
import scipy.sparse

from nanoml import Learner
from nanoml.errors import InputError, ParameterError
from nanoml.state_schema import Array, Int, StateSchema
from nanoml.validation import check_choice, check_number
from nanoml_text.text_kernels import hash_codepoints, hash_separated, word_runs

TOKEN_PATTERN = r"(?u)\b\w\w+\b"  # scikit-learn's: words of two or more characters
_WHITE_SPACES = re.compile(r"\s\s+")
_WORD = re.compile(r"\w")
ANALYZERS = ("word", "char")
NORMS = ("l2", "l1", None)
_FNV_PRIME = np.uint64(1099511628211)


def documents(X):
    """X (a sequence of str, or a one-column array of them) as a list of str."""
    if isinstance(X, str):
        raise InputError("X must be a sequence of documents, got a single string")
    arr = np.asarray(X, dtype=object) if not isinstance(X, np.ndarray) else X
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise InputError(f"X must be one text column (one string per document), got shape "
                         f"{arr.shape}")
    if arr.shape[0] == 0:
        raise InputError("X is empty: it has 0 documents")
    if arr.dtype.kind != "U":
        bad = next((v for v in arr if not isinstance(v, str)), None)
        if bad is not None:
            raise InputError(f"X must be text (one string per document), got a value of "
                             f"type {type(bad).__name__}: {bad!r}")
    return [str(doc) for doc in arr]


def _hash_strings(strings):
    """64-bit FNV-1a hash of each string of a NumPy str array, over its code points."""
    codes = np.ascontiguousarray(strings).view("<u4").reshape(strings.size,
                                                              strings.itemsize // 4)
    out = np.empty(strings.size, np.uint64)
    hash_codepoints(codes, out)
    return out


def _grams(unit_keys, rows, ngram_range):
    """(keys, rows, starts, sizes) of the n-grams of a run of units (tokens or characters)
    that lie inside one document: an n-gram's key folds its units' keys in order."""
    keys, where, starts, sizes = [], [], [], []
    for n in range(ngram_range[0], ngram_range[1] + 1):
        m = unit_keys.size - n + 1
        if m <= 0:
            break
        key = unit_keys[:m].copy()
        for k in range(1, n):
            key *= _FNV_PRIME
            key ^= unit_keys[k:k + m]
        start = np.flatnonzero(rows[:m] == rows[n - 1:])
        keys.append(key[start])
        where.append(rows[start])
        starts.append(start)
        sizes.append(np.full(start.size, n))
    if not keys:
        return (np.empty(0, np.uint64), *(np.empty(0, np.int64) for _ in range(3)))
    return tuple(np.concatenate(parts) for parts in (keys, where, starts, sizes))


def _names(starts, sizes, gram):
    """The strings of the n-grams at `starts` of lengths `sizes`, by ``gram(start, n)``."""
    parts, order = [], []
    for n in np.unique(sizes):
        chosen = np.flatnonzero(sizes == n)
        parts.append(gram(starts[chosen], n))
        order.append(chosen)
    if not parts:
        return np.empty(0, str)
    return np.concatenate(parts)[np.argsort(np.concatenate(order))]


def _tokens(docs, token_pattern):
    """(codes, keys, starts, ends, rows): the documents' tokens as spans [start, end) of
    the code points `codes`, with each token's hash key and document."""
    if token_pattern == TOKEN_PATTERN:  # runs of 2+ word characters: one kernel pass
        text = "\n".join(docs)
        codes = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
        distinct = np.unique(codes)
        is_word = np.zeros(int(distinct.max(initial=0)) + 1, np.bool_)
        is_word[distinct] = [_WORD.match(chr(c)) is not None for c in distinct.tolist()]
        keys, starts, ends = (np.empty(codes.size // 2 + 1, t)
                              for t in (np.uint64, np.int64, np.int64))
        found = word_runs(codes, is_word, keys, starts, ends)
        keys, starts, ends = keys[:found], starts[:found], ends[:found]
        first = np.cumsum([0] + [len(doc) + 1 for doc in docs[:-1]])
        rows = np.searchsorted(first, starts, side="right") - 1
        return codes, keys, starts, ends, rows
    pattern = re.compile(token_pattern)
    tokens = [pattern.findall(doc) for doc in docs]
    lengths = np.fromiter(map(len, tokens), np.int64, len(docs))
    rows = np.repeat(np.arange(len(docs)), lengths)
    # all tokens as one run of code points, each ended by a 0: hashed in one kernel pass
    joined = "\x00".join(itertools.chain.from_iterable(tokens)) + "\x00" * bool(rows.size)
    codes = np.frombuffer(joined.encode("utf-32-le"), dtype="<u4")
    keys = np.empty(rows.size, np.uint64)
    starts = np.empty(rows.size, np.int64)
    hash_separated(codes, keys, starts)
    return codes, keys, starts, np.append(starts[1:] - 1, codes.size - 1), rows


def _word_occurrences(docs, token_pattern, ngram_range):
    """(keys, rows, names): every word n-gram occurrence's hash key and document, and a
    function giving the n-gram strings of occurrences chosen by index."""
    codes, token_keys, token_starts, token_ends, rows = _tokens(docs, token_pattern)
    keys, where, starts, sizes = _grams(token_keys, rows, ngram_range)

    def token(index):  # the tokens at `index` as a NumPy str array
        first, lengths = token_starts[index], token_ends[index] - token_starts[index]
        out = np.zeros(index.size, f"<U{max(int(lengths.max(initial=0)), 1)}")
        # Gathered by length, each token's code points read as one str: padding every
        # token to the longest (a URL among words) would gather many times the text.
        for n in np.unique(lengths[lengths > 0]):
            chosen = np.flatnonzero(lengths == n)
            spans = np.ascontiguousarray(codes[first[chosen, None] + np.arange(n)])
            out[chosen] = spans.view(f"<U{n}")[:, 0]
        return out

    def gram(start, n):
        out = token(start)
        for k in range(1, n):
            out = np.char.add(np.char.add(out, " "), token(start + k))
        return out

    return keys, where, lambda index: _names(starts[index], sizes[index], gram)


def _char_occurrences(docs, ngram_range):
    """As `_word_occurrences` for character n-grams (runs of white space read as one
    space, as scikit-learn's char analyzer does)."""
    texts = [_WHITE_SPACES.sub(" ", doc) for doc in docs]
    codes = np.frombuffer("".join(texts).encode("utf-32-le"), dtype="<u4")
    rows = np.repeat(np.arange(len(texts)), [len(t) for t in texts])
    keys, where, starts, sizes = _grams(_hash_strings(codes.view("<U1")), rows, ngram_range)

    def gram(start, n):  # n code points in a row are, byte for byte, an n-character str
        return np.ascontiguousarray(codes[start[:, None] + np.arange(n)]).view(f"<U{n}")[:, 0]

    return keys, where, lambda index: _names(starts[index], sizes[index], gram)


def csr_from_pairs(rows, cols, n_rows, n_cols, weights=None):
    """CSR matrix whose entry (i, j) sums the `weights` (default 1) of the occurrences
    (rows[k], cols[k]) = (i, j): counts, or signed counts."""
    keys, inverse, counts = np.unique(rows * np.int64(n_cols) + cols, return_inverse=True,
                                      return_counts=True)
    # (bincount of no occurrences gives integers, which a norm could not divide in place)
    data = (counts if weights is None else np.bincount(
        inverse.ravel(), weights=weights, minlength=keys.size)).astype(np.float64)
    indptr = np.zeros(n_rows + 1, np.int64)
    np.cumsum(np.bincount(keys // n_cols, minlength=n_rows), out=indptr[1:])
    out = scipy.sparse.csr_matrix((data, (keys % n_cols).astype(np.int32), indptr),
                                  shape=(n_rows, n_cols))
    if weights is not None:
        out.eliminate_zeros()
    return out


def row_normalise(X, norm):
    """Scale the rows of CSR `X` in place to unit l1 or l2 norm (empty rows stay zero)."""
    if norm is None:
        return X
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    weights = np.abs(X.data) if norm == "l1" else X.data * X.data
    size = np.bincount(rows, weights=weights, minlength=X.shape[0])
    if norm == "l2":
        size = np.sqrt(size)
    size[size == 0.0] = 1.0
    X.data /= size[rows]
    return X


class _Analyzer(Learner):
    """Shared by the vectorizers: documents -> the occurrences of their features."""

    task = "decomposition"
    default_dataset = "fortunes"

    def check_params(self):
        self._check_analyzer()

    def _check_analyzer(self):
        check_choice("analyzer", self.analyzer, ANALYZERS)
        low, high = _ngram_range(self.ngram_range)
        check_number("ngram_range", low, low=1, integer=True)
        check_number("ngram_range", high, low=low, integer=True)
        check_choice("lowercase", self.lowercase, (True, False))
        if not isinstance(self.token_pattern, str):
            raise ParameterError(f"token_pattern must be a regular expression, got "
                                 f"{self.token_pattern!r}")
        try:
            re.compile(self.token_pattern)
        except re.error as exc:
            raise ParameterError(f"token_pattern is no regular expression: {exc}") from None
        return low, high

    def _occurrences(self, X):
        """(keys, rows, names, documents) of X's n-gram occurrences; see `_word_occurrences`."""
        docs = documents(X)
        if self.lowercase:
            docs = [doc.lower() for doc in docs]
        ngrams = _ngram_range(self.ngram_range)
        if self.analyzer == "char":
            return (*_char_occurrences(docs, ngrams), len(docs))
        return (*_word_occurrences(docs, self.token_pattern, ngrams), len(docs))

    def evaluate(self, X, y=None):
        """Size of the output: its columns and the mean stored entries per document."""
        out = self.transform(X)
        return {"features": float(out.shape[1]), "entries_per_document": out.nnz / out.shape[0]}

    def fit_transform(self, X, y=None):
        return self.fit(X, y).transform(X)


def _ngram_range(value):
    try:
        low, high = value
    except (TypeError, ValueError):
        raise ParameterError(f"ngram_range must be a pair (low, high), got {value!r}") from None
    return low, high


class CountVectorizer(_Analyzer):
    """Bag of n-grams: counts of each vocabulary n-gram per document (scikit-learn's
    CountVectorizer). The vocabulary is the sorted distinct n-grams of the training
    documents kept by the document-frequency bounds (`min_df`, `max_df`: a count if an
    integer, a share of the documents if a float) and, with `max_features`, the most
    frequent of those."""

    name = "count-vectorizer"
    description = "bag-of-words / character n-gram counts as sparse rows, with a vocabulary"
    search_space = {"ngram_range": [(1, 1), (1, 2)], "min_df": [1, 2, 5]}

    def __init__(self, analyzer="word", ngram_range=(1, 1), lowercase=True,
                 token_pattern=TOKEN_PATTERN, min_df=1, max_df=1.0, max_features=None):
        self.analyzer = analyzer
        self.ngram_range = ngram_range
        self.lowercase = lowercase
        self.token_pattern = token_pattern
        self.min_df = min_df
        self.max_df = max_df
        self.max_features = max_features

    def fit(self, X, y=None):
        self._fit_counts(X)
        return self

    def fit_transform(self, X, y=None):
        """`fit` then `transform` on X, in one pass over its text."""
        return self._fit_counts(X)

    state_schema = StateSchema(
        vocabulary_=Array("U", shape=("n_vocabulary",)),
        feature_keys_=Array(np.uint64, shape=("n_vocabulary",)),  # each column's n-gram hash
    )

    def check_params(self):
        super().check_params()
        for name in ("min_df", "max_df"):
            value = getattr(self, name)
            check_number(name, value, low=0, integer=isinstance(value, (int, np.integer)))
            if not isinstance(value, (int, np.integer)):
                check_number(name, value, low=0.0, high=1.0)
        if self.max_features is not None:
            check_number("max_features", self.max_features, low=1, integer=True)

    def _fit_counts(self, X):
        """Learn vocabulary_ from X; -> X's counts over it."""
        self.check_params()
        keys, rows, names, n_docs = self._occurrences(X)
        if keys.size == 0:
            raise InputError("X holds no words to count: every document is empty or "
                             "holds only one-letter tokens")
        distinct, first, which = np.unique(keys, return_index=True, return_inverse=True)
        vocabulary = names(first)
        order = np.argsort(vocabulary, kind="stable")  # scikit-learn's column order
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        counts = csr_from_pairs(rows, rank[which.ravel()], n_docs, vocabulary.size)
        vocabulary, distinct = vocabulary[order], distinct[order]
        df = np.bincount(counts.indices, minlength=vocabulary.size)
        low = self.min_df if isinstance(self.min_df, (int, np.integer)) else self.min_df * n_docs
        high = self.max_df if isinstance(self.max_df, (int, np.integer)) else self.max_df * n_docs
        keep = (df >= low) & (df <= high)
        if self.max_features is not None and keep.sum() > self.max_features:
            kept = np.flatnonzero(keep)
            totals = np.asarray(counts.sum(axis=0)).ravel()[kept]
            keep[:] = False
            keep[kept[np.argsort(-totals, kind="stable")[: self.max_features]]] = True
        if not keep.any():
            raise InputError(
                f"no n-gram is left after min_df={self.min_df} and max_df={self.max_df} "
                f"({vocabulary.size} before): loosen them")
        self.vocabulary_ = vocabulary[keep]
        self.feature_keys_ = distinct[keep]  # each column's n-gram hash, for transform
        return counts[:, np.flatnonzero(keep)]

    def transform(self, X):
        """Counts of the vocabulary's n-grams per document, CSR (documents, vocabulary)."""
        self.check_fitted()
        return self._counts(X)

    def _counts(self, X):
        keys, rows, _, n_docs = self._occurrences(X)
        cols = self._columns(keys)
        known = cols >= 0
        return csr_from_pairs(rows[known], cols[known], n_docs, self.feature_keys_.size)

    def _columns(self, keys):
        """The vocabulary column of each n-gram key, -1 for n-grams not in it."""
        columns = np.argsort(self.feature_keys_)
        where = np.searchsorted(self.feature_keys_, keys, sorter=columns)
        where[where == columns.size] = 0
        cols = columns[where]
        return np.where(self.feature_keys_[cols] == keys, cols, -1)

    def token_columns(self, X):
        """(columns, rows): each n-gram occurrence of X in document order, as its vocabulary
        column (-1: not in the vocabulary), and its document."""
        self.check_fitted()
        keys, rows, _, _ = self._occurrences(X)
        return self._columns(keys), rows

    def get_feature_names_out(self):
        self.check_fitted()
        return self.vocabulary_.copy()


class TfidfVectorizer(CountVectorizer):
    """Counts weighted by inverse document frequency, rows normalised (scikit-learn's
    TfidfVectorizer): idf = ln((1 + n) / (1 + df)) + 1 with `smooth_idf`, else
    ln(n / df) + 1; `sublinear_tf` uses 1 + ln(count) for the count."""

    name = "tfidf-vectorizer"
    description = "TF-IDF weighted n-grams as sparse rows, l2-normalised, with a vocabulary"
    search_space = {**CountVectorizer.search_space, "sublinear_tf": [False, True]}

    def __init__(self, analyzer="word", ngram_range=(1, 1), lowercase=True,
                 token_pattern=TOKEN_PATTERN, min_df=1, max_df=1.0, max_features=None,
                 norm="l2", use_idf=True, smooth_idf=True, sublinear_tf=False):
        super().__init__(analyzer, ngram_range, lowercase, token_pattern, min_df, max_df,
                         max_features)
        self.norm = norm
        self.use_idf = use_idf
        self.smooth_idf = smooth_idf
        self.sublinear_tf = sublinear_tf

    def fit(self, X, y=None):
        self.fit_transform(X)
        return self

    state_schema = CountVectorizer.state_schema.extend(
        idf_=Array(np.float64, shape=("n_vocabulary",), low=0),
    )

    def check_params(self):
        super().check_params()
        check_choice("norm", self.norm, NORMS)
        for name in ("use_idf", "smooth_idf", "sublinear_tf"):
            check_choice(name, getattr(self, name), (True, False))

    def fit_transform(self, X, y=None):
        counts = self._fit_counts(X)  # checks the hyperparameters, this class's too
        df = np.bincount(counts.indices, minlength=counts.shape[1]).astype(np.float64)
        n = float(counts.shape[0]) + self.smooth_idf
        self.idf_ = np.log(n / (df + self.smooth_idf)) + 1.0
        return self._weigh(counts)

    def transform(self, X):
        """TF-IDF weights of the vocabulary's n-grams per document, CSR."""
        self.check_fitted()
        return self._weigh(self._counts(X))

    def _weigh(self, out):
        """Counts -> TF-IDF weights, in place."""
        if self.sublinear_tf:
            np.log(out.data, out=out.data)
            out.data += 1.0
        if self.use_idf:
            out.data *= self.idf_[out.indices]
        return row_normalise(out, self.norm)


class HashingVectorizer(_Analyzer):
    """n-gram counts hashed into `n_features` columns, no vocabulary (the hashing trick):
    each distinct n-gram's 64-bit FNV-1a hash picks its column and, with
    `alternate_sign`, the sign it adds with, so collisions cancel on average. Rows are
    normalised by `norm`. Columns differ from scikit-learn's (it uses MurmurHash3)."""

    name = "hashing-vectorizer"
    description = "hashed n-gram counts as sparse rows: fixed width, no vocabulary"
    search_space = {"n_features": [2**16, 2**18, 2**20]}

    def __init__(self, analyzer="word", ngram_range=(1, 1), lowercase=True,
                 token_pattern=TOKEN_PATTERN, n_features=2**20, alternate_sign=True,
                 norm="l2"):
        self.analyzer = analyzer
        self.ngram_range = ngram_range
        self.lowercase = lowercase
        self.token_pattern = token_pattern
        self.n_features = n_features
        self.alternate_sign = alternate_sign
        self.norm = norm

    state_schema = StateSchema(n_features_out_=Int(low="n_features", high="n_features"))

    def check_params(self):
        super().check_params()
        check_number("n_features", self.n_features, low=1, integer=True)
        check_choice("norm", self.norm, NORMS)
        check_choice("alternate_sign", self.alternate_sign, (True, False))

    def fit(self, X, y=None):
        """Check the hyperparameters and X; nothing is learned beyond the width."""
        self.check_params()
        documents(X)
        self.n_features_out_ = int(self.n_features)
        return self

    def transform(self, X):
        self.check_fitted()
        keys, rows, _, n_docs = self._occurrences(X)
        cols = (keys % np.uint64(self.n_features_out_)).astype(np.int64)
        signs = None
        if self.alternate_sign:  # the key's top bit gives the sign a feature adds with
            signs = np.where((keys >> np.uint64(63)) == 1, -1.0, 1.0)
        out = csr_from_pairs(rows, cols, n_docs, self.n_features_out_, signs)
        return row_normalise(out, self.norm)
