"""Tables of one's own (CSV, TSV, Parquet) as learner input, through pyarrow's readers.

A `TableSchema` is learned from the training table: which column is the target, and how
each feature column becomes numbers — numeric columns as they are, booleans as 0/1, text
columns one-hot (up to MAX_ONE_HOT categories) or ordinal — and what fills missing values
when imputing was asked for. A column of free text (a median of MIN_DOCUMENT_WORDS words
or more) is documents instead: the table's rows are then those documents, for a text
pipeline to read. It is stored in the model file, so a prediction reads new
files exactly as training did, and a file of other columns is refused by name.
"""

import dataclasses
import os

import numpy as np

from nanoml.errors import DatasetUnavailableError, InputError, ModelFileError, ParameterError

MAX_ONE_HOT = 32  # more categories than this: one ordinal column instead of one-hot
MIN_DOCUMENT_WORDS = 4
IMPUTE = ("mean", "median", "most-frequent")
TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t", ".tab": "\t", ".parquet": None, ".pq": None}


@dataclasses.dataclass
class Column:
    """How one feature column becomes numbers: `kind` is number, boolean, one-hot or
    ordinal (or text: documents, left as they are); `categories` the known values of a
    text column; `fill` replaces missing values (None: missing values are refused)."""

    name: str
    kind: str
    categories: list = dataclasses.field(default_factory=list)
    fill: object = None

    @property
    def width(self):
        return len(self.categories) if self.kind == "one-hot" else 1

    @property
    def arrow_type(self):
        """The type every file's column is read as."""
        import pyarrow as pa

        kinds = {"number": pa.float64(), "boolean": pa.bool_()}
        return kinds.get(self.kind, pa.string())


@dataclasses.dataclass
class TableSchema:
    """The columns a model was trained on and how they were encoded (see module doc)."""

    columns: list
    target: str = None

    @property
    def feature_names(self):
        """One name per encoded feature: a one-hot column's are ``column=value``."""
        names = []
        for c in self.columns:
            if c.kind == "one-hot":
                names.extend(f"{c.name}={v}" for v in c.categories)
            else:
                names.append(c.name)
        return names

    def to_json(self):
        return {"kind": "table", "columns": [dataclasses.asdict(c) for c in self.columns],
                "target": self.target}

    @classmethod
    def from_json(cls, document, where):
        """The schema stored in a model file; anything malformed is a ModelFileError."""
        try:
            columns = [Column(**c) for c in document["columns"]]
            target = document.get("target")
            for c in columns:
                if c.kind not in ("number", "boolean", "one-hot", "ordinal", "text") or not (
                    isinstance(c.name, str) and isinstance(c.categories, list)
                ):
                    raise ValueError(f"column {c.name!r} of kind {c.kind!r}")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelFileError(f"{where} has a damaged input schema ({exc})") from None
        return cls(columns, target)

    @property
    def reads_documents(self):
        """Whether the rows are documents (one column of free text), not numbers."""
        return any(c.kind == "text" for c in self.columns)

    def column_types(self):
        """Column name -> the Arrow type to read it as, so every file reads alike."""
        return {c.name: c.arrow_type for c in self.columns}

    def encode(self, table, where="the data"):
        """Feature matrix (float64) of `table`, encoded as at training; refuses missing
        columns by name, missing values not imputed, and unseen categories of ordinal
        columns (unseen one-hot values get all zeros)."""
        missing = [c.name for c in self.columns if c.name not in table.column_names]
        if missing:
            raise InputError(
                f"{where} lacks the column(s) {', '.join(map(repr, missing))} the model was "
                f"trained on (it has {', '.join(map(repr, table.column_names))})"
            )
        if self.reads_documents:  # one column: the documents, as a text pipeline reads them
            return _filled(table.column(self.columns[0].name), self.columns[0],
                           where).astype(object)[:, None]
        # Filled column by column in Fortran order, then made C-contiguous in one blocked
        # copy: writing columns of a C-ordered array strides through memory (1.6x slower).
        X = np.empty((table.num_rows, sum(c.width for c in self.columns)), order="F")
        at = 0
        for column in self.columns:
            values = _filled(table.column(column.name), column, where)
            if column.kind == "one-hot":
                codes = _category_codes(values, column.categories)
                block = X[:, at:at + column.width]
                block[:] = 0.0
                known = codes >= 0
                block[np.flatnonzero(known), codes[known]] = 1.0
            elif column.kind == "ordinal":
                codes = _category_codes(values, column.categories)
                if (codes < 0).any():
                    row = int(np.flatnonzero(codes < 0)[0])
                    raise InputError(
                        f"column '{column.name}' of {where} has the value "
                        f"{str(values[row])!r} (row {row + 1}), never seen in training"
                    )
                X[:, at] = codes
            else:
                X[:, at] = values
            at += column.width
        return np.ascontiguousarray(X)


