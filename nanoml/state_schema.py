"""Declared learned state: what a model file may set on a learner, checked before it is set.

A model file is untrusted input. Its arrays reach Numba kernels that trust their indices
(a tree's child ids, a Q-table's rows), so `Learner.load` checks the state a file holds
against the learner's ``state_schema`` before setting any of it, and refuses a file that
does not fit with one `ModelFileError` naming the attribute. A learner declares its schema
beside its class::

    class Ridge(Learner):
        state_schema = StateSchema(
            n_features_in_=Int(low=1),
            coef_=Array(np.float64, shape=("n_features_in_",)),
            intercept_=Float(),
        )

Each keyword names a learned attribute and what it holds:

- `Int`, `Float`, `Str`, `Json` (any JSON value, e.g. a history): values of the header;
- `Array(dtype, shape, ...)`: an array of the model file. `dtype` is a NumPy dtype, whose
  kind the array must have and to which it is converted (``np.int64``: any signed integers,
  loaded as int64), or a string of accepted kinds kept as they are ("f" float, "i" signed,
  "u" unsigned integer, "b" bool, "U" text; `LABELS` for class labels);
- `Network(prefix)`: the weights of the learner's networks, the arrays named ``prefix...``;
  here only finite floats: their names and shapes are checked against the network the
  learner builds from its hyperparameters when it sets them (`nanoml.deep`).

A shape entry, and a bound (`low`, `high` inclusive; `above`, `below` exclusive), is a
number; the name of a hyperparameter or of an integer learned attribute (``"n_features_in_"``);
another name, a size that the first array using it fixes and every other use must agree
with (``"n_classes"``, ``"n_nodes"``); or a function of the known values (name -> value:
hyperparameters, learned attributes, sizes). Floats must be finite unless ``finite=False``;
``optional=True`` lets an attribute be absent, ``none=True`` lets it be None.

Relations that no entry states go in ``checks``: functions of the known values that call
`refuse` on a problem, such as `Trees` (flat tree arrays: children in range, each node
reached exactly once from a root, splits on features of X).

An attribute the schema does not declare is refused. A subclass inherits its base's
schema; one that learns more declares ``state_schema = Base.state_schema.extend(...)``.
Learners that declare none (``state_schema = None``, as third-party plugins may) get the
generic checks of `check_generic` only: each name that of a learned attribute (ending in
``_``), no attribute or method of the class.
"""

import numpy as np

from nanoml.errors import ModelFileError

LABELS = "biufU"  # class labels: bool, integers, floats or text


def refuse(attribute, problem):
    """Raise the ModelFileError that says learned attribute `attribute` `problem`."""
    raise ModelFileError(f"learned attribute '{attribute}' {problem}")


class _Entry:
    """One declared learned attribute."""

    in_arrays = False  # held as an array of the file, not a value of its header

    def __init__(self, *, optional=False, none=False):
        self.optional = optional
        self.none = none

    def check(self, name, value, known):
        """Refuse `value` unless it fits; return it as the learner is to hold it."""
        return value


class _Bounded(_Entry):
    """An entry of numbers: finite floats unless ``finite=False``, within any bounds given."""

    def __init__(self, *, low=None, high=None, above=None, below=None, finite=True, **kw):
        super().__init__(**kw)
        self.bounds = {"low": low, "high": high, "above": above, "below": below}
        self.finite = finite

    def check_values(self, name, values, known):
        """Refuse `values` (an array) if one is NaN/inf (where finite) or out of bounds."""
        if values.size == 0:
            return
        if self.finite and values.dtype.kind == "f" and not np.isfinite(values).all():
            refuse(name, "holds NaN or infinity")
        for side, bound in self.bounds.items():
            if bound is None:
                continue
            limit = _resolve(bound, known, name)
            compare = {"low": np.less, "high": np.greater, "above": np.less_equal,
                       "below": np.greater_equal}[side]
            bad = np.asarray(compare(values, limit), dtype=bool)
            if np.any(bad):
                first = values.ravel()[np.flatnonzero(bad.ravel())[0]]
                first = first.item() if isinstance(first, np.generic) else first
                words = {"low": "below", "high": "above", "above": "at or below",
                         "below": "at or above"}[side]
                refuse(name, f"holds {first!r}, {words} its limit {limit!r}")


class Int(_Bounded):
    """An integer of the header."""

    def check(self, name, value, known):
        if isinstance(value, bool) or not isinstance(value, int):
            refuse(name, f"must be an integer, got {_brief(value)}")
        self.check_values(name, np.array(value, dtype=object), known)
        return value


