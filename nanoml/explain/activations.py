"""Activation analysis of deep learners: learned filters, feature maps, and a 2-D map of the
last hidden layer.

A layer's input and output are read by wrapping its ``forward`` for the length of one
inference pass (`recording`), so any network works, whatever its structure.
"""

import contextlib

import numpy as np

from nanoml import nn
from nanoml.errors import ParameterError
from nanoml.tensor import Tensor, no_grad

from .gradients import BATCH


def conv_layers(model):
    """The convolution layers of a deep learner's network, in definition order."""
    return [m for m in model.module_.modules() if isinstance(m, nn.Conv2d)]


def last_linear(model):
    """The network's last Linear layer: its input is the last hidden representation."""
    layers = [m for m in model.module_.modules() if isinstance(m, nn.Linear)]
    if not layers:
        raise ParameterError(f"{model.name}'s network has no Linear layer, so no last hidden "
                             "layer to map", argument="method")
    return layers[-1]


@contextlib.contextmanager
def recording(layer):
    """Within: every call of `layer` appends its (input, output) arrays to the list yielded."""
    calls = []
    plain = layer.forward

    def forward(x, *args, **kwargs):
        out = plain(x, *args, **kwargs)
        calls.append((np.asarray(x.cpu().data), np.asarray(out.cpu().data)))
        return out

    object.__setattr__(layer, "forward", forward)  # an instance attribute, not a submodule
    try:
        yield calls
    finally:
        object.__delattr__(layer, "forward")


def layer_values(model, layer, X, which):
    """The input (`which` 0) or output (1) of `layer` for each row of X, a network pass in
    batches; -> one array, rows first."""
    network_input = model._prepare(X)
    model.module_.eval()
    parts = []
    with recording(layer) as calls, no_grad():
        for start in range(0, len(network_input), BATCH):
            model.module_(model._network_tensor(network_input[start:start + BATCH]))
            parts.append(calls.pop()[which])
            calls.clear()
    return np.concatenate(parts)


def filters(model):
    """The first convolution's weights (filters, channels, height, width)."""
    layers = conv_layers(model)
    if not layers:
        raise ParameterError(f"{model.name} has no convolution layers", argument="method")
    return np.asarray(Tensor(layers[0].weight.cpu()).data, np.float64)


def feature_maps(model, X):
    """The first convolution layer's output maps for each row of X (rows, filters, h, w)."""
    layers = conv_layers(model)
    if not layers:
        raise ParameterError(f"{model.name} has no convolution layers", argument="method")
    return layer_values(model, layers[0], X, 1)


def hidden_map(model, X):
    """The last hidden layer's values for the rows of X projected on their first two
    principal components (the classic plugin's PCA); -> (points (rows, 2), variance shares)."""
    from nanoml.plugins import get_learner

    hidden = layer_values(model, last_linear(model), X, 0).reshape(len(X), -1)
    pca = get_learner("pca")(n_components=2).fit(hidden.astype(np.float64))
    return pca.transform(hidden.astype(np.float64)), pca.explained_variance_ratio_