def _filled(array, column, where):
    """The column's values as NumPy (str for text, float64 otherwise), missing ones filled
    with `column.fill`, or an InputError naming the column when it has none."""
    import pyarrow as pa
    import pyarrow.compute as pc

    array = array.cast(column.arrow_type) if array.type != column.arrow_type else array
    missing = array.is_null()
    if pa.types.is_floating(array.type):
        missing = pc.or_kleene(missing, pc.is_nan(array))  # a null stays missing
    n_missing = pc.sum(missing).as_py() or 0
    if n_missing:
        if column.fill is None:
            first = int(np.flatnonzero(missing.to_numpy(zero_copy_only=False))[0])
            raise InputError(
                f"column '{column.name}' of {where} has {n_missing} missing value(s), the "
                f"first in row {first + 1}; fill them in, or impute them ({', '.join(IMPUTE)})"
            )
        array = pc.if_else(missing, pa.scalar(column.fill, column.arrow_type), array)
    if column.kind in ("one-hot", "ordinal", "text"):
        return np.asarray(array.to_pylist(), dtype=str)
    return array.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)


def _category_codes(values, categories):
    """Index of each value among the sorted `categories`; -1 for an unseen one."""
    known = np.asarray(categories, dtype=str)
    codes = np.searchsorted(known, values)
    codes = np.minimum(codes, max(len(known) - 1, 0))
    found = known[codes] == values if len(known) else np.zeros(len(values), bool)
    return np.where(found, codes, -1)


def learn_schema(table, target, impute=None):
    """The TableSchema of a training `table` whose target column is `target`."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if impute is not None and impute not in IMPUTE:
        raise ParameterError(
            f"impute must be one of {', '.join(IMPUTE)}, got {impute!r}", argument="impute"
        )
    columns = []
    for name in table.column_names:
        if name == target:
            continue
        array = table.column(name)
        kind_of = array.type
        if pa.types.is_boolean(kind_of):
            column = Column(name, "boolean")
        elif pa.types.is_integer(kind_of) or pa.types.is_floating(kind_of):
            column = Column(name, "number")
        elif pa.types.is_null(kind_of):
            raise InputError(f"column '{name}' is empty in every row; remove it")
        elif is_free_text(array):
            column = Column(name, "text")
        else:
            text = array.cast(pa.string())
            categories = sorted(v for v in pc.unique(text).to_pylist() if v is not None)
            kind = "one-hot" if len(categories) <= MAX_ONE_HOT else "ordinal"
            column = Column(name, kind, categories)
        if impute is not None:
            column.fill = "" if column.kind == "text" else _fill_value(table.column(name),
                                                                       column, impute)
        columns.append(column)
    if not columns:
        raise InputError(f"the table has no feature columns besides the target '{target}'")
    text = [c.name for c in columns if c.kind == "text"]
    if text and len(columns) > 1:
        raise InputError(
            f"column '{text[0]}' holds free text, read as documents; a table of documents "
            f"has that one column besides the target '{target}': remove the others "
            f"({', '.join(repr(c.name) for c in columns if c.name != text[0])})")
    return TableSchema(columns, target)


def is_free_text(array):
    """Whether a pyarrow column of text is free text: a median of MIN_DOCUMENT_WORDS words
    or more a value (else its values are categories)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        return False
    values = pc.drop_null(pc.utf8_trim_whitespace(array))
    if len(values) == 0:
        return False
    gaps = pc.count_substring_regex(values, r"\s+").to_numpy(zero_copy_only=False)
    return float(np.median(gaps)) + 1 >= MIN_DOCUMENT_WORDS


def table_reads_documents(path, rows=1000):
    """Whether the table file at `path` holds documents (a column of free text), judged
    from its first `rows` rows; False for anything that is not a readable table."""
    if os.path.splitext(str(path))[1].lower() not in TABLE_SUFFIXES or not os.path.isfile(path):
        return False
    try:
        batch = next(iter_table(path, rows=rows), None)
    except (InputError, DatasetUnavailableError):
        return False
    return batch is not None and any(is_free_text(column) for column in batch.columns)