class Float(_Bounded):
    """A number of the header, finite unless ``finite=False``."""

    def check(self, name, value, known):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            refuse(name, f"must be a number, got {_brief(value)}")
        try:
            value = float(value)
        except OverflowError:
            refuse(name, f"is too large, got {_brief(value)}")
        self.check_values(name, np.array(value), known)
        return value


class Str(_Entry):
    """Text of the header."""

    def check(self, name, value, known):
        if not isinstance(value, str):
            refuse(name, f"must be text, got {_brief(value)}")
        return value


class Json(_Entry):
    """Any JSON value of the header; `check(value)`, where given, raises on a bad one
    (ValueError, TypeError, KeyError, IndexError or AttributeError: a malformed value)."""

    def __init__(self, check=None, **kw):
        super().__init__(**kw)
        self._check = check

    def check(self, name, value, known):
        if self._check is not None:
            try:
                self._check(value)
            except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
                refuse(name, f"is malformed ({exc})")
        return value


class Array(_Bounded):
    """An array of the model file (see the module docstring for `dtype` and `shape`)."""

    in_arrays = True

    def __init__(self, dtype, shape=None, **kw):
        super().__init__(**kw)
        self.dtype = None if isinstance(dtype, str) else np.dtype(dtype)
        self.kinds = dtype if isinstance(dtype, str) else self.dtype.kind
        self.shape = shape

    def check(self, name, value, known):
        if not isinstance(value, np.ndarray):
            refuse(name, f"must be an array, got {_brief(value)}")
        if value.dtype.kind not in self.kinds:
            refuse(name, f"has dtype {value.dtype}; expected {_kind_words(self.kinds)}")
        if self.shape is not None:
            if value.ndim != len(self.shape):
                refuse(name, f"has shape {value.shape}; expected {len(self.shape)} axes")
            for axis, (size, dim) in enumerate(zip(value.shape, self.shape, strict=True)):
                expected = _size(dim, size, known, name)
                if size != expected:
                    refuse(name, f"has shape {value.shape}; axis {axis} must be {expected} "
                                 f"({dim})")
        return value if self.dtype is None else value.astype(self.dtype, copy=False)


class Classes(Array):
    """A classifier's ``classes_``: labels of at least two classes, ``n_classes`` of them."""

    def __init__(self):
        super().__init__(LABELS, shape=("n_classes",))

    def check(self, name, value, known):
        value = super().check(name, value, known)
        if value.shape[0] < 2:
            refuse(name, f"holds {value.shape[0]} classes; a classifier has at least two")
        return value


class Network(_Entry):
    """The weights of networks: every array named ``prefix...``, as finite floats."""

    in_arrays = True

    def __init__(self, prefix):
        super().__init__(optional=True)
        self.prefix = prefix

    def check(self, name, value, known):
        if value.dtype.kind != "f":
            refuse(name, f"has dtype {value.dtype}; network weights are floats")
        if not np.isfinite(value).all():
            refuse(name, "holds NaN or infinity")
        return value


class Trees:
    """Flat binary trees: node arrays of child ids (-1 at a leaf) and split features, trees
    starting at the nodes of `roots`. Each node must be reached exactly once from a root, so
    every walk from a root ends at a leaf, and each split must be on a feature of X.
    Declare the arrays' shapes and ranges as well: ids within [-1, n_nodes)."""

    def __init__(self, left="left_", right="right_", feature="feature_", roots="roots_",
                 n_features="n_features_in_"):
        self.names = left, right, feature, roots, n_features

    def __call__(self, known):
        left_name, right_name, feature_name, roots_name, n_features = self.names
        left, right, feature, roots = (known[n] for n in self.names[:4])
        n = left.shape[0]
        leaf = left == -1
        if np.any(leaf != (right == -1)):
            refuse(right_name, f"marks leaves where '{left_name}' does not, or the other way")
        children = np.concatenate([left[~leaf], right[~leaf]])
        parents = np.bincount(children, minlength=n) + np.bincount(roots, minlength=n)
        if np.any(parents != 1):
            node = int(np.flatnonzero(parents != 1)[0])
            refuse(left_name, f"reaches node {node} {int(parents[node])} times (with "
                              f"'{right_name}' and '{roots_name}'); each node has one parent")
        reached, frontier = 0, roots  # one parent each: no node is pushed twice
        while frontier.size:
            reached += frontier.size
            inner = frontier[~leaf[frontier]]
            frontier = np.concatenate([left[inner], right[inner]])
        if reached != n:
            refuse(left_name, f"links {n - reached} nodes in a cycle no root reaches")
        splits = feature[~leaf]
        if splits.size and (splits.min() < 0 or splits.max() >= known[n_features]):
            refuse(feature_name, f"splits on a feature outside 0..{known[n_features] - 1}")


