"""Input checks done once at the edge (fit, predict), so kernels can trust their arrays."""

import math

import numpy as np

from nanoml.errors import InputError, ParameterError


def check_array(X, *, name="X", ndim=2, dtype=np.float64, n_features=None):
    """A C-contiguous finite array of `dtype` with `ndim` dimensions, or a clear InputError."""
    if hasattr(X, "tocsr") and hasattr(X, "nnz"):  # a scipy.sparse matrix
        raise InputError(
            f"{name} is a sparse matrix, which this learner does not take; pass a dense array "
            "(X.toarray()) or use multinomial-nb, logistic-regression or linear-svm"
        )
    try:
        arr = np.asarray(X)
    except Exception as exc:
        raise InputError(f"{name} could not be read as an array: {exc}") from None
    if arr.dtype.kind == "c":
        raise InputError(
            f"{name} is complex; nanoml learners take real numbers (split real and imaginary "
            "parts into columns first)"
        )
    if arr.dtype == object or arr.dtype.kind in "USV":
        try:
            arr = arr.astype(dtype)
        except (TypeError, ValueError):
            raise InputError(f"{name} must be numeric, got values of type {arr.dtype}") from None
    if ndim == 2 and arr.ndim == 1:
        raise InputError(
            f"{name} must be 2-D (samples x features), got a 1-D array of length {arr.shape[0]}; "
            "reshape with X.reshape(-1, 1) for one feature or X.reshape(1, -1) for one sample"
        )
    if arr.ndim != ndim:
        raise InputError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise InputError(f"{name} is empty: it has 0 samples")
    if arr.ndim == 2 and arr.shape[1] == 0:
        raise InputError(f"{name} has 0 features: every sample needs at least one value")
    if n_features is not None and arr.shape[1] != n_features:
        raise InputError(
            f"{name} has {arr.shape[1]} features but the learner was fitted with {n_features}"
        )
    given = arr
    with np.errstate(over="ignore"):
        arr = np.ascontiguousarray(arr, dtype=dtype)
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        if np.isfinite(given[tuple(bad)]):  # finite, but too large for `dtype`
            limit = np.finfo(dtype).max
            raise InputError(
                f"{name} has values beyond {limit:.3g} (e.g. {given[tuple(bad)]:.3g} at index "
                f"{tuple(int(i) for i in bad)}), more than this learner's {np.dtype(dtype)} "
                "arithmetic holds; rescale those features first"
            )
        raise InputError(
            f"{name} contains NaN or infinity (first at index {tuple(int(i) for i in bad)}); "
            "remove or impute those values first"
        )
    if arr.ndim == 2 and given.dtype.kind == "f" and given.dtype.itemsize > arr.dtype.itemsize:
        vanished = np.flatnonzero((given != 0).any(axis=0) & (arr == 0).all(axis=0))
        if vanished.size:
            j = int(vanished[0])
            raise InputError(
                f"{name}'s feature {j} has values (e.g. {given[:, j][given[:, j] != 0][0]:.3g}) "
                f"all so small that this learner's {arr.dtype} arithmetic rounds them to 0; "
                "rescale that feature first"
            )
    return arr


# Squares of magnitudes in this range, and sums of many of them, stay normal float64 numbers.
SQUARES_LOW, SQUARES_HIGH = 2.0**-500, 2.0**500
# The same for float32 learners: magnitudes whose squares, and sums of many, stay normal.
FLOAT32_SQUARES_LOW, FLOAT32_SQUARES_HIGH = 2.0**-50, 2.0**50
# Values of ordinary size: no rescaling needed (squares in 2**±200, precise to the last bit).
_ORDINARY_LOW, _ORDINARY_HIGH = 2.0**-100, 2.0**100


def working_dtype(X):
    """float32 for float32 data, which learners that can keep its precision keep (as
    scikit-learn does), else float64."""
    return np.float32 if getattr(X, "dtype", None) == np.float32 else np.float64


def unit_scale(*arrays):
    """A power of two to divide `arrays` by before squares or squared distances are taken:
    1 for values of ordinary size, else the one that brings the largest magnitude to [1, 2),
    so that squares neither overflow (|x| > 1e154) nor underflow (|x| < 1e-154). Dividing by
    a power of two is exact: nearest points and cluster labels do not change."""
    top = max((float(np.abs(a).max()) for a in arrays if a.size), default=0.0)
    if top == 0.0 or _ORDINARY_LOW <= top <= _ORDINARY_HIGH:
        return 1.0
    return math.ldexp(1.0, math.frexp(top)[1] - 1)


