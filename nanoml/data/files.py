"""The user's own files as datasets: tables (CSV, TSV, Parquet), NumPy arrays (``.npy``:
X; ``.npz``: arrays X and y) and image folders (one subfolder per class).

``nanoml.data.load_file(path)`` returns a `Dataset` split into training and test rows
like the registered datasets, with the encoding it learned (``Dataset.schema``) for the
model file, so that predictions read new files the same way.
"""

import os

import numpy as np

from nanoml.data import Dataset, train_test_split
from nanoml.data.images import ImageSchema, read_image_folder
from nanoml.data.tables import (
    TABLE_SUFFIXES,
    TableSchema,
    learn_schema,
    numbers_table,
    read_numbers,
    read_table,
)
from nanoml.errors import DatasetUnavailableError, InputError, ModelFileError, ParameterError

ARRAY_SUFFIXES = (".npy", ".npz")
SUPERVISED = ("classification", "regression")
# Integer targets with at most this many distinct values are class labels, unless the
# learner asks for a regression.
MAX_CLASSES_INFERRED = 20


def is_data_file(name):
    """Whether a dataset name is a path to read: an existing file or folder, or a name
    ending in a suffix nanoml reads."""
    suffix = os.path.splitext(str(name))[1].lower()
    return os.path.exists(name) or suffix in (*TABLE_SUFFIXES, *ARRAY_SUFFIXES)


def load_file(path, *, target=None, impute=None, task=None, seed=0, test_fraction=0.25):
    """The file or folder `path` as a Dataset, its rows split with `seed`.

    `target`: the table column to predict (default: the last one). `impute`: fill missing
    feature values with the column's mean, median or most frequent value (default: refuse
    them, naming the column). `task`: classification or regression, else inferred from the
    target (text or few distinct integers: classification).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DatasetUnavailableError(f"data file '{path}' does not exist")
    suffix = os.path.splitext(path)[1].lower()
    if os.path.isdir(path):
        X, y, schema, extra = _image_folder(path)
    elif suffix in TABLE_SUFFIXES:
        X, y, schema, extra = _table(path, target, impute)
    elif suffix in ARRAY_SUFFIXES:
        X, y, schema, extra = _arrays(path)
    else:
        known = ", ".join((*TABLE_SUFFIXES, *ARRAY_SUFFIXES))
        raise InputError(f"'{path}' is not a file nanoml reads (known: {known}, or a folder "
                         "of images in one subfolder per class)")
    if target is not None and suffix not in TABLE_SUFFIXES:
        raise ParameterError(f"target names a column of a table; '{path}' is no table",
                             argument="target")
    task = _task(y, task, path)
    if task in SUPERVISED:
        y = _targets(y, task, path)
    X_tr, y_tr, X_te, y_te = train_test_split(X, y, test_fraction=test_fraction, seed=seed,
                                              stratify=task == "classification")
    name = os.path.basename(os.path.normpath(path))
    return Dataset(name, task, X_tr, y_tr, X_te, y_te, schema=schema, **extra)


def _table(path, target, impute):
    numbers = read_numbers(path)
    if numbers is None:
        table = read_table(path)
    else:
        # the schema of columns of numbers follows from their types, unless imputing
        table = numbers_table(*numbers, rows=slice(None) if impute else slice(0))
    names = table.column_names
    target = names[-1] if target is None else target
    if target not in names:
        raise InputError(f"'{path}' has no column '{target}' (its columns: "
                         f"{', '.join(names)})")
    if len(names) < 2:
        raise InputError(f"'{path}' has one column; a dataset needs features and a target")
    schema = learn_schema(table, target, impute)
    if numbers is not None:
        return numbers_matrix(*numbers, schema) + (schema, {"feature_names": schema.feature_names})
    y = table.column(target)
    if y.null_count:
        raise InputError(f"the target column '{target}' of '{path}' has {y.null_count} "
                         "missing value(s); remove those rows")
    y = y.to_numpy(zero_copy_only=False)
    return schema.encode(table, f"'{path}'"), y, schema, {"feature_names": schema.feature_names}


def numbers_matrix(names, values, integer, schema):
    """(X, y or None) of a table of numbers (`read_numbers`) that has every feature column
    of `schema`, all of kind number: the columns as they are, sliced rather than copied
    where they lie side by side; y the target column, if the table has it."""
    features = [names.index(c.name) for c in schema.columns]
    if features == list(range(features[0], features[0] + len(features))):
        X = values[:, features[0]:features[0] + len(features)]
    else:
        X = values[:, features]
    if schema.target not in names:
        return X, None
    target = names.index(schema.target)
    y = values[:, target]
    return X, y.astype(np.int64) if integer[target] else y


def read_arrays(path, mmap=False):
    """(X, y or None) of a ``.npy`` (X only; memory-mapped with `mmap`) or ``.npz`` file
    (arrays X and y); an unreadable file is an InputError."""
    try:
        if path.lower().endswith(".npy"):
            return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False), None
        with np.load(path, allow_pickle=False) as archive:
            if "X" not in archive.files:
                raise InputError(f"'{path}' has no array 'X' (it has "
                                 f"{', '.join(archive.files) or 'none'})")
            return archive["X"], archive["y"] if "y" in archive.files else None
    except InputError:
        raise
    except (OSError, ValueError, EOFError) as exc:  # truncated, not NumPy, object arrays
        raise InputError(f"cannot read '{path}': {exc}") from None


def _arrays(path):
    X, y = read_arrays(path)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2 or X.shape[0] == 0 or X.dtype.kind not in "biuf":
        raise InputError(f"X in '{path}' must be a non-empty 2-D numeric array, got shape "
                         f"{X.shape} of {X.dtype}")
    return X.astype(np.float64), y, None, {}


def _image_folder(path):
    X, y, shape, schema = read_image_folder(path)
    return X, y, schema, {"image_shape": shape}


def _task(y, task, path):
    """The task the data serves: as asked, or inferred from the targets."""
    if task is not None and task not in SUPERVISED:
        return task  # unsupervised learners take the features and leave y
    if y is None:
        if task in SUPERVISED:
            raise InputError(f"'{path}' holds no targets: a {task} needs a table with a "
                             "target column or an .npz with arrays X and y")
        return "clustering"
    if task is not None:
        return task
    if y.dtype.kind not in "biuf":
        return "classification"
    integral = y.dtype.kind in "biu" or bool(np.all(np.mod(y, 1) == 0))
    small = np.unique(y).shape[0] <= MAX_CLASSES_INFERRED
    return "classification" if integral and small else "regression"


def _targets(y, task, path):
    if task == "regression":
        if y.dtype.kind not in "biuf":
            raise InputError(f"the target of '{path}' is not numeric; a regression needs "
                             "numbers")
        y = y.astype(np.float64)
        if not np.isfinite(y).all():
            raise InputError(f"the target of '{path}' has NaN or infinite values")
        return y
    return y.astype(str) if y.dtype == object else y


def schema_from_json(document, where):
    """The input schema a model file stores (a table's or an image folder's)."""
    kinds = {"table": TableSchema, "images": ImageSchema}
    kind = document.get("kind") if isinstance(document, dict) else None
    if kind not in kinds:
        raise ModelFileError(f"{where} has an input schema of unknown kind {kind!r}")
    return kinds[kind].from_json(document, where)
