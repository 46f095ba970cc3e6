"""The tutorial's convolutional network, layer for layer the Keras model it shows."""

import math

from nanoml import nn
from nanoml.deep import NetworkClassifier
from nanoml.errors import ParameterError
from nanoml.validation import check_number

KERNEL = 3
POOL = 2


class CNN(NetworkClassifier):
    """Conv2d(channels -> 32, 3x3) + ReLU, 2x2 max pooling (which `nn.Sequential` runs as
    one fused op), flatten, one Linear layer to the classes (softmax cross-entropy from the
    logits), Adam; weights initialised as Keras does (Glorot-uniform, zero bias).

    The Keras original::

        Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1))
        MaxPooling2D((2, 2)); Flatten(); Dense(10, activation="softmax")
        compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        fit(epochs=10, batch_size=32, validation_split=0.1)

    Beyond the tutorial, for tuning (their defaults are the tutorial's model):
    ``filters`` sets the convolution's width; ``hidden`` > 0 puts a hidden dense layer of
    that many ReLU units before the output; ``dropout`` > 0 drops that share of the
    features before each dense layer while training.
    Pixels are standardised with the mean and standard deviation of all training pixels.
    At the default ``epochs=None`` it trains the tutorial's 10 epochs where an epoch is
    long (Fashion-MNIST) and, on small data (the 8x8 digits), more epochs with early
    stopping on the validation loss (see `nanoml.deep.DeepLearner`).
    """

    name = "cnn"
    default_dataset = "digits"
    description = "the tutorial's CNN: conv 3x3x32 + ReLU, 2x2 max pool, dense softmax; Adam"
    # capacity (filters, hidden) is left to --space: on small data its larger models only
    # cost time
    search_space = {"lr": [3e-4, 1e-3, 3e-3], "batch_size": [32, 64, 128],
                    "dropout": [0.0, 0.25, 0.5]}
    input_ndim = 3

    def __init__(self, epochs=None, batch_size=32, lr=1e-3, seed=0, validation_fraction=0.1,
                 patience=None, device="cpu", input_shape=None, dropout=0.0, filters=32,
                 hidden=0):
        self.store_params(locals())

    def check_params(self):
        super().check_params()
        check_number("dropout", self.dropout, low=0, high=0.95)
        check_number("filters", self.filters, low=1, integer=True)
        check_number("hidden", self.hidden, low=0, integer=True)

    def build_network(self, rng):
        channels, height, width = self.input_shape_
        pooled_h, pooled_w = (height - KERNEL + 1) // POOL, (width - KERNEL + 1) // POOL
        if min(pooled_h, pooled_w) < 1:
            raise ParameterError(
                f"cnn needs images of at least {KERNEL + POOL - 1}x{KERNEL + POOL - 1} "
                f"pixels, got input_shape {self.input_shape_}"
            )
        conv = nn.Conv2d(channels, self.filters, KERNEL, rng=rng)
        widths = [self.filters * pooled_h * pooled_w] + [self.hidden] * (self.hidden > 0)
        denses = [nn.Linear(n_in, n_out, rng=rng)
                  for n_in, n_out in zip(widths, widths[1:] + [self.n_outputs()], strict=True)]
        for layer in (conv, *denses):
            _keras_init(layer, rng)
        layers = [conv, nn.ReLU(), nn.MaxPool2d(POOL), nn.Flatten()]
        for i, dense in enumerate(denses):
            layers += [nn.ReLU()] if i else []
            # no Dropout layer at 0, so that the tutorial model keeps its keys
            layers += [nn.Dropout(self.dropout, rng=rng)] if self.dropout > 0 else []
            layers.append(dense)
        return nn.Sequential(*layers)


def _keras_init(layer, rng):
    """Glorot-uniform weights and zero bias, Keras's defaults, so that the model starts
    as the tutorial's does (nanoml's layers default to He-uniform)."""
    weight = layer.weight.data
    receptive = math.prod(weight.shape[2:])  # 1 for a dense layer
    fan_in, fan_out = weight.shape[1] * receptive, weight.shape[0] * receptive
    weight[...] = nn.init.glorot_uniform(weight.shape, fan_in, fan_out, rng)
