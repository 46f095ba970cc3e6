"""PNG figures for run folders (matplotlib, headless), all in one style.

Each function draws plain arrays into one file, atomically; which figures a run gets is
decided in `nanoml.figures`.
"""

import functools
import io

import numpy as np

from nanoml.modelfile import atomic_write

# The run folders' look: one set of rc settings every figure is drawn under.
_STYLE = {
    "figure.dpi": 100,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.fontsize": 9,
    "legend.framealpha": 0.8,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _styled(draw):
    """Draw under the shared style, whatever the caller's matplotlib settings are."""

    @functools.wraps(draw)
    def styled(*args, **kwargs):
        import matplotlib

        _pyplot()
        with matplotlib.rc_context(_STYLE):
            return draw(*args, **kwargs)

    return styled


def _save(fig, path):
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    _pyplot().close(fig)
    atomic_write(path, lambda fh: fh.write(buffer.getvalue()))


def _colours(n):
    """`n` distinct colours: the tab10/tab20 qualitative palettes, viridis beyond 20."""
    import matplotlib

    if n <= 10:
        return [matplotlib.colormaps["tab10"](i) for i in range(n)]
    if n <= 20:
        return [matplotlib.colormaps["tab20"](i) for i in range(n)]
    return [matplotlib.colormaps["viridis"](i / (n - 1)) for i in range(n)]


@_styled
def plot_history(history, path, *, title=None):
    """One panel per metric family (loss, accuracy, ...), train and validation curves together.

    `history` maps names such as 'loss', 'val_loss', 'accuracy' to per-epoch lists.
    """
    plt = _pyplot()
    families = sorted({k.removeprefix("val_") for k in history if len(history[k])} - {"seconds"})
    fig, axes = plt.subplots(1, len(families), figsize=(5 * len(families), 3.5), squeeze=False)
    for ax, family in zip(axes[0], families, strict=True):
        for key, label in ((family, "train"), (f"val_{family}", "validation")):
            values = history.get(key) or []
            if values:
                ax.plot(np.arange(1, len(values) + 1), values, marker=".", label=label)
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_ylabel(family)
        ax.set_title(family)
        ax.legend()
    if title:
        fig.suptitle(title)
    _save(fig, path)


@_styled
def plot_image_grid(images, path, *, columns=8, title=None):
    """A grid of grey images, shape (n, height, width), values scaled per grid to [0, 1]."""
    plt = _pyplot()
    images = np.asarray(images, dtype=np.float64)
    lo, hi = images.min(), images.max()
    images = (images - lo) / (hi - lo) if hi > lo else np.zeros_like(images)
    rows = int(np.ceil(len(images) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.0, rows * 1.0), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, image in zip(axes.ravel(), images, strict=False):  # spare axes stay blank
        ax.imshow(image, cmap="gray", vmin=0.0, vmax=1.0)
    if title:
        fig.suptitle(title)
    _save(fig, path)


@_styled
def plot_regression(x, y_true, y_pred, path, *, title=None, xlabel="x"):
    """Targets and predictions against the first feature, for 1-D regression problems."""
    plt = _pyplot()
    order = np.argsort(x)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.scatter(x, y_true, s=6, alpha=0.5, label="data")
    ax.plot(x[order], np.asarray(y_pred)[order], color="C1", label="model")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("y")
    ax.set_title(title or "model and data")
    ax.legend()
    _save(fig, path)


@_styled
def plot_predicted_vs_true(y_true, y_pred, path, *, title=None, r2=None):
    """Each row's prediction against its target, with the diagonal a perfect model lies on."""
    plt = _pyplot()
    y_true, y_pred = np.asarray(y_true, np.float64), np.asarray(y_pred, np.float64)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(y_true, y_pred, s=8, alpha=0.5,
               label="test rows" if r2 is None else f"test rows (R² = {r2:.3f})")
    lo, hi = min(y_true.min(), y_pred.min()), max(y_true.max(), y_pred.max())
    ax.plot([lo, hi], [lo, hi], color="0.3", linestyle="--", linewidth=1,
            label="perfect prediction")
    ax.set_xlabel("true value")
    ax.set_ylabel("predicted value")
    ax.set_title(title or "predicted vs true")
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend(loc="upper left")
    _save(fig, path)


@_styled
def plot_confusion_matrix(matrix, labels, path, *, title=None):
    """Counts of true (rows) against predicted (columns) labels, each cell written out
    when there are few enough classes to read them."""
    plt = _pyplot()
    matrix = np.asarray(matrix)
    k = matrix.shape[0]
    side = min(max(4.0, 0.45 * k + 2.0), 14.0)
    fig, ax = plt.subplots(figsize=(side + 1.0, side))
    image = ax.imshow(matrix, cmap="Blues", vmin=0)
    ax.grid(False)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="rows")
    names = [str(label) for label in labels]
    tilt = max(map(len, names)) > 3  # long names overlap unless tilted
    ax.set_xticks(range(k), names, rotation=45 if tilt else 0, ha="right" if tilt else "center")
    ax.set_yticks(range(k), names)
    if k <= 25:
        dark = matrix.max() / 2 if matrix.max() else 1
        for (i, j), count in np.ndenumerate(matrix):
            ax.text(j, i, str(count), ha="center", va="center", fontsize=9 if k <= 12 else 7,
                    color="white" if count > dark else "black")
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    ax.set_title(title or "confusion matrix")
    _save(fig, path)


@_styled
def plot_roc(fpr, tpr, auc, path, *, positive=None, title=None):
    """A ROC curve with its area, beside the diagonal of a scorer that guesses."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot(fpr, tpr, color="C0", linewidth=2, label=f"model (AUC = {auc:.3f})")
    ax.plot([0, 1], [0, 1], color="0.5", linestyle="--", linewidth=1, label="chance (AUC = 0.5)")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_aspect("equal")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate" + (f" (positive: {positive})" if positive else ""))
    ax.set_title(title or "ROC curve")
    ax.legend(loc="lower right")
    _save(fig, path)


@_styled
def plot_decision_regions(grid_x, grid_y, regions, X, codes, labels, path, *, title=None,
                          axis_labels=("feature 1", "feature 2")):
    """The class a classifier predicts over a grid of the plane, under the rows it is
    tested on. `regions` and `codes` are indices into `labels`."""
    plt = _pyplot()
    colours = _colours(len(labels))
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    ax.contourf(grid_x, grid_y, regions, levels=np.arange(len(labels) + 1) - 0.5,
                colors=colours, alpha=0.25)
    ax.grid(False)
    for code, label in enumerate(labels):
        rows = codes == code
        if rows.any():
            ax.scatter(X[rows, 0], X[rows, 1], s=12, color=colours[code], edgecolors="black",
                       linewidths=0.3, label=str(label))
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    ax.set_title(title or "decision regions")
    if len(labels) <= 12:
        ax.legend(title="true label", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    _save(fig, path)


@_styled
def plot_clusters(points, labels, path, *, centres=None, title=None,
                  axis_labels=("feature 1", "feature 2")):
    """Rows in a 2-D view coloured by cluster, with the clusters' centres when given."""
    plt = _pyplot()
    clusters = np.unique(labels)
    colours = _colours(len(clusters))
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for colour, cluster in zip(colours, clusters, strict=True):
        rows = labels == cluster
        ax.scatter(points[rows, 0], points[rows, 1], s=10, alpha=0.7, color=colour,
                   label=f"cluster {cluster}")
    if centres is not None:
        ax.scatter(centres[:, 0], centres[:, 1], s=120, marker="X", color="black",
                   edgecolors="white", linewidths=1.0, label="centres")
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    ax.set_title(title or "clusters")
    if len(clusters) <= 12:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the points
    _save(fig, path)


@_styled
def plot_explained_variance(ratios, path, *, title=None):
    """Each component's share of the variance, and the running total."""
    plt = _pyplot()
    ratios = np.asarray(ratios, np.float64)
    ticks = np.arange(1, ratios.size + 1)
    fig, ax = plt.subplots(figsize=(max(5.0, min(10.0, 0.2 * ratios.size + 3)), 3.8))
    ax.bar(ticks, ratios, color="C0", alpha=0.7, label="each component")
    ax.plot(ticks, np.cumsum(ratios), color="C1", marker=".",
            label=f"cumulative ({ratios.sum():.1%})")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("principal component")
    ax.set_ylabel("explained variance ratio")
    ax.set_title(title or "explained variance")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(loc="upper left")  # the running total rises to the right
    _save(fig, path)
