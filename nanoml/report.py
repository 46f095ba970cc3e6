"""Run reports: ``report.html`` in every run folder, and the runs of a folder side by side.

`write_report` (called by `nanoml.run`) writes one self-contained page: the test metrics,
the command that reproduces the run, the figures, the configuration and the training
history. `compare_runs` reads the runs in a folder into rows, which `runs_table` prints
and `write_comparison` writes as one page.

Pages are Jinja2 templates (``nanoml/templates/report``) rendered with autoescaping, so
every value a run holds is HTML-escaped; figures are embedded as base64 data URIs and the
style sheet is inline, so a page refers to nothing outside itself.
"""

import base64
import datetime
import json
import os
import shlex

import numpy as np

from nanoml.errors import RunFolderError
from nanoml.modelfile import atomic_write
from nanoml.templating import environment

REPORT_FILE = "report.html"
RUN_FILES = ("config.json", "metrics.json")
HISTORY_ROWS = 50  # epochs shown in a report; longer histories are thinned evenly

_CAPTIONS = {
    "curves.png": "Training curves",
    "fit.png": "Model and test rows",
    "predicted_vs_true.png": "Predicted against true values, test rows",
    "confusion_matrix.png": "Confusion matrix, test rows",
    "roc.png": "ROC curve, test rows",
    "decision_regions.png": "Decision regions and test rows",
    "clusters.png": "Clusters of the test rows",
    "explained_variance.png": "Explained variance per component",
    "samples.png": "Generated samples",
}


def write_report(folder, config, record, figures, *, defaults=None, options=None, files=()):
    """Write report.html into the run folder `folder`; -> its file name.

    `config` and `record` are what config.json and metrics.json hold; `figures` names PNG
    files in `folder`; `defaults` are the learner's hyperparameter defaults (the command
    repeats only hyperparameters set otherwise); `options` are the run's other arguments
    (``data_dir``, ...), repeated in the command unless None; `files` are the folder's
    other files, listed.
    """
    from nanoml import __version__

    defaults = dict(defaults or {})
    params = config.get("params") or {}
    history = record.get("history") or {}
    context = {
        "version": __version__,
        "run": os.path.basename(os.path.normpath(os.fspath(folder))),
        "learner": config.get("learner"),
        "dataset": config.get("dataset"),
        "seed": config.get("seed"),
        "nanoml_version": config.get("nanoml_version", __version__),
        "fit_seconds": f"{record.get('fit_seconds') or 0.0:.2f}",
        "written": _now(),
        "metrics": [(k, format_number(v)) for k, v in (record.get("test") or {}).items()],
        "command": reproduce_command(config, defaults, options),
        "figures": [_embedded(folder, name) for name in figures
                    if name.endswith(".png") and os.path.isfile(os.path.join(folder, name))],
        "params": [
            {"name": k, "value": _shown(v),
             "default": _shown(defaults[k]) if k in defaults else "",
             "changed": k in defaults and not _same(v, defaults[k])}
            for k, v in params.items()
        ],
        "history": _history(history),
        "files": [*files, REPORT_FILE],
    }
    _write(os.path.join(folder, REPORT_FILE), "run.html.j2", context)
    return REPORT_FILE


def reproduce_command(config, defaults, options=None):
    """The parts of the ``nanoml run`` command that redoes a run, shell-quoted: learner,
    dataset, seed, ``key=value`` settings for the hyperparameters that differ from
    `defaults` (a seed equal to the run's seed needs none), the run's other `options`,
    and the names of hyperparameters no setting can express (an array, say)."""
    from nanoml.params import coerce

    seed = config.get("seed")
    settings, unset = [], []
    for name, value in (config.get("params") or {}).items():
        if name not in defaults or _same(value, defaults[name]):
            continue
        if name == "seed" and _same(value, seed):
            continue  # the run's seed reaches learners that take one
        text = setting_text(value)
        try:
            faithful = text is not None and _same(coerce(name, text, defaults[name]), value)
        except Exception:  # a value the setting parser refuses
            faithful = False
        if faithful:
            settings.append(shlex.quote(f"{name}={text}"))
        else:
            unset.append(name)
    return {
        "learner": shlex.quote(str(config.get("learner"))),
        "dataset": shlex.quote(str(config.get("dataset"))),
        "seed": shlex.quote(str(seed)),
        "settings": settings,
        "options": [(k, shlex.quote(str(os.fspath(v) if isinstance(v, os.PathLike) else v)))
                    for k, v in (options or {}).items() if v is not None],
        "unset": unset,
    }