def _fill_value(array, column, impute):
    """What replaces a missing value of `column`: its mean, median or most frequent value;
    text columns always take the most frequent."""
    import pyarrow as pa
    import pyarrow.compute as pc

    array = array.cast(column.arrow_type)
    if pa.types.is_floating(array.type):
        array = pc.drop_null(pc.if_else(pc.is_nan(array), None, array))
    else:
        array = pc.drop_null(array)
    if len(array) == 0:
        raise InputError(f"column '{column.name}' has no value to impute from")
    if column.kind in ("one-hot", "ordinal") or impute == "most-frequent":
        counts = pc.value_counts(array)
        values, tallies = counts.field("values").to_pylist(), counts.field("counts").to_pylist()
        return max(zip(tallies, values, strict=True), key=lambda tv: (tv[0], str(tv[1])))[1]
    values = array.to_numpy(zero_copy_only=False).astype(np.float64)
    return float(values.mean() if impute == "mean" else np.median(values))


def read_numbers(path):
    """(column names, values, integer) of a CSV/TSV file of numbers only, parsed in parallel
    (see `nanoml.data.numeric_csv`); None for any other table, which `read_table` reads."""
    from nanoml.data.numeric_csv import read_numeric_csv

    delimiter = TABLE_SUFFIXES[_suffix(path)]
    if delimiter is None:
        return None
    try:
        return read_numeric_csv(path, delimiter)
    except FileNotFoundError:
        raise DatasetUnavailableError(f"data file '{path}' does not exist") from None
    except OSError:
        return None  # pyarrow's reader says what is wrong


def numbers_table(names, values, integer, rows=slice(None)):
    """`rows` of the parsed numbers as a pyarrow Table, each column typed as pyarrow's CSV
    reader types it (int64 where a column holds integers only)."""
    import pyarrow as pa

    columns = [values[rows, j].astype(np.int64 if integer[j] else np.float64)
               for j in range(len(names))]
    return pa.table(dict(zip(names, columns, strict=True)))


def csv_parts(path, rows):
    """(column names, [(start, end), ...]) cutting the CSV/TSV file at `path` into byte
    ranges of about `rows` rows each, at line starts, that `read_part` reads apart from
    one another; None where a cut would fall inside a quoted field (or the header is one
    `read_table` must read)."""
    from nanoml.data.numeric_csv import header

    delimiter = TABLE_SUFFIXES[_suffix(path)]
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        raise DatasetUnavailableError(f"data file '{path}' does not exist") from None
    with fh:
        size = os.fstat(fh.fileno()).st_size
        head = np.frombuffer(fh.read(1 << 20), dtype=np.uint8)
        names, begin = header(head, delimiter) if head.shape[0] else (None, 0)
        if names is None or begin >= size:
            return None
        sample = head[begin:]
        part_bytes = max(1, int(rows * sample.shape[0]
                                / max(1, int(np.count_nonzero(sample == 10)))))
        cuts = [begin]
        while cuts[-1] + part_bytes < size:
            cuts.append(_next_line(fh, cuts[-1] + part_bytes))
        cuts = sorted(set(c for c in cuts if c < size)) + [size]
        quotes = 0
        for start, end in zip(cuts[:-1], cuts[1:], strict=True):
            quotes += _count_quotes(fh, start, end)
            if quotes % 2:  # a quoted field spans the cut at `end`
                return None
    return names, list(zip(cuts[:-1], cuts[1:], strict=True))


def _next_line(fh, at):
    """The offset of the first line start at or after `at` in the file `fh`."""
    fh.seek(at - 1)
    while True:
        block = fh.read(1 << 16)
        end = block.find(b"\n")
        if end >= 0 or not block:
            return at + end if end >= 0 else at + len(block) - 1
        at += len(block)


def _count_quotes(fh, start, end):
    """Double quotes among bytes start:end of the file `fh`, counted on a mapped window
    (no copy, and unmapped after: the file's pages stay out of this process)."""
    import mmap

    from nanoml.data import csv_kernels

    offset = start - start % mmap.ALLOCATIONGRANULARITY
    window = mmap.mmap(fh.fileno(), end - offset, offset=offset, access=mmap.ACCESS_READ)
    try:
        buf = np.frombuffer(window, dtype=np.uint8)
        bounds = np.linspace(start - offset, end - offset, 9).astype(np.int64)
        counts = np.empty(8, dtype=np.int64)
        csv_kernels.count_byte(buf, bounds[:-1], bounds[1:], ord('"'), counts)
        del buf
        return int(counts.sum())
    finally:
        window.close()


