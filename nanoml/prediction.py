"""A saved model applied to files: predictions written chunk by chunk, and evaluation.

The file is read in chunks and each chunk is encoded the way the model's training data
was (the input schema in the model file), so a file larger than memory streams through.
With a Dask client the chunks are predicted on the cluster's workers: the model file is
sent to each worker once; each worker reads and encodes its own parts of a CSV file (byte
ranges cut at line starts), so the client only cuts, collects and writes, in file order.
"""

import collections
import hashlib
import os
import sys
import tempfile

import numpy as np

from nanoml import modelfile
from nanoml.data.files import numbers_matrix, read_arrays, schema_from_json
from nanoml.data.images import ImageSchema, image_files
from nanoml.data.tables import (
    TABLE_SUFFIXES,
    TableSchema,
    csv_parts,
    iter_table,
    numbers_table,
    read_part,
)
from nanoml.errors import InputError, ParameterError

CHUNK_ROWS = 65536
IMAGE_CHUNK = 512
_LOADED = {}  # model digest -> learner, per process (a Dask worker loads each model once)


def read_model(path):
    """(learner, input schema or None) of a model file."""
    from nanoml.learner import Learner

    model = Learner.load(path)
    inputs = modelfile.load(path, header_only=True)[0].get("inputs")
    return model, None if inputs is None else schema_from_json(inputs, f"'{path}'")


def chunks(path, schema, n_features, rows=CHUNK_ROWS):
    """(ids, X, targets or None) of successive chunks of the file or folder at `path`,
    encoded as `schema` says; ids name each row (row numbers, or image files)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        yield from _image_chunks(path, schema)
        return
    suffix = os.path.splitext(path)[1].lower()
    if suffix in (".npy", ".npz"):
        yield from _array_chunks(path, n_features, rows)
        return
    if isinstance(schema, ImageSchema):
        raise InputError(f"the model reads images; '{path}' is not a folder of images")
    start = 0
    parts = _csv_parts(path, rows)
    if parts is not None:
        inputs = (_part_input(path, part, schema, n_features) for part in parts)
    else:
        import pyarrow as pa

        types = schema.column_types() if schema is not None else None
        inputs = (_table_input(pa.Table.from_batches([batch]), schema, n_features, path)
                  for batch in iter_table(path, types, rows))
    for X, targets in inputs:
        ids = np.arange(start, start + X.shape[0])
        start += X.shape[0]
        yield ids, X, targets


def _csv_parts(path, rows):
    """[(names, start, end), ...]: the parts of a CSV/TSV file that are read apart, each
    by whichever process predicts it; None for other files, or where a CSV file must be
    read from its start."""
    suffix = os.path.splitext(path)[1].lower()
    if TABLE_SUFFIXES.get(suffix, None) is None:
        return None
    found = csv_parts(path, rows)
    if found is None:
        return None
    names, ranges = found
    return [(names, start, end) for start, end in ranges]


def _part_input(path, part, schema, n_features):
    """(X, targets or None) of one part of `_csv_parts`, encoded as `schema` says."""
    names, start, end = part
    numbers = schema is None or all(c.kind == "number" for c in schema.columns)
    types = schema.column_types() if schema is not None else None
    data = read_part(path, names, start, end, types, numbers)
    if not isinstance(data, tuple):
        return _table_input(data, schema, n_features, path)
    if schema is None:
        if data[1].shape[1] != n_features:
            raise InputError(f"'{path}' has {data[1].shape[1]} columns but the model was "
                             f"trained on {n_features} features")
        return data[1], None
    if all(c.name in names for c in schema.columns):
        return numbers_matrix(*data, schema)
    return _table_input(numbers_table(*data), schema, n_features, path)


def _table_input(table, schema, n_features, path):
    """(X, targets or None) of a pyarrow table, encoded as `schema` says."""
    where = f"'{path}'"
    if schema is None:
        return _numeric_columns(table, n_features, where), None
    has_target = schema.target in table.column_names
    targets = table.column(schema.target).to_numpy(zero_copy_only=False) \
        if has_target else None
    return schema.encode(table, where), targets


def _numeric_columns(table, n_features, where):
    """Every column as a feature, for a model trained without a table schema; or, for a
    model of documents (`n_features` None), the one column's text."""
    if n_features is None:
        if table.num_columns != 1:
            raise InputError(f"{where} has {table.num_columns} columns; the model reads "
                             "documents: give a table of one text column")
        return np.asarray(table.column(0).cast("string").to_pylist(), dtype=object)[:, None]
    if table.num_columns != n_features:
        raise InputError(f"{where} has {table.num_columns} columns but the model was trained "
                         f"on {n_features} features")
    try:
        return np.column_stack([c.to_numpy(zero_copy_only=False).astype(np.float64)
                                for c in table.columns])
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where} has a column that is not numeric ({exc})") from None


