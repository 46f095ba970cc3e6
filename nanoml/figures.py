"""The figures a run folder gets for the learner's task, drawn from the fitted learner and
the test rows of its dataset (`Learner.write_artifacts` calls `task_figures`):

- classification: confusion_matrix.png; roc.png for two classes, from ``predict_proba``
  or ``decision_function`` where the learner has one; decision_regions.png for two
  features;
- regression: predicted_vs_true.png;
- clustering: clusters.png, the first two features or, with more, the first two
  principal components.

Each figure stays quick to draw, since every run writes them: at most `MAX_POINTS` rows
drawn, a `GRID` x `GRID` decision grid, no confusion matrix past `MAX_CLASSES` classes.
"""

import os

import numpy as np

from nanoml import metrics, plots
from nanoml.runner import learner_inputs

MAX_POINTS = 2000
GRID = 200
MAX_CLASSES = 50


def task_figures(learner, folder, dataset):
    """Write the figures of `learner`'s task into `folder`; -> the file names written."""
    draw = {
        "classification": classification_figures,
        "regression": regression_figures,
        "clustering": clustering_figures,
    }.get(learner.task)
    return draw(learner, folder, dataset) if draw else []


def classification_figures(learner, folder, dataset):
    """confusion_matrix.png, roc.png (two classes, scores permitting) and
    decision_regions.png (two plain features)."""
    X, y = dataset.X_test, dataset.y_test
    predicted = learner.predict(learner_inputs(learner, dataset, X))
    seen = np.union1d(y, predicted)
    classes = np.asarray(getattr(learner, "classes_", seen))
    # the learner's classes in its order, then any test label it never saw
    labels = np.concatenate([classes, np.setdiff1d(seen, classes)])
    names = _class_names(labels, dataset)
    about = f"{learner.name} on {dataset.name}"
    written = []
    if labels.size <= MAX_CLASSES:
        matrix = metrics.confusion_matrix(y, predicted, labels=labels)
        plots.plot_confusion_matrix(
            matrix, names, os.path.join(folder, "confusion_matrix.png"),
            title=f"{about}: confusion matrix\n({int(np.trace(matrix))} of {len(y)} test "
                  "rows right)",
        )
        written.append("confusion_matrix.png")
    if labels.size == 2 and np.unique(y).size == 2:
        scores = positive_scores(learner, learner_inputs(learner, dataset, X), predicted, labels)
        if scores is not None and np.all(np.isfinite(scores)):
            fpr, tpr, _ = metrics.roc_curve(y, scores, pos_label=labels[1])
            plots.plot_roc(fpr, tpr, metrics.roc_auc(y, scores, pos_label=labels[1]),
                           os.path.join(folder, "roc.png"), positive=names[1],
                           title=f"{about}: ROC curve (test rows)")
            written.append("roc.png")
    if _plane(learner, dataset):
        _decision_regions(learner, dataset, labels, names,
                          os.path.join(folder, "decision_regions.png"), about)
        written.append("decision_regions.png")
    return written


def positive_scores(learner, X, predicted, classes):
    """Per-row scores that grow with the odds of ``classes[1]``, from the learner's
    ``predict_proba`` or else its ``decision_function``; None if it has neither."""
    if callable(getattr(learner, "predict_proba", None)):
        proba = np.asarray(learner.predict_proba(X), np.float64)
        if proba.ndim == 2 and proba.shape[1] == 2:
            return proba[:, 1]
    if not callable(getattr(learner, "decision_function", None)):
        return None
    scores = np.asarray(learner.decision_function(X), np.float64)
    if scores.ndim == 2 and scores.shape[1] == 2:  # one score per class
        return scores[:, 1] - scores[:, 0]
    if scores.ndim == 2 and scores.shape[1] == 1:
        scores = scores[:, 0]
    if scores.ndim != 1:
        return None
    # One score for two classes has no agreed sign: scikit-learn's is positive for
    # classes_[1], a one-vs-one SVM's for its pair's first class. The learner's own
    # predictions say which it is.
    agree = np.mean((scores > 0) == (predicted == classes[1]))
    return scores if agree >= 0.5 else -scores


def regression_figures(learner, folder, dataset):
    """predicted_vs_true.png over the test rows."""
    X, y = dataset.X_test, dataset.y_test
    predicted = np.asarray(learner.predict(learner_inputs(learner, dataset, X)), np.float64)
    finite = np.flatnonzero(np.isfinite(predicted))  # a diverged model has nothing to draw
    if finite.size == 0:
        return []
    shown = finite[sample_rows(finite.size)]
    plots.plot_predicted_vs_true(
        y[shown], predicted[shown], os.path.join(folder, "predicted_vs_true.png"),
        r2=metrics.r2_score(y, predicted),
        title=f"{learner.name} on {dataset.name}: predicted vs true (test rows)",
    )
    return ["predicted_vs_true.png"]


