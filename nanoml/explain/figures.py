"""The PNG figures of an explanation folder, in the style of the run folders' (`nanoml.plots`).

Each function draws plain arrays into one file, atomically.
"""

import numpy as np

from nanoml.plots import _colours, _pyplot, _save, _styled

# Methods whose attributions are signed (drawn red/blue around zero); the others are
# magnitudes (drawn dark to bright).
SIGNED = {"gradient-x-input", "integrated-gradients", "occlusion", "treeshap", "linear-shap"}
MAX_BARS = 15


def _display(image):
    """An image (channels, height, width) as imshow takes it, scaled to [0, 1]."""
    image = np.asarray(image, np.float64)
    image = image[0] if image.shape[0] == 1 else np.moveaxis(image, 0, -1)
    lo, hi = image.min(), image.max()
    return (image - lo) / (hi - lo) if hi > lo else np.zeros_like(image)


@_styled
def plot_image_attributions(images, maps, labels, path, *, title=None):
    """One row per image: the input, then a heatmap per method.

    `images`: (rows, channels, height, width); `maps`: method -> (rows, height, width)
    attributions summed over channels; `labels`: one caption per row.
    """
    plt = _pyplot()
    columns = 1 + len(maps)
    fig, axes = plt.subplots(len(images), columns, figsize=(1.9 * columns, 1.9 * len(images)),
                             squeeze=False, layout="constrained")
    for r, image in enumerate(images):
        axes[r, 0].imshow(_display(image), cmap="gray")
        axes[r, 0].set_ylabel(labels[r], fontsize=8)
        for c, (method, values) in enumerate(maps.items(), start=1):
            heat = values[r]
            if method in SIGNED:
                limit = float(np.abs(heat).max()) or 1.0
                axes[r, c].imshow(heat, cmap="RdBu_r", vmin=-limit, vmax=limit)
            else:
                axes[r, c].imshow(heat, cmap="inferno")
            if r == 0:
                axes[r, c].set_title(method, fontsize=9)
    axes[0, 0].set_title("input", fontsize=9)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    if title:
        fig.suptitle(title)
    _save(fig, path)


@_styled
def plot_feature_attributions(values, names, labels, path, *, title=None):
    """One panel per row: the features with the largest attributions, as bars.

    `values`: (rows, features); for sequences, pass steps as the features.
    """
    plt = _pyplot()
    values = np.asarray(values, np.float64)
    shown = min(MAX_BARS, values.shape[1])
    fig, axes = plt.subplots(len(values), 1, figsize=(6, 0.25 * shown * len(values) + 1),
                             squeeze=False, layout="constrained")
    for ax, row, label in zip(axes[:, 0], values, labels, strict=True):
        top = np.argsort(-np.abs(row))[:shown][::-1]
        ax.barh(range(shown), row[top], color=np.where(row[top] >= 0, "tab:red", "tab:blue"))
        ax.set_yticks(range(shown), [names[j] for j in top], fontsize=7)
        ax.axvline(0.0, color="black", linewidth=0.8)
        ax.set_title(label, fontsize=9)
    if title:
        fig.suptitle(title)
    _save(fig, path)


@_styled
def plot_top_words(top, class_names, path, *, title=None):
    """One panel per class: its words of largest weight, as bars. `top`: per class, a
    (words, weights) pair, largest first."""
    plt = _pyplot()
    columns = min(len(top), 4)
    rows = -(-len(top) // columns)
    shown = max(len(words) for words, _ in top)
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 0.22 * shown * rows + 1),
                             squeeze=False, layout="constrained")
    for ax, (words, weights), name in zip(axes.flat, top, class_names, strict=False):
        ax.barh(range(len(words))[::-1], weights, color="tab:red")
        ax.set_yticks(range(len(words))[::-1], list(words), fontsize=7)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("weight", fontsize=8)
    for ax in axes.flat[len(top):]:
        ax.set_axis_off()
    if title:
        fig.suptitle(title)
    _save(fig, path)


@_styled
def plot_importance(mean, std, names, path, *, title=None, xlabel="drop of the score"):
    """Horizontal bars of the largest importances, with their spread over repeats."""
    plt = _pyplot()
    top = np.argsort(-np.asarray(mean))[:MAX_BARS * 2][::-1]
    fig, ax = plt.subplots(figsize=(6, 0.28 * len(top) + 1.2))
    ax.barh(range(len(top)), np.asarray(mean)[top], xerr=np.asarray(std)[top],
            color="tab:blue", capsize=2)
    ax.set_yticks(range(len(top)), [names[j] for j in top], fontsize=8)
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel(xlabel)
    ax.set_title(title or "permutation importance")
    _save(fig, path)


@_styled
def plot_class_map(points, labels, names, path, *, axis_labels, title=None):
    """Points of a 2-D map coloured by their class."""
    plt = _pyplot()
    classes = np.unique(labels)
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for colour, label in zip(_colours(len(classes)), classes, strict=True):
        rows = labels == label
        ax.scatter(points[rows, 0], points[rows, 1], s=8, alpha=0.7, color=colour,
                   label=names.get(label, str(label)))
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    ax.set_title(title)
    if len(classes) <= 20:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    _save(fig, path)
