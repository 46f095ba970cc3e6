"""The fast reader of CSV files of numbers (nanoml.data.numeric_csv and its kernels):
every number as float() rounds it, the file as pyarrow reads it, anything else left to
pyarrow, and files cut into parts that read apart."""

import numpy as np
import pytest

from nanoml.data import csv_kernels, files, load_file, numeric_csv
from nanoml.data.tables import csv_parts, read_numbers, read_part

EDGE_CASES = [
    "0", "-0", "0.0", "-0.0", "+1", "1.", ".5", "-.5e-3", "1e5", "1E+05", "007", "00.100",
    "9007199254740992", "9007199254740993", "9007199254740995", "18014398509481985",
    "0.1", "0.2", "0.3", "1e23", "8.98846567431158e307", "1.7976931348623157e308",
    "1.7976931348623158e308", "1.7976931348623159e308", "1e309", "-1e400",
    "2.2250738585072011e-308", "2.2250738585072014e-308", "4.9406564584124654e-324",
    "2.4703282292062327e-324",
    "2.4703282292062328e-324", "1e-400", "123456789012345678901234567890",
    "0.000000000000000000001234567890123456789", "1.00000000000000000000000000001",
    "9999999999999999999", "99999999999999999999", "3.14159265358979323846264338327950288",
    "7.2057594037927933e16", "1.0000000000000002", "0.30000000000000004", "5e-324", "1e22",
    "1e-22", "123456789e-30", "4503599627370497.5", "4503599627370496.5",
]