def _array_chunks(path, n_features, rows):
    X, y = read_arrays(path, mmap=True)
    X = X.reshape(X.shape[0], -1) if X.ndim != 2 else X
    if X.shape[1] != n_features:
        raise InputError(f"X in '{path}' has {X.shape[1]} features but the model was trained "
                         f"on {n_features}")
    for start in range(0, X.shape[0], rows):
        part = slice(start, start + rows)
        yield np.arange(start, min(start + rows, X.shape[0])), \
            np.asarray(X[part], dtype=np.float64), None if y is None else y[part]


def _image_chunks(path, schema):
    if not isinstance(schema, ImageSchema):
        raise InputError(f"'{path}' is a folder, but the model was not trained on images")
    paths = image_files(path)
    if not paths:
        raise InputError(f"'{path}' holds no PNG or JPEG images")
    for start in range(0, len(paths), IMAGE_CHUNK):
        part = paths[start:start + IMAGE_CHUNK]
        labels = [os.path.basename(os.path.dirname(p)) for p in part]
        yield np.asarray(part), schema.read(part), np.asarray(labels)


def _outputs(model, X, proba):
    """Predictions of one chunk: {column name: values}."""
    if proba:
        probs = model.predict_proba(X)
        return {f"proba_{c}": probs[:, i] for i, c in enumerate(model.classes_)}
    return {"prediction": np.asarray(model.predict(X))}


def _remote_outputs(digest, model_bytes, task, proba):
    """`_outputs` on a Dask worker, which loads each model file once: of the rows X when
    `task` is ("rows", X), or of a part of a CSV file it reads itself when `task` is
    ("part", path, part, schema document, n_features); -> (rows, outputs)."""
    model = _LOADED.get(digest)
    if model is None:
        from nanoml.learner import Learner

        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "model.npz")
            with open(path, "wb") as fh:
                fh.write(model_bytes)
            model = _LOADED[digest] = Learner.load(path)
    if task[0] == "rows":
        X = task[1]
    else:
        _, path, part, document, n_features = task
        schema = None if document is None else TableSchema.from_json(document, "the model")
        X = _part_input(path, part, schema, n_features)[0]
    return X.shape[0], _outputs(model, X, proba)


def predict_file(model_path, data_path, out=None, *, proba=False, client=None,
                 rows=CHUNK_ROWS):
    """Write the predictions of the model at `model_path` for the file or folder at
    `data_path` to `out` (CSV, or Parquet by its name; None: CSV on standard output);
    -> the number of rows predicted. `client`: a dask.distributed Client whose workers
    predict the chunks; each reads its own parts of a CSV file (at the same path)."""
    model, schema = read_model(model_path)
    data_path = os.fspath(data_path)
    if proba and not hasattr(model, "predict_proba"):
        raise ParameterError(f"learner '{model.name}' gives no class probabilities",
                             argument="proba")
    n_features = getattr(model, "n_features_in_", None)  # None: the model reads documents
    written = 0
    with _Writer(out, id_name="file" if os.path.isdir(data_path) else "row") as writer:
        if client is None:
            for ids, X, _ in chunks(data_path, schema, n_features, rows):
                writer.write(ids, _outputs(model, X, proba))
                written += len(ids)
        else:
            for ids, n, outputs in _on_cluster(client, model_path, data_path, schema,
                                               n_features, proba, rows):
                writer.write(np.arange(written, written + n) if ids is None else ids, outputs)
                written += n
        if written == 0:
            raise InputError(f"'{data_path}' holds no rows to predict")
    return written


