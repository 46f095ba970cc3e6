"""An explanation folder's contents: run each method on the chosen rows, draw its figures,
and collect its numbers for explanation.json."""

import os

import numpy as np

from nanoml.explain import figures, reads_documents
from nanoml.figures import _class_names, sample_rows

IMAGE_FIGURE = "attributions.png"
TOP_WORDS = 15  # words shown per class, and per explained document


class _Explanation:
    """The state one explanation shares between its methods."""

    def __init__(self, model, data, rows, options, folder):
        self.model, self.data, self.rows = model, data, rows
        self.options, self.folder = options, folder
        # documents stay text; numbers are float64 for every method
        self.X = data.X_test[rows] if reads_documents(data) else np.asarray(data.X_test[rows],
                                                                            np.float64)
        self.predicted = np.asarray(model.predict(self.X))
        self.image_maps = {}  # method -> (rows, height, width), drawn together at the end
        self.files = []

    # -- what is explained ---------------------------------------------------------------
    def class_column(self):
        """Per row, the model output column of its predicted class (0 for a regressor)."""
        if self.model.task != "classification":
            return np.zeros(len(self.rows), np.int64)
        classes = list(np.asarray(self.model.classes_).tolist())
        return np.array([classes.index(p) for p in self.predicted.tolist()])

    def labels(self):
        """One caption per explained row: its number, true and predicted value."""
        y = self.data.y_test[self.rows]
        if self.model.task == "classification":
            truth = self.names(y)
            said = self.names(self.predicted)
            return [f"row {r}: {t}\n(predicted {p})" for r, t, p in
                    zip(self.rows, truth, said, strict=True)]
        return [f"row {r}: {t:.3g} (predicted {p:.3g})" for r, t, p in
                zip(self.rows, y, self.predicted, strict=True)]

    def names(self, values):
        return _class_names(np.asarray(values), self.data)

    def feature_names(self):
        names = self.data.feature_names
        return list(names) if names else [f"feature {j}" for j in range(self.data.n_features)]

    # -- figures -------------------------------------------------------------------------
    def draw_attributions(self, method, values):
        """Attributions (rows, features): heatmaps for images (drawn at the end, one column
        per method), bars per step for sequences, bars per feature otherwise."""
        values = np.asarray(values, np.float64)
        about = f"{self.model.name} on {self.data.name}: {method}"
        if self.data.image_shape is not None:
            shaped = values.reshape(len(values), *self.data.image_shape)
            self.image_maps[method] = shaped.sum(axis=1)
            return
        if self.data.sequence_shape is not None:
            values = values.reshape(len(values), *self.data.sequence_shape).sum(axis=2)
            names = [f"step {t}" for t in range(values.shape[1])]
        else:
            names = self.feature_names()
        path = f"{method}.png"
        figures.plot_feature_attributions(values, names, self.labels(),
                                          os.path.join(self.folder, path), title=about)
        self.files.append(path)

    def finish(self):
        if self.image_maps:
            images = self.X.reshape(len(self.X), *self.data.image_shape)
            methods = ", ".join(self.image_maps)
            figures.plot_image_attributions(
                images, self.image_maps, self.labels(), os.path.join(self.folder, IMAGE_FIGURE),
                title=f"{self.model.name} on {self.data.name}: {methods}")
            self.files.append(IMAGE_FIGURE)


def write_explanation(model, data, methods, rows, options, folder):
    """Run `methods` on test `rows` of `data`, writing figures into `folder`; -> (numbers
    per method, file names written)."""
    state = _Explanation(model, data, rows, options, folder)
    numbers = {}
    for method in methods:
        numbers[method] = _RUN[method](state, method)
    state.finish()
    return numbers, state.files


# -- the methods ---------------------------------------------------------------------------
def _gradients(state, method):
    from nanoml.explain import gradients

    forward = gradients.network_forward(state.model)
    cls = {"saliency": gradients.Saliency, "gradient-x-input": gradients.InputXGradient,
           "smoothgrad": gradients.SmoothGrad,
           "integrated-gradients": gradients.IntegratedGradients}[method]
    target = state.class_column()
    X = state.X.astype(np.float32)
    result = {"target": target}
    with gradients.frozen(state.model.module_):
        explainer = cls(forward)
        if method == "integrated-gradients":
            steps = state.options["steps"]
            values, delta = explainer.attribute(X, target=target, steps=steps,
                                                return_convergence_delta=True)
            change = values.sum(axis=1) - delta
            relative = np.abs(delta) / np.maximum(np.abs(change), 1e-12)
            result.update(steps=steps, baseline="zeros", output_change=change,
                          completeness=relative, max_completeness_error=float(relative.max()))
        elif method == "smoothgrad":
            values = explainer.attribute(X, target=target, seed=state.options["seed"])
        else:
            values = explainer.attribute(X, target=target)
    state.model.module_.zero_grad()
    state.draw_attributions(method, values)
    result["attributions"] = values
    return result