def _random_numbers(n, seed=0):
    """Decimal strings of many kinds: repr() of doubles over the whole range, 17 and 25
    significant digits, short decimals, subnormals and integers."""
    rng = np.random.default_rng(seed)
    wide = rng.standard_normal(n) * 10.0 ** rng.integers(-300, 300, n)
    texts = [repr(float(v)) for v in wide]
    texts += [f"{v:.16e}" for v in rng.standard_normal(n // 4)]
    texts += [f"{v:.3f}" for v in rng.standard_normal(n // 4) * 1e3]
    texts += [repr(float(v)) for v in rng.random(n // 8) * 1e-310]
    texts += [str(v) for v in rng.integers(-10**15, 10**15, n // 8)]
    texts += [f"{v:.24e}" for v in rng.standard_normal(40)]  # beyond 19 digits: float()
    return texts


def _parse(texts, columns=1):
    rows = [",".join(texts[i:i + columns])
            for i in range(0, len(texts) - len(texts) % columns, columns)]
    text = ",".join(f"c{j}" for j in range(columns)) + "\n" + "\n".join(rows) + "\n"
    return numeric_csv.parse_numeric(np.frombuffer(text.encode(), np.uint8), ",")


def _bits(values):
    return np.asarray(values, dtype=np.float64).view(np.uint64)


def test_every_number_is_rounded_as_float_does():
    texts = EDGE_CASES + _random_numbers(20000)
    names, values, integer = _parse(texts)
    assert names == ["c0"] and not integer[0]
    expected = [float(t) for t in texts]
    wrong = np.flatnonzero(_bits(values[:, 0]) != _bits(expected))
    assert wrong.size == 0, [(texts[i], values[i, 0], expected[i]) for i in wrong[:5]]


def test_eisel_lemire_matches_exact_decimal_rounding():
    rng = np.random.default_rng(1)
    for _ in range(3000):
        w = int(rng.integers(1, 2**63)) * int(rng.integers(1, 3))
        q = int(rng.integers(csv_kernels.SMALLEST_POWER, csv_kernels.LARGEST_POWER + 1))
        bits, decided = csv_kernels.eisel_lemire(np.uint64(w), q)
        if decided:  # undecided ones go to float(), checked above
            assert int(bits) == int(_bits(float(f"{w}e{q}"))), (w, q)


def test_parallel_chunks_give_the_serial_result(monkeypatch):
    texts = _random_numbers(4000, seed=2)
    whole = _parse(texts, columns=5)
    monkeypatch.setattr(numeric_csv, "CHUNK_BYTES", 512)
    chunked = _parse(texts, columns=5)
    assert whole[0] == chunked[0] and (whole[2] == chunked[2]).all()
    np.testing.assert_array_equal(_bits(whole[1]), _bits(chunked[1]))


def test_a_file_reads_as_pyarrow_reads_it(tmp_path):
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(3)
    table = pa.table({"a": rng.standard_normal(3000), "b": rng.integers(-50, 50, 3000),
                      "c": rng.random(3000) * 1e-5, "label": rng.integers(0, 3, 3000)})
    for name, options in [("plain.csv", {}), ("tabs.tsv", {"delimiter": "\t"})]:
        path = tmp_path / name
        pacsv.write_csv(table, path, pacsv.WriteOptions(**options))
        names, values, integer = read_numbers(str(path))
        read = pacsv.read_csv(path, parse_options=pacsv.ParseOptions(**options))
        assert names == read.column_names
        assert integer.tolist() == [pa.types.is_integer(t) for t in read.schema.types]
        for j, column in enumerate(read.columns):
            np.testing.assert_array_equal(
                _bits(values[:, j]), _bits(column.to_numpy().astype(np.float64)))


@pytest.mark.parametrize("text, numbers", [
    (b"a,b\n1,2\n3,4", True),  # no line end at the end
    (b"a,b\r\n1,2\r\n3,4\r\n", True),
    (b'"a","b"\n1,2\n', True),  # names quoted whole, as pyarrow writes them
    (b"a,b\n1,2\n3\n", False),  # ragged
    (b"a,b\n1,2\n3,4,5\n", False),
    (b"a,b\n1,\n3,4\n", False),  # missing value
    (b"a,b\n1,2\n\n3,4\n", False),  # blank line
    (b"a,b\n1,x\n", False),
    (b'a,b\n1,"2"\n', False),
    (b"a,b\n1,nan\n", False),
    (b"a,b\n1,inf\n", False),
    (b"a,b\n1, 2\n", False),
    (b"a,b\n1,1e\n", False),
    (b"a,b\n1,-\n", False),
    (b"a,b\n", False),  # no rows
    (b"", False),
    (b"\xef\xbb\xbfa,b\n1,2\n", False),
    (b"a,a\n1,2\n", False),
    (b"a,b\n1,12345678901234567\n", False),  # an int64 a double cannot hold
])
def test_only_plain_numbers_take_the_fast_path(tmp_path, text, numbers):
    path = tmp_path / "t.csv"
    path.write_bytes(text)
    assert (read_numbers(str(path)) is not None) == numbers


def test_parts_cut_at_line_starts_read_as_the_whole(tmp_path):
    texts = _random_numbers(3000, seed=4)
    path = tmp_path / "n.csv"
    rows = [",".join(texts[i:i + 3]) for i in range(0, len(texts) - 2, 3)]
    path.write_text("x,y,z\n" + "\n".join(rows))
    names, ranges = csv_parts(str(path), rows=37)
    assert len(ranges) > 20 and ranges[-1][1] == path.stat().st_size
    parts = [read_part(str(path), names, a, b) for a, b in ranges]
    whole = read_numbers(str(path))
    np.testing.assert_array_equal(_bits(np.vstack([p[1] for p in parts])), _bits(whole[1]))
    text = read_part(str(path), names, *ranges[1], numbers=False)
    assert text.num_rows == parts[1][1].shape[0]


def test_a_quoted_field_across_lines_is_never_cut(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text("note,x\n" + "".join(f'"line {i}\nmore",{i}\n' for i in range(200)))
    assert csv_parts(str(path), rows=3) is None
    path.write_text("note,x\n" + "".join(f'"line {i}",{i}\n' for i in range(200)))
    assert len(csv_parts(str(path), rows=3)[1]) > 10


@pytest.mark.parametrize("target, impute", [(None, None), ("b", "mean")])
def test_load_file_gives_the_dataset_pyarrow_gives(tmp_path, monkeypatch, target, impute):
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(5)
    path = tmp_path / "numbers.csv"
    pacsv.write_csv(pa.table({"a": rng.standard_normal(400), "b": rng.integers(0, 3, 400),
                              "c": rng.random(400), "y": rng.integers(0, 2, 400)}), path)
    fast = load_file(path, target=target, impute=impute)
    monkeypatch.setattr(files, "read_numbers", lambda path: None)
    slow = load_file(path, target=target, impute=impute)
    assert fast.schema.to_json() == slow.schema.to_json() and fast.task == slow.task
    for name in ("X_train", "y_train", "X_test", "y_test"):
        a, b = getattr(fast, name), getattr(slow, name)
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
