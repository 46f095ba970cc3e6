"""The user's own files: reading a large numeric CSV beside pandas, and `nanoml predict`
streaming it through a random forest, in one process and on Dask workers, its peak memory
flat in the file's size."""

import os
import shutil
import tempfile

import numpy as np

ROWS, COLUMNS = 1_000_000, 20


def _numeric_csv(folder, rows=ROWS):
    """A CSV of `rows` x COLUMNS standard-normal numbers and a 0/1 target column `y`."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(0)
    X = rng.standard_normal((rows, COLUMNS))
    columns = {f"x{i}": X[:, i] for i in range(COLUMNS)}
    columns["y"] = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    path = os.path.join(folder, "numbers.csv")
    pacsv.write_csv(pa.table(columns), path)
    return path


class ReadCSV:
    """1,000,000 rows x 20 numeric columns: nanoml's reader (to the split Dataset, and the
    parse alone) beside pandas' read_csv (to a DataFrame)."""

    timeout = 600
    number = 1
    repeat = 3

    def setup_cache(self):
        folder = tempfile.mkdtemp(prefix="nanoml-bench-csv-")
        return _numeric_csv(folder)

    def time_nanoml(self, path):
        from nanoml.data import load_file

        load_file(path)

    def time_nanoml_parse(self, path):
        from nanoml.data.tables import read_numbers

        read_numbers(path)

    def time_pandas(self, path):
        import pandas

        pandas.read_csv(path)


class PredictFile:
    """`nanoml predict` of the CSV above with a 20-tree random forest: time and peak
    memory in one process, and time on a LocalCluster of 1 and 2 workers."""

    params = [[0, 1, 2]]
    param_names = ["workers"]
    timeout = 900
    number = 1
    repeat = 2

    def setup_cache(self):
        import nanoml

        folder = tempfile.mkdtemp(prefix="nanoml-bench-predict-")
        _numeric_csv(folder)
        train = _numeric_csv(tempfile.mkdtemp(dir=folder), rows=20_000)
        out = os.path.join(folder, "run")
        nanoml.run("random-forest", train, params={"n_estimators": 20}, out=out)
        return folder

    def setup(self, folder, workers):
        from nanoml.cluster import open_client

        self.client, self.cluster = open_client(workers or None)
        self.out = tempfile.mkdtemp()

    def teardown(self, folder, workers):
        for closable in (self.client, self.cluster):
            if closable is not None:
                closable.close()
        shutil.rmtree(self.out, ignore_errors=True)

    def time_predict(self, folder, workers):
        from nanoml.prediction import predict_file

        predict_file(os.path.join(folder, "run", "model.npz"),
                     os.path.join(folder, "numbers.csv"), os.path.join(self.out, "p.csv"),
                     client=self.client)

    def peakmem_predict(self, folder, workers):
        self.time_predict(folder, workers)


class PredictMemory:
    """Peak memory of `nanoml predict` in one process for files of 250,000, 1,000,000 and
    2,000,000 rows: it stays that of one chunk and the model, whatever the file's size."""

    params = [[250_000, 1_000_000, 2_000_000]]
    param_names = ["rows"]
    timeout = 1200
    number = 1
    repeat = 1

    def setup_cache(self):
        import nanoml

        folder = tempfile.mkdtemp(prefix="nanoml-bench-memory-")
        for rows in self.params[0]:
            os.rename(_numeric_csv(folder, rows), os.path.join(folder, f"{rows}.csv"))
        train = _numeric_csv(tempfile.mkdtemp(dir=folder), rows=20_000)
        nanoml.run("random-forest", train, params={"n_estimators": 20},
                   out=os.path.join(folder, "run"))
        return folder

    def peakmem_predict(self, folder, rows):
        from nanoml.prediction import predict_file

        with tempfile.TemporaryDirectory() as out:
            predict_file(os.path.join(folder, "run", "model.npz"),
                         os.path.join(folder, f"{rows}.csv"), os.path.join(out, "p.csv"))