def read_part(path, names, start, end, column_types=None, numbers=True):
    """The rows in bytes start:end of the CSV/TSV file at `path` (a range of `csv_parts`),
    whose columns are `names`: with `numbers`, (names, values, integer) as
    `read_numbers` gives them where every field is a number, else a pyarrow Table."""
    from nanoml.data.numeric_csv import parse_numeric

    delimiter = TABLE_SUFFIXES[_suffix(path)]
    with open(path, "rb") as fh:
        fh.seek(start)
        data = fh.read(end - start)
    if numbers:
        parsed = parse_numeric(np.frombuffer(data, dtype=np.uint8), delimiter, names)
        if parsed is not None:
            return parsed
    import io

    import pyarrow.csv as pacsv

    try:
        return pacsv.read_csv(io.BytesIO(data),
                              read_options=pacsv.ReadOptions(column_names=names),
                              parse_options=_parse_options(_suffix(path)),
                              convert_options=_convert_options(column_types))
    except Exception as exc:
        raise InputError(f"cannot read '{path}': {_arrow_reason(exc)}") from None


def read_table(path, column_types=None):
    """A whole CSV/TSV/Parquet file as a pyarrow Table; defects are one-line errors."""
    suffix = _suffix(path)
    try:
        if TABLE_SUFFIXES[suffix] is None:
            import pyarrow.parquet as pq

            table = pq.read_table(path)
            if column_types:
                table = _cast(table, column_types)
        else:
            import pyarrow.csv as pacsv

            table = pacsv.read_csv(path, parse_options=_parse_options(suffix),
                                   convert_options=_convert_options(column_types))
    except FileNotFoundError:
        raise DatasetUnavailableError(f"data file '{path}' does not exist") from None
    except Exception as exc:  # pyarrow's errors: ragged rows, bad bytes, not Parquet ...
        raise InputError(f"cannot read '{path}': {_arrow_reason(exc)}") from None
    if table.num_rows == 0:
        raise InputError(f"'{path}' holds no rows")
    return table


def iter_table(path, column_types=None, rows=65536):
    """A CSV/TSV/Parquet file as pyarrow record batches of about `rows` rows, read as
    they are needed, so a file larger than memory streams through."""
    suffix = _suffix(path)
    try:
        if TABLE_SUFFIXES[suffix] is None:
            import pyarrow.parquet as pq

            batches = pq.ParquetFile(path).iter_batches(batch_size=rows)
        else:
            import pyarrow.csv as pacsv

            # ~100 bytes a row is a guess for the block size; blocks only bound memory
            read = pacsv.ReadOptions(block_size=max(1 << 20, rows * 100))
            batches = pacsv.open_csv(path, read_options=read,
                                     parse_options=_parse_options(suffix),
                                     convert_options=_convert_options(column_types))
        parquet = TABLE_SUFFIXES[suffix] is None  # CSV batches come typed by the reader
        for batch in batches:
            yield _cast(batch, column_types) if parquet and column_types else batch
    except FileNotFoundError:
        raise DatasetUnavailableError(f"data file '{path}' does not exist") from None
    except (InputError, DatasetUnavailableError):
        raise
    except Exception as exc:
        raise InputError(f"cannot read '{path}': {_arrow_reason(exc)}") from None


def _suffix(path):
    suffix = os.path.splitext(str(path))[1].lower()
    if suffix not in TABLE_SUFFIXES:
        raise InputError(
            f"'{path}' is not a table file nanoml reads (known: {', '.join(TABLE_SUFFIXES)})"
        )
    return suffix


def _parse_options(suffix):
    import pyarrow.csv as pacsv

    return pacsv.ParseOptions(delimiter=TABLE_SUFFIXES[suffix])


def _convert_options(column_types):
    import pyarrow.csv as pacsv

    return pacsv.ConvertOptions(column_types=column_types or {}, strings_can_be_null=True)


def _cast(table, column_types):
    """`table` (or a record batch) with the named columns cast to their types."""
    import pyarrow as pa

    fields = [
        pa.field(f.name, column_types.get(f.name, f.type)) for f in table.schema
    ]
    try:
        return table.cast(pa.schema(fields))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise InputError(f"a column cannot be read as the model expects: {exc}") from None


def _arrow_reason(exc):
    """pyarrow's message, first line only (it appends the offending row on later lines)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
