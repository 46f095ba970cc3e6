"""The asv ratio table reads asv's results format and pairs nanoml with its peers."""

import importlib.util
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def load_ratios():
    spec = importlib.util.spec_from_file_location("ratios", ROOT / "asv_bench" / "ratios.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ratio_table_pairs_siblings_per_parameter(tmp_path):
    columns = ["result", "params", "version", "started_at", "duration"]
    results = {
        "classic.Ridge.time_nanoml": [[0.1, 0.4], [["1000", "100000"]], "v", 0, 1.0],
        "classic.Ridge.time_sklearn": [[0.2, 0.2], [["1000", "100000"]], "v", 0, 1.0],
        "conv.Conv.time_nanoml_backward": [[0.003], [], "v", 0, 1.0],
        "conv.Conv.time_torch_backward": [[0.006], [], "v", 0, 1.0],
        "conv.Conv.time_torch_forward": [[0.001], [], "v", 0, 1.0],
        "conv.Conv.time_nanoml_forward": [None, [], "v", 0, 1.0],  # failed: no results
        "epoch.Memory.peakmem_nanoml": [[300 * 2**20], [], "v", 0, 1.0],
        "epoch.Memory.peakmem_torch": [[600 * 2**20], [], "v", 0, 1.0],
    }
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"result_columns": columns, "results": results}))
    lines = load_ratios().table(str(path)).splitlines()
    assert len(lines) == 5  # header + two Ridge sizes + the conv backward pair + memory
    ridge_small, ridge_large = lines[1], lines[2]
    assert "1000" in ridge_small and ridge_small.endswith("0.50x")
    assert "100000" in ridge_large and ridge_large.endswith("2.00x")
    assert lines[3].startswith("conv.Conv.time_nanoml_backward") and lines[3].endswith("0.50x")
    assert lines[4].startswith("epoch.Memory ") and "300 MiB" in lines[4] and "600 MiB" in lines[4]
    assert lines[4].endswith("0.50x")