def check_squares(X, *, name="X"):
    """X itself, or an InputError naming the first feature (column of a 2-D X) whose values
    are so large (or, all of them, so small but not zero) that their squares overflow (or
    underflow) float64: for learners that form variances or X.T @ X, which would otherwise
    return NaN."""
    if not X.size:
        return X
    top = np.abs(X).max(axis=0).reshape(-1)
    bad = np.flatnonzero((top > SQUARES_HIGH) | ((top > 0) & (top < SQUARES_LOW)))
    if bad.size:
        j = int(bad[0])
        way = "overflow" if top[j] > SQUARES_HIGH else "underflow"
        what = f"{name}'s feature {j} has" if X.ndim == 2 else f"{name} has"
        raise InputError(
            f"{what} values of magnitude {top[j]:.3g}, whose squares {way} float64 "
            "arithmetic; rescale it (e.g. to unit variance) first"
        )
    return X


def check_targets(y, n_samples, *, name="y", numeric=True):
    """A 1-D target array with one entry per sample; numeric targets must be finite."""
    if y is None:
        raise InputError(f"{name} is required for this learner")
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr.ravel()
    if arr.ndim != 1:
        raise InputError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.shape[0] != n_samples:
        raise InputError(f"X has {n_samples} samples but {name} has {arr.shape[0]}")
    if numeric:
        try:
            arr = np.ascontiguousarray(arr, dtype=np.float64)
        except (TypeError, ValueError):
            raise InputError(f"{name} must be numeric, got values of type {arr.dtype}") from None
        if not np.isfinite(arr).all():
            raise InputError(f"{name} contains NaN or infinity; remove those samples first")
    return arr


def encode_labels(y, n_samples, *, min_classes=2):
    """Class labels of any sortable type -> (classes, integer codes 0..k-1).

    Labels round-trip: ``classes[codes]`` equals the input. Python objects (e.g. a list
    of str) become a NumPy string array, so they save without pickle.
    """
    arr = check_targets(y, n_samples, numeric=False)
    if arr.dtype == object:
        kinds = {type(v) for v in arr}
        if all(issubclass(k, str) for k in kinds):
            arr = arr.astype(str)
        elif all(issubclass(k, (int, float, np.integer, np.floating)) and not issubclass(k, bool)
                 for k in kinds):
            arr = arr.astype(np.float64)
            if np.isfinite(arr).all() and (arr == np.round(arr)).all():
                arr = arr.astype(np.int64)
        else:
            raise InputError(
                f"class labels must be all numbers or all strings, got types "
                f"{sorted(k.__name__ for k in kinds)}"
            )
    if arr.dtype.kind == "c":
        raise InputError("y is complex; class labels must be numbers or strings")
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise InputError("y contains NaN or infinity; remove those samples first")
        fractional = arr[arr != np.round(arr)]
        if fractional.size:
            raise InputError(
                f"y looks continuous (e.g. {fractional[0]!r}): a classifier needs class labels; "
                "use a regression learner, or round or bin the targets"
            )
    classes, codes = np.unique(arr, return_inverse=True)
    if classes.shape[0] < min_classes:
        raise InputError(
            f"y has {classes.shape[0]} class ({classes[0]!r}); a classifier needs at least "
            f"{min_classes}"
        )
    return classes, codes.astype(np.int64)


def check_number(name, value, *, low=None, high=None, integer=False, low_open=False):
    """A hyperparameter that must be a number in [low, high] (or (low, high] if low_open)."""
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    if isinstance(value, bool) or not isinstance(value, kinds):
        kind = "an integer" if integer else "a number"
        raise ParameterError(f"{name} must be {kind}, got {value!r}")
    if not np.isfinite(value):
        raise ParameterError(f"{name} must be finite, got {value!r}")
    too_low = low is not None and (value <= low if low_open else value < low)
    if too_low or (high is not None and value > high):
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        bracket = "(" if low_open else "["
        raise ParameterError(f"{name} must be in {bracket}{lo}, {hi}], got {value!r}")
    return value


def check_seed(seed):
    """A random seed: NumPy's generators take non-negative integers only."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(f"seed must be a non-negative integer, got {seed!r}",
                             argument="seed")
    return seed


def check_choice(name, value, choices):
    """A hyperparameter that must be one of `choices`."""
    if value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ParameterError(f"{name} must be one of {options}, got {value!r}")
    return value


def check_sparse(X, *, name="X", n_features=None):
    """A scipy.sparse matrix as canonical CSR (sorted, summed duplicates) of finite float64
    values, or a clear InputError; learners that take sparse rows call it in place of
    `check_array`."""
    import scipy.sparse

    X = scipy.sparse.csr_matrix(X, dtype=np.float64)
    if X.shape[0] == 0:
        raise InputError(f"{name} is empty: it has 0 samples")
    if n_features is not None and X.shape[1] != n_features:
        raise InputError(
            f"{name} has {X.shape[1]} features but the learner was fitted with {n_features}"
        )
    if not X.has_canonical_format:
        X = X.copy()
        X.sum_duplicates()
    if not np.isfinite(X.data).all():
        raise InputError(f"{name} contains NaN or infinity; remove or impute those values first")
    return X
