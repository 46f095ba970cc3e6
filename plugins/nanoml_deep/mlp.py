"""The multilayer perceptron classifier, and the dense stack the other learners build from."""

from nanoml import nn
from nanoml.deep import NetworkClassifier
from nanoml.validation import check_number


def dense_stack(sizes, rng, *, dropout=0.0, activation=nn.ReLU):
    """Linear layers through `sizes` (input first, output last), `activation` and optional
    dropout between them, none after the last."""
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(n_in, n_out, rng=rng))
        if i < len(sizes) - 2:
            layers.append(activation())
            if dropout:
                layers.append(nn.Dropout(dropout, rng=rng))
    return nn.Sequential(*layers)


class MLP(NetworkClassifier):
    """Fully connected ReLU network with dropout, trained with Adam on cross-entropy.

    Features are standardised with the training mean and standard deviation.
    """

    name = "mlp"
    default_dataset = "digits"
    description = "multilayer perceptron: ReLU hidden layers, dropout, Adam, cross-entropy"
    search_space = {
        "hidden_sizes": [(64,), (128,), (256,), (128, 64)],
        "dropout": [0.0, 0.2, 0.5],
        "lr": [3e-4, 1e-3, 3e-3],
    }
    scaling = "features"

    def __init__(self, hidden_sizes=(128,), dropout=0.2, epochs=20, batch_size=32, lr=1e-3,
                 seed=0, validation_fraction=0.1, patience=None, device="cpu",
                 input_shape=None):
        self.store_params(locals())

    def check_params(self):
        super().check_params()
        self._hidden_sizes()
        check_number("dropout", self.dropout, low=0, high=0.95)

    def build_network(self, rng):
        sizes = (self.n_features_in_, *self._hidden_sizes(), self.n_outputs())
        return dense_stack(sizes, rng, dropout=self.dropout)
