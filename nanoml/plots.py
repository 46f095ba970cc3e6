"""PNG figures for run folders (matplotlib, headless)."""

import io

import numpy as np

from nanoml.modelfile import atomic_write


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path):
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    _pyplot().close(fig)
    atomic_write(path, lambda fh: fh.write(buffer.getvalue()))


def plot_history(history, path):
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
        ax.set_title(family)
        ax.grid(alpha=0.3)
        ax.legend()
    _save(fig, path)


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


def plot_regression(x, y_true, y_pred, path):
    """Targets and predictions against the first feature, for 1-D regression problems."""
    plt = _pyplot()
    order = np.argsort(x)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.scatter(x, y_true, s=6, alpha=0.5, label="data")
    ax.plot(x[order], np.asarray(y_pred)[order], color="C1", label="model")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.legend()
    ax.grid(alpha=0.3)
    _save(fig, path)