def _on_cluster(client, model_path, data_path, schema, n_features, proba, rows):
    """(ids or None, rows, outputs) of each chunk in file order, predicted on the cluster's
    workers: the parts of a CSV file are read by the workers (ids None: row numbers),
    other files' chunks here."""
    with open(model_path, "rb") as fh:
        data = fh.read()
    digest = hashlib.sha256(data).hexdigest()
    sent_model = client.scatter(data, broadcast=True)
    # at most two chunks a worker in flight: memory stays bounded
    in_flight = 2 * max(1, len(client.scheduler_info()["workers"]))
    parts = None if os.path.isdir(data_path) else _csv_parts(data_path, rows)
    if parts is not None:
        document = schema.to_json() if isinstance(schema, TableSchema) else None
        tasks = ((None, ("part", data_path, part, document, n_features)) for part in parts)
    else:
        tasks = ((ids, ("rows", X)) for ids, X, _ in chunks(data_path, schema, n_features,
                                                             rows))
    pending = collections.deque()
    for ids, task in tasks:
        pending.append((ids, client.submit(_remote_outputs, digest, sent_model, task, proba,
                                           pure=False)))
        while len(pending) > in_flight:
            ids, future = pending.popleft()
            yield (ids, *future.result())
    while pending:
        ids, future = pending.popleft()
        yield (ids, *future.result())


def evaluate_file(model_path, data_path):
    """The model's metrics on the labelled file or folder at `data_path`."""
    model, schema = read_model(model_path)
    parts, targets = [], []
    for _, X, y in chunks(data_path, schema, getattr(model, "n_features_in_", None)):
        if y is None:
            raise InputError(f"'{data_path}' holds no targets to evaluate against"
                             + (f" (no column '{schema.target}')" if isinstance(
                                 schema, TableSchema) else ""))
        parts.append(X)
        targets.append(y)
    y = np.concatenate(targets)
    if model.task == "regression":
        y = y.astype(np.float64)
    elif y.dtype.kind != model.classes_.dtype.kind and y.dtype.kind in "OU":
        y = y.astype(model.classes_.dtype)
    return model.evaluate(np.concatenate(parts), y)


class _Writer:
    """Prediction rows to a CSV or Parquet file (written beside it, then renamed into
    place) or to standard output as CSV, one chunk at a time."""

    def __init__(self, out, id_name):
        self.out, self.id_name = out, id_name
        self.sink = self.writer = self.tmp = None

    def __enter__(self):
        return self

    def write(self, ids, columns):
        import pyarrow as pa

        table = pa.table({self.id_name: ids, **columns})
        if self.writer is None:
            self._open(table.schema)
        self.writer.write_table(table)

    def _open(self, schema):
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        parquet = self.out is not None and str(self.out).lower().endswith((".parquet", ".pq"))
        if self.out is None:
            self.sink = sys.stdout.buffer
        else:
            folder = os.path.dirname(os.path.abspath(self.out))
            fd, self.tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
            self.sink = os.fdopen(fd, "wb")
        self.writer = pq.ParquetWriter(self.sink, schema) if parquet \
            else pacsv.CSVWriter(self.sink, schema)

    def __exit__(self, kind, error, trace):
        if self.writer is not None:
            self.writer.close()
        if self.tmp is None:
            if self.sink is not None:
                self.sink.flush()
            return False
        self.sink.close()
        if kind is None:
            os.replace(self.tmp, self.out)
        else:
            os.unlink(self.tmp)
        return False