def setting_text(value):
    """A hyperparameter's value as a ``key=value`` setting writes it (see
    `nanoml.params.coerce`): true/false, none, numbers, comma lists; None if none can."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, (int, float, str)):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, (tuple, list)) and value:
        parts = [setting_text(v) for v in value]
        if all(p is not None and "," not in p for p in parts):
            return ",".join(parts)
    return None


# -- the runs of a folder ----------------------------------------------------------------
def compare_runs(folder):
    """One row per run folder directly inside `folder` (a folder holding config.json and
    metrics.json; others are skipped), by name: run, learner, dataset, seed, fit_seconds,
    metrics (the test metrics) and report (report.html's path inside `folder`, or None).
    A file that is not valid JSON raises RunFolderError naming it."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise RunFolderError(f"'{folder}' is not a folder of runs")
    rows = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if not all(os.path.isfile(os.path.join(path, f)) for f in RUN_FILES):
            continue
        config, record = (_read_json(os.path.join(path, f)) for f in RUN_FILES)
        report = os.path.join(name, REPORT_FILE)
        rows.append({
            "run": name,
            "learner": config.get("learner"),
            "dataset": config.get("dataset"),
            "seed": config.get("seed"),
            "fit_seconds": record.get("fit_seconds"),
            "metrics": dict(record.get("test") or {}),
            "report": report if os.path.isfile(os.path.join(folder, report)) else None,
        })
    return rows


def runs_table(rows):
    """`compare_runs` rows as text lines of aligned columns, a header first."""
    columns, cells = _table(rows)
    table = [[c["title"] for c in columns]] + [[row["run"]] + [c["text"] for c in row["cells"]]
                                                for row in cells]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    return [
        "  ".join(text.rjust(w) if col["numeric"] else text.ljust(w)
                  for text, w, col in zip(line, widths, columns, strict=True)).rstrip()
        for line in table
    ]


def write_comparison(rows, path, folder):
    """Write `compare_runs(folder)`'s `rows` as one self-contained HTML page at `path`,
    each run linked to its report."""
    from nanoml import __version__

    columns, cells = _table(rows)
    here = os.path.dirname(os.path.abspath(os.fspath(path)))
    for row, source in zip(cells, rows, strict=True):
        report = source.get("report")
        row["link"] = (os.path.relpath(os.path.join(os.path.abspath(folder), report), here)
                       .replace(os.sep, "/") if report else None)
    _write(path, "runs.html.j2", {"version": __version__, "folder": os.fspath(folder),
                                  "written": _now(), "columns": columns, "rows": cells})


def _table(rows):
    """Columns (title, numeric) and each row's cells, shared by the text and HTML tables:
    the run's identity, then the union of the metric names in order of appearance."""
    metric_names = list(dict.fromkeys(k for row in rows for k in row["metrics"]))
    columns = [{"title": t, "numeric": n} for t, n in (
        ("run", False), ("learner", False), ("dataset", False), ("seed", True),
        ("fit s", True))]
    columns += [{"title": name, "numeric": True} for name in metric_names]
    cells = []
    for row in rows:
        values = [row["learner"], row["dataset"], row["seed"], row["fit_seconds"],
                  *(row["metrics"].get(name) for name in metric_names)]
        cells.append({"run": row["run"], "cells": [
            {"text": _cell(v, metric=i >= 3), "numeric": columns[i + 1]["numeric"]}
            for i, v in enumerate(values)]})
    return columns, cells


def _cell(value, metric):
    if value is None:
        return "-"
    if metric and isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:.4f}"
    return str(value)


# -- helpers -------------------------------------------------------------------------------
def format_number(value):
    """A metric as reports show it: six significant digits."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        return "-" if value is None else str(value)
    return f"{value:.6g}"


def model_run_config(model):
    """What config.json says of the run that wrote the model file `model` (the file's
    folder); {} for a fitted learner, or a model file with no config.json beside it."""
    if not isinstance(model, (str, os.PathLike)):
        return {}
    path = os.path.join(os.path.dirname(os.path.abspath(model)), RUN_FILES[0])
    return _read_json(path) if os.path.isfile(path) else {}


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except json.JSONDecodeError as exc:
        raise RunFolderError(
            f"'{path}' is not valid JSON ({exc.msg} at line {exc.lineno}); "
            "rerun that run or move it out of the folder"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise RunFolderError(f"cannot read '{path}': {reason}") from None
    if not isinstance(data, dict):
        raise RunFolderError(
            f"'{path}' holds a JSON {type(data).__name__}, not the object a run writes"
        )
    return data


def _history(history):
    """The per-epoch table: metric names, rows (epoch, values), thinned to HISTORY_ROWS."""
    names = [k for k, v in history.items() if isinstance(v, list) and v]
    epochs = max((len(history[k]) for k in names), default=0)
    if epochs > HISTORY_ROWS:
        shown = np.unique(np.linspace(0, epochs - 1, HISTORY_ROWS).round().astype(int))
    else:
        shown = np.arange(epochs)
    rows = [(int(i) + 1, [format_number(history[k][i]) if i < len(history[k]) else ""
                          for k in names]) for i in shown]
    return {"names": names, "rows": rows, "epochs": epochs, "thinned": len(rows) < epochs}


def _embedded(folder, name):
    with open(os.path.join(folder, name), "rb") as fh:
        data = base64.b64encode(fh.read()).decode("ascii")
    return {"name": name, "caption": _CAPTIONS.get(name, name), "data": data}


def _shown(value, limit=120):
    """A hyperparameter's value for the page: repr, arrays by shape, long ones cut."""
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape}"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _same(a, b):
    """Equal values, lists and tuples alike (JSON turns tuples into lists)."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return False  # no default, and no setting, is an array
    if isinstance(a, bool) != isinstance(b, bool):
        return False  # True == 1, but the setting 'true' is not the number 1
    try:
        return bool(a == b)
    except Exception:
        return a is b


def _now():
    return datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z").strip()


def _write(path, template, context):
    page = environment("report", html=True).get_template(template).render(context)
    atomic_write(path, lambda fh: fh.write(page.encode("utf-8")))
