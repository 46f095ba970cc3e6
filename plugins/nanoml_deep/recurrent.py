"""Recurrent learners: image classifiers that read rows as steps, and an LSTM forecaster."""

from nanoml import nn
from nanoml.deep import NetworkClassifier, NetworkRegressor
from nanoml.errors import ParameterError
from nanoml.validation import check_number


class _LastStep(nn.Module):
    """A recurrent layer over the whole sequence, then a Linear layer on its last output."""

    def __init__(self, layer, n_inputs, hidden_size, n_outputs, rng):
        super().__init__()
        self.recurrent = layer(n_inputs, hidden_size, batch_first=True, rng=rng)
        self.head = nn.Linear(hidden_size, n_outputs, rng=rng)

    def forward(self, x):
        outputs, _ = self.recurrent(x)
        return self.head(outputs[:, -1])


class _Recurrent:
    """What the recurrent learners share: `layer` (RNN, LSTM or GRU), `hidden_size`, and
    input of shape (steps, features)."""

    layer = None
    input_ndim = 2

    def check_params(self):
        super().check_params()
        check_number("hidden_size", self.hidden_size, low=1, integer=True)

    def build_network(self, rng):
        steps, features = self.input_shape_
        return _LastStep(self.layer, features, self.hidden_size, self.n_outputs(), rng)


class _RowReader(_Recurrent, NetworkClassifier):
    """Classify an image by reading it one row per step (steps = height, features = width).

    Pixels are standardised with the mean and standard deviation of all training pixels;
    the last step's hidden state goes through a Linear layer to the class logits (softmax
    cross-entropy, Adam).
    """

    default_dataset = "digits"
    search_space = {"hidden_size": [32, 64, 128, 256], "lr": [3e-4, 1e-3, 3e-3]}

    def __init__(self, hidden_size=128, epochs=10, batch_size=64, lr=1e-3, seed=0,
                 validation_fraction=0.1, patience=None, device="cpu", input_shape=None):
        self.store_params(locals())

    def _network_shape(self, shape):
        if len(shape) != 3:
            return shape
        if shape[0] != 1:
            raise ParameterError(
                f"{self.name} reads one-channel images row by row; got input_shape {shape} "
                f"with {shape[0]} channels"
            )
        return shape[1:]


class RNNClassifier(_RowReader):
    __doc__ = "Elman RNN (tanh). " + _RowReader.__doc__
    name = "rnn"
    layer = nn.RNN
    description = "tanh RNN reading an image row by row, Linear head on the last step"


class LSTMClassifier(_RowReader):
    __doc__ = "LSTM. " + _RowReader.__doc__
    name = "lstm"
    layer = nn.LSTM
    description = "LSTM reading an image row by row, Linear head on the last step"


class GRUClassifier(_RowReader):
    __doc__ = "GRU. " + _RowReader.__doc__
    name = "gru"
    layer = nn.GRU
    description = "GRU reading an image row by row, Linear head on the last step"


class LSTMForecaster(_Recurrent, NetworkRegressor):
    """Predict the next value of a series from a window of past steps with an LSTM.

    Windows and targets are standardised with the training data's statistics; a window of
    n values with no input_shape is read as n steps of one feature.
    """

    name = "lstm-forecaster"
    default_dataset = "sine"
    description = "LSTM forecaster: a window of past steps -> the next value (regression)"
    search_space = {"hidden_size": [16, 32, 64], "lr": [1e-3, 3e-3, 1e-2]}
    layer = nn.LSTM

    def __init__(self, hidden_size=32, epochs=20, batch_size=32, lr=3e-3, seed=0,
                 validation_fraction=0.1, patience=None, device="cpu", input_shape=None):
        self.store_params(locals())

    def _guess_shape(self, n_features):
        return (n_features, 1)