def clustering_figures(learner, folder, dataset):
    """clusters.png: the test rows in a 2-D view, coloured by the cluster predicted, with
    the learner's ``cluster_centers_`` where it has them. Nothing for one feature."""
    if dataset.sample_shape is None and dataset.n_features < 2:
        return []
    X = dataset.X_test[sample_rows(len(dataset.X_test))]
    try:
        labels = np.asarray(learner.predict(learner_inputs(learner, dataset, X)))
    except NotImplementedError:  # a clusterer that labels its training rows only
        return []
    centres = getattr(learner, "cluster_centers_", None)
    if centres is not None and np.ndim(centres) != 2:
        centres = None
    if X.shape[1] == 2:
        view, axis_labels = (lambda rows: rows), _feature_labels(dataset)
        how = "the two features"
    else:
        view, shares = principal_plane(X)
        axis_labels = tuple(f"principal component {i + 1} ({s:.0%} of variance)"
                            for i, s in enumerate(shares))
        how = "first two principal components"
    plots.plot_clusters(
        view(X), labels, os.path.join(folder, "clusters.png"),
        centres=None if centres is None else view(np.asarray(centres, np.float64)),
        axis_labels=axis_labels,
        title=f"{learner.name} on {dataset.name}: clusters of the test rows\n({how})",
    )
    return ["clusters.png"]


def principal_plane(X):
    """The projection of rows like X onto X's first two principal components (an SVD of
    the centred rows), and each component's share of X's variance."""
    mean = X.mean(axis=0)
    _, s, vt = np.linalg.svd(X - mean, full_matrices=False)
    total = float(np.sum(s * s)) or 1.0
    axes = vt[:2]
    if axes.shape[0] < 2:  # a single row or feature: the second axis is flat
        axes = np.vstack([axes, np.zeros((2 - axes.shape[0], X.shape[1]))])
    shares = np.r_[s[:2] ** 2 / total, np.zeros(2)][:2]
    return (lambda rows: (rows - mean) @ axes.T), shares


def sample_rows(n, limit=MAX_POINTS):
    """Indices of at most `limit` of `n` rows, drawn evenly at random (seeded), in order."""
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(0).choice(n, limit, replace=False))


def _decision_regions(learner, dataset, labels, names, path, about):
    X = np.vstack([dataset.X_train, dataset.X_test])
    lo, hi = X.min(axis=0), X.max(axis=0)
    pad = 0.05 * np.where(hi > lo, hi - lo, 1.0)
    gx, gy = np.meshgrid(np.linspace(lo[0] - pad[0], hi[0] + pad[0], GRID),
                         np.linspace(lo[1] - pad[1], hi[1] + pad[1], GRID))
    grid = np.column_stack([gx.ravel(), gy.ravel()])
    regions = _codes(learner.predict(grid), labels).reshape(gx.shape)
    shown = sample_rows(len(dataset.X_test))
    test = dataset.X_test[shown]
    plots.plot_decision_regions(
        gx, gy, regions, test, _codes(dataset.y_test[shown], labels), names, path,
        axis_labels=_feature_labels(dataset), title=f"{about}: decision regions (test rows)",
    )


def _plane(learner, dataset):
    """Whether the data are rows of exactly two plain features a grid can stand for."""
    return (dataset.n_features == 2 and dataset.sample_shape is None
            and learner.input_ndim is None)


def _codes(values, labels):
    """Index of each value in `labels`; values not among them get -1 (left unpainted)."""
    lookup = {label: i for i, label in enumerate(labels.tolist())}
    return np.array([lookup.get(v, -1) for v in np.asarray(values).tolist()], np.int64)


def _class_names(labels, dataset):
    """The dataset's names for integer labels 0..k-1 where it has them, else the labels."""
    names = tuple(dataset.class_names or ())
    if names and all(isinstance(v, int) and 0 <= v < len(names) for v in labels.tolist()):
        return [names[v] for v in labels.tolist()]
    return [str(v) for v in labels.tolist()]


def _feature_labels(dataset):
    names = getattr(dataset, "feature_names", None)
    if names and len(names) >= 2:
        return str(names[0]), str(names[1])
    return "feature 1", "feature 2"
