"""What a tuning run reports: the table of learners and their best trials, and two figures
(best score so far against time; each hyperparameter against the score)."""

import math

import numpy as np

from nanoml.plots import _pyplot, _save, _styled

STATES = ("complete", "pruned", "fail")


def learner_rows(records, learners):
    """One row per learner: its trials by state and its best complete trial."""
    rows = []
    for name in learners:
        mine = [r for r in records if r["learner"] == name]
        done = [r for r in mine if r["state"] == "complete"]
        best = max(done, key=lambda r: r["value"], default=None)
        rows.append({
            "learner": name,
            "trials": len(mine),
            "pruned": sum(r["state"] == "pruned" for r in mine),
            "failed": sum(r["state"] == "fail" for r in mine),
            "best_score": None if best is None else best["value"],
            "best_trial": None if best is None else best["trial"],
            "best_params": None if best is None else best["params"],
        })
    return rows


def table(rows, score_name):
    """The rows as aligned text lines."""
    width = max([len("learner"), *(len(r["learner"]) for r in rows)])
    lines = [f"{'learner':<{width}}  trials  pruned  failed  {'best ' + score_name:>14}  "
             "best hyperparameters"]
    for r in rows:
        score = "-" if r["best_score"] is None else f"{r['best_score']:.4f}"
        params = ", ".join(f"{k}={_short(v)}" for k, v in (r["best_params"] or {}).items())
        lines.append(f"{r['learner']:<{width}}  {r['trials']:>6}  {r['pruned']:>6}  "
                     f"{r['failed']:>6}  {score:>14}  {params or '-'}")
    return lines


def _short(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "(" + ",".join(str(v) for v in value) + ")"
    return str(value)


@_styled
def plot_best_so_far(records, learners, path, score_name):
    """Every trial's score against the time it finished, and the best so far: one line
    per learner (complete trials) and one over all of them."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    overall = []
    end = max((r["elapsed"] for r in records), default=0.0)
    for i, name in enumerate(learners):
        mine = sorted((r for r in records if r["learner"] == name and r["value"] is not None),
                      key=lambda r: r["elapsed"])
        done = [r for r in mine if r["state"] == "complete"]
        pruned = [r for r in mine if r["state"] == "pruned"]
        color = f"C{i % 10}"
        ax.scatter([r["elapsed"] for r in done], [r["value"] for r in done], s=14,
                   color=color, alpha=0.6)
        ax.scatter([r["elapsed"] for r in pruned], [r["value"] for r in pruned], s=14,
                   color=color, alpha=0.4, marker="x")
        if done:
            _best_line(ax, done, end, color=color, label=name)
        overall.extend(done)
    overall.sort(key=lambda r: r["elapsed"])
    if len(learners) > 1 and overall:
        _best_line(ax, overall, end, color="black", linestyle="--", label="best of all")
    ax.set_xlabel("seconds since the search began")
    ax.set_ylabel(f"validation {score_name}")
    ax.set_title("best so far (dots: trials, x: pruned at their last budget)")
    if overall:
        ax.legend(fontsize="small")
    _save(fig, path)


def _best_line(ax, trials, end, **style):
    """The best value so far of `trials` (in finishing order), drawn on to `end`."""
    times = [r["elapsed"] for r in trials] + [end]
    best = np.maximum.accumulate([r["value"] for r in trials])
    ax.step(times, [*best, best[-1]], where="post", **style)


@_styled
def plot_hyperparameters(records, spaces, path, score_name):
    """One row per learner, one panel per searched hyperparameter: its value against the
    validation score of each complete trial (pruned trials faint, at their last budget)."""
    plt = _pyplot()
    shown = {name: dims for name, dims in spaces.items() if dims}
    columns = max([len(dims) for dims in shown.values()], default=1)
    fig, axes = plt.subplots(max(len(shown), 1), columns, figsize=(3.4 * columns,
                             2.8 * max(len(shown), 1)), squeeze=False)
    for ax in axes.ravel():
        ax.set_visible(False)
    for row, (name, dims) in enumerate(shown.items()):
        mine = [r for r in records if r["learner"] == name and r["value"] is not None]
        for ax, dim in zip(axes[row], dims.values(), strict=False):
            ax.set_visible(True)
            for state, alpha in (("complete", 0.8), ("pruned", 0.25)):
                picked = [r for r in mine if r["state"] == state and dim.name in r["params"]]
                xs = [_position(dim, r["params"][dim.name]) for r in picked]
                ax.scatter(xs, [r["value"] for r in picked], s=14, alpha=alpha, color="C0")
            if dim.is_range:
                if dim.log:
                    ax.set_xscale("log")
            else:
                ax.set_xticks(range(len(dim.values)))
                ax.set_xlim(-0.5, len(dim.values) - 0.5)
                ax.set_xticklabels([_short(v) for v in dim.values], rotation=30,
                                   fontsize="small")
            ax.set_xlabel(dim.name)
            ax.set_ylabel(f"{name}: {score_name}" if ax is axes[row][0] else "")
    fig.tight_layout()
    _save(fig, path)


def _position(dim, value):
    """Where a value goes on the panel's x axis: itself, or its categorical index."""
    if dim.is_range:
        return value
    label = dim.label(value)
    choices = dim.distribution.choices
    return choices.index(label) if label in choices else math.nan