class Require:
    """A check: `condition(known)` must hold, else learned attribute `attribute` `problem`."""

    def __init__(self, condition, attribute, problem):
        self.condition, self.attribute, self.problem = condition, attribute, problem

    def __call__(self, known):
        if not self.condition(known):
            refuse(self.attribute, self.problem)


class StateSchema:
    """A learner's learned attributes (keywords: name -> entry) and `checks` across them."""

    def __init__(self, checks=(), **entries):
        self.entries = entries
        self.checks = tuple(checks)

    def extend(self, checks=(), **entries):
        """A schema with more (or redeclared) entries and checks: a subclass's own."""
        return StateSchema(checks=self.checks + tuple(checks), **{**self.entries, **entries})

    def check(self, learner, plain, arrays):
        """Refuse state (`plain` header values, `arrays`) that does not fit; return it as
        the learner is to hold it (arrays converted to their declared dtypes)."""
        known = dict(learner.get_params())
        plain, arrays = dict(plain), dict(arrays)
        networks = [e for e in self.entries.values() if isinstance(e, Network)]
        declared = {k for k, e in self.entries.items() if not isinstance(e, Network)}
        for name in [*plain, *arrays]:
            if name in declared or any(name.startswith(e.prefix) for e in networks):
                continue
            refuse(name, f"is not one of {type(learner).__name__}'s")
        # header values first, then arrays (whose sizes may name them; sizes given by
        # functions last, when the sizes they read are known), then the arrays' bounds
        ordered = sorted(self.entries.items(), key=lambda item: (
            item[1].in_arrays, any(callable(d) for d in getattr(item[1], "shape", None) or ())))
        for name, entry in ordered:
            if isinstance(entry, Network):
                for key in [k for k in arrays if k.startswith(entry.prefix)]:
                    arrays[key] = entry.check(key, arrays[key], known)
                continue
            source = arrays if entry.in_arrays else plain
            other = plain if entry.in_arrays else arrays
            if name not in source:
                if name in other:
                    refuse(name, "must be an array" if entry.in_arrays else
                           "must be a value of the header, not an array")
                if not entry.optional:
                    refuse(name, "is missing")
                continue
            value = source[name]
            if value is None and entry.none:
                known[name] = None
                continue
            source[name] = known[name] = entry.check(name, value, known)
        for name, entry in ordered:
            if isinstance(entry, Array) and known.get(name) is not None:
                entry.check_values(name, known[name], known)
        for check in self.checks:
            try:
                check(known)
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                raise ModelFileError(f"learned state is inconsistent ({exc})") from None
        return plain, arrays


def score_columns(known):
    """A classifier's score columns, a size of its arrays: one for two classes (the score
    of the second), else one per class."""
    return 1 if known["n_classes"] == 2 else known["n_classes"]


def check_generic(learner, names):
    """The checks every learned attribute's name passes: a public name ending in ``_``
    that is no attribute or method of the learner's class."""
    cls = type(learner)
    for name in names:
        if not (isinstance(name, str) and name.isidentifier() and name.endswith("_")
                and not name.startswith("_")):
            raise ModelFileError(f"{name!r} is not the name of a learned attribute "
                                 "(those end in '_')")
        if hasattr(cls, name):
            refuse(name, f"would replace {cls.__name__}'s own attribute of that name")


def _resolve(bound, known, name):
    """A bound's value: a number, a known value's name, or a function of the known values."""
    if callable(bound):
        return bound(known)
    if isinstance(bound, str):
        if bound not in known:
            refuse(name, f"needs '{bound}', which the file does not hold")
        return known[bound]
    return bound


def _size(dim, size, known, name):
    """The size axis entry `dim` asks for; an unbound name is bound to `size` here."""
    if isinstance(dim, str) and dim not in known:
        known[dim] = size
    value = _resolve(dim, known, name)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        refuse(name, f"has a size '{dim}' that is not an integer ({_brief(value)})")
    return int(value)


def _kind_words(kinds):
    words = {"f": "floats", "i": "signed integers", "u": "unsigned integers", "b": "bools",
             "U": "text"}
    return " or ".join(words.get(k, k) for k in kinds)


def _brief(value):
    text = repr(value)
    return f"{type(value).__name__} {text[:40]}{'...' if len(text) > 40 else ''}"