def _activations(state, method):
    from nanoml import plots
    from nanoml.explain import activations

    model, data = state.model, state.data
    result = {}
    if activations.conv_layers(model):
        weights = activations.filters(model)
        plots.plot_image_grid(weights.mean(axis=1), os.path.join(state.folder, "filters.png"),
                              title=f"{model.name}: first-layer filters")
        maps = activations.feature_maps(model, state.X[:1])[0]
        plots.plot_image_grid(maps, os.path.join(state.folder, "feature_maps.png"),
                              title=f"{model.name}: feature maps of test row {state.rows[0]}")
        state.files += ["filters.png", "feature_maps.png"]
        result.update(filters=list(weights.shape), feature_maps=list(maps.shape))
    if model.task == "classification":
        shown = sample_rows(len(data.X_test))
        points, shares = activations.hidden_map(model, data.X_test[shown])
        y = data.y_test[shown]
        names = dict(zip(np.unique(y).tolist(), state.names(np.unique(y)), strict=True))
        figures.plot_class_map(
            points, y, names, os.path.join(state.folder, "hidden_map.png"),
            axis_labels=[f"principal component {i + 1} ({s:.0%} of variance)"
                         for i, s in enumerate(shares)],
            title=f"{model.name} on {data.name}: last hidden layer of {len(shown)} test rows")
        state.files.append("hidden_map.png")
        result.update(hidden_map_rows=len(shown), variance_shares=shares)
    return result


def _permutation(state, method):
    from nanoml.explain.permutation import metric_function, permutation_importance

    model, data, options = state.model, state.data, state.options
    shown = sample_rows(len(data.X_test))
    names = state.feature_names()
    groups = options["groups"]
    found = permutation_importance(
        model.predict, data.X_test[shown], data.y_test[shown],
        metric=metric_function(options["metric"], model.task), repeats=options["repeats"],
        groups=groups, seed=options["seed"])
    labels = names if groups is None else ["+".join(names[c] for c in g) for g in groups]
    figures.plot_importance(found["mean"], found["std"], labels,
                            os.path.join(state.folder, "permutation.png"),
                            title=f"{model.name} on {data.name}: permutation importance\n"
                                  f"({options['repeats']} repeats, {len(shown)} test rows)")
    state.files.append("permutation.png")
    return {"features": labels, "metric": options["metric"] or
            ("accuracy" if model.task == "classification" else "r2"),
            "repeats": options["repeats"], "rows": len(shown), **found}


def _occlusion(state, method):
    from nanoml.explain.permutation import Occlusion

    model, shape = state.model, state.data.image_shape
    predict = model.predict_proba if model.task == "classification" else model.predict
    window = max(2, min(shape[1:]) // 7)
    stride = max(1, window // 2)
    values = Occlusion(predict, shape).attribute(state.X, target=state.class_column(),
                                                 window=window, stride=stride)
    state.draw_attributions(method, values)
    return {"window": window, "stride": stride, "baseline": 0.0, "attributions": values}


def _shap(state, method):
    from nanoml.explain.treeshap import LinearSHAP, TreeSHAP

    model, data = state.model, state.data
    cls = TreeSHAP if method == "treeshap" else LinearSHAP
    explainer = cls(model, data.X_train)
    shown = sample_rows(len(data.X_test))
    values, delta = explainer.attribute(data.X_test[shown], return_convergence_delta=True)
    mine, mine_delta = explainer.attribute(state.X, return_convergence_delta=True)
    column = state.class_column() if values.shape[2] > 1 else np.zeros(len(state.rows), int)
    per_row = mine[np.arange(len(state.rows)), :, column]
    state.draw_attributions(method, per_row)
    mean_abs = np.abs(values).mean(axis=(0, 2))
    if data.image_shape is None:
        figures.plot_importance(mean_abs, np.zeros_like(mean_abs), state.feature_names(),
                                os.path.join(state.folder, f"{method}_summary.png"),
                                title=f"{model.name} on {data.name}: mean |SHAP value| over "
                                      f"{len(shown)} test rows", xlabel="mean |SHAP value|")
        state.files.append(f"{method}_summary.png")
    return {"expected_value": explainer.expected_value, "output": column,
            "values": per_row, "mean_abs_value": mean_abs,
            "max_additivity_error": float(max(np.abs(delta).max(), np.abs(mine_delta).max()))}


def _top_words(state, method):
    from nanoml.explain.words import TopWords

    explainer = TopWords(state.model)
    names = [str(n) for n in state.names(explainer.classes)]
    top = explainer.top(TOP_WORDS)
    figures.plot_top_words(top, names, os.path.join(state.folder, "top_words.png"),
                           title=f"{state.model.name} on {state.data.name}: the words of "
                                 "largest weight for each class")
    state.files.append("top_words.png")
    target = state.class_column()
    shares = explainer.attribute(state.X, target)
    rows = []
    for row, column in zip(shares, target, strict=True):
        used = np.flatnonzero(row)
        used = used[np.argsort(-np.abs(row[used]), kind="stable")][:TOP_WORDS]
        rows.append({"class": names[column],
                     "words": dict(zip(explainer.words[used].tolist(), row[used].tolist(),
                                       strict=True))})
    return {"classes": names,
            "top_words": {n: dict(zip(w.tolist(), v.tolist(), strict=True))
                          for n, (w, v) in zip(names, top, strict=True)},
            "rows": rows}


_RUN = {**dict.fromkeys(
    ("saliency", "gradient-x-input", "smoothgrad", "integrated-gradients"), _gradients),
    "activations": _activations, "permutation": _permutation, "occlusion": _occlusion,
    "treeshap": _shap, "linear-shap": _shap, "top-words": _top_words}
