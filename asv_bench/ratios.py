"""Print nanoml/peer time ratios from one asv results file.

Benchmarks pair up by name: in one class, ``time_nanoml[_what]`` (or ``peakmem_...``) is
compared with ``time_<peer>[_what]`` for peer in torch, sklearn, numpy, gymnasium. A ratio
below 1 means nanoml was faster. Usage (from asv_bench/)::

    python ratios.py                 # the newest results file
    python ratios.py RESULTS.json    # a given one
"""

import glob
import itertools
import json
import os
import sys

PEERS = ("torch", "sklearn", "numpy", "gymnasium")


def newest_results(folder):
    files = [
        f
        for f in glob.glob(os.path.join(folder, "*", "*.json"))
        if os.path.basename(f) not in ("machine.json", "benchmarks.json")
    ]
    if not files:
        sys.exit(
            f"no asv results under {folder}: run 'asv run --python=same "
            "--set-commit-hash=$(git rev-parse HEAD)' first"
        )
    return max(files, key=os.path.getmtime)


def timings(path):
    """Benchmark name -> {params tuple: seconds} from an asv results file."""
    with open(path) as fh:
        data = json.load(fh)
    columns = data["result_columns"]
    out = {}
    for name, row in data["results"].items():
        values = dict(zip(columns, row, strict=False))  # older files have fewer columns
        if values["result"] is None:  # the benchmark failed or was skipped as a whole
            continue
        grid = list(itertools.product(*(values.get("params") or [])))
        out[name] = {p: r for p, r in zip(grid, values["result"], strict=True) if r is not None}
    return out


def pairs(times):
    """(nanoml name, peer, peer name) for every benchmark with a sibling."""
    for name in sorted(times):
        prefix, _, method = name.rpartition(".")
        kind, _, rest = method.partition("_")
        if kind not in ("time", "peakmem") or not rest.startswith("nanoml"):
            continue
        what = rest[len("nanoml") :]
        for peer in PEERS:
            sibling = f"{prefix}.{kind}_{peer}{what}"
            if sibling in times:
                yield name, peer, sibling


def _number(value):
    """A measured value (asv writes peak memory as an int), not a failure's None or NaN."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _amount(name, value):
    """A timing in ms, a peak memory in MiB."""
    if name.rpartition(".")[2].startswith("peakmem"):
        return f"{value / 2**20:.0f} MiB"
    return f"{value * 1e3:.2f} ms"


def table(path):
    times = timings(path)
    rows = [("benchmark", "params", "nanoml", "peer", "peer time", "ratio")]
    for name, peer, sibling in pairs(times):
        for params, ours in times[name].items():
            theirs = times[sibling].get(params)
            if not (_number(ours) and _number(theirs)):
                continue
            rows.append(
                (
                    name.removesuffix(".time_nanoml").removesuffix(".peakmem_nanoml"),
                    ", ".join(map(str, params)),
                    _amount(name, ours),
                    peer,
                    _amount(name, theirs),
                    f"{ours / theirs:.2f}x",
                )
            )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    path = argv[1] if len(argv) > 1 else newest_results(os.path.join(here, ".asv", "results"))
    print(f"results: {path}")
    print(table(path))


if __name__ == "__main__":
    main(sys.argv)
