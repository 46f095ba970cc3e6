"""Row-reading RNN/LSTM/GRU classifiers and the LSTM forecaster."""

import json

import numpy as np
import pytest
from nanoml_deep.recurrent import GRUClassifier, LSTMClassifier, LSTMForecaster, RNNClassifier

from nanoml.errors import ParameterError
from nanoml.losses import cross_entropy
from nanoml.tensor import Tensor
from nanoml.testing import check_learner

CLASSIFIERS = [RNNClassifier, LSTMClassifier, GRUClassifier]


@pytest.mark.parametrize("cls", CLASSIFIERS)
def test_contract(cls, digits):
    check_learner(cls, params={"hidden_size": 8, "epochs": 1},
                  data=(digits.X_train[:150], digits.y_train[:150]))


def test_forecaster_contract():
    check_learner(LSTMForecaster, params={"hidden_size": 4, "epochs": 2})


@pytest.mark.parametrize("cls", CLASSIFIERS)
def test_learns_digits_row_by_row(cls, digits):
    model = cls(epochs=5, input_shape=(1, 8, 8)).fit(digits.X_train, digits.y_train)
    assert model.input_shape_ == (8, 8)  # one-channel image -> 8 steps of 8 pixels
    assert model.score(digits.X_test, digits.y_test) > 0.85


def test_multichannel_images_are_refused(digits):
    with pytest.raises(ParameterError, match="one-channel"):
        LSTMClassifier(input_shape=(4, 4, 4)).fit(digits.X_train, digits.y_train)


@pytest.mark.parametrize("cls, torch_name", [
    (RNNClassifier, "RNN"), (LSTMClassifier, "LSTM"), (GRUClassifier, "GRU")])
def test_forward_loss_and_gradients_match_torch(cls, torch_name, digits):
    torch = pytest.importorskip("torch")
    model = cls(hidden_size=16, epochs=1).fit(digits.X_train[:200], digits.y_train[:200])
    recurrent = getattr(torch.nn, torch_name)(8, 16, batch_first=True)
    head = torch.nn.Linear(16, 10)
    weights = model.module_.state_dict()
    with torch.no_grad():
        for prefix, layer in (("recurrent.", recurrent), ("head.", head)):
            for name, param in layer.named_parameters():
                param.copy_(torch.from_numpy(weights[prefix + name]))
    x = model._network_input(digits.X_test[:40].astype(np.float32))
    y = model._fit_targets(digits.y_test[:40], 40)[1]
    model.module_.zero_grad()
    ours = cross_entropy(model.module_(Tensor(x)), y)
    ours.backward()
    outputs, _ = recurrent(torch.from_numpy(x))
    theirs = torch.nn.functional.cross_entropy(head(outputs[:, -1]), torch.from_numpy(y))
    theirs.backward()
    assert float(ours.data) == pytest.approx(theirs.item(), rel=1e-5)
    grads = dict(model.module_.named_parameters())
    for prefix, layer in (("recurrent.", recurrent), ("head.", head)):
        for name, param in layer.named_parameters():
            np.testing.assert_allclose(grads[prefix + name].grad, param.grad.numpy(),
                                       rtol=1e-3, atol=1e-6)


def test_forecaster_nearly_matches_the_best_linear_predictor(run_cli):
    from nanoml.data import load_dataset

    result, out = run_cli("lstm-forecaster", "--epochs", "10", "--json")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)["metrics"]
    data = load_dataset("sine")
    # A sum of two sines obeys a linear recurrence: least squares on the window is close to
    # the best any predictor does with these noisy inputs. Repeating the last value is not.
    design = np.c_[data.X_train, np.ones(len(data.X_train))]
    coef = np.linalg.lstsq(design, data.y_train, rcond=None)[0]
    linear = np.mean((np.c_[data.X_test, np.ones(len(data.X_test))] @ coef - data.y_test) ** 2)
    naive = np.mean((data.X_test[:, -1] - data.y_test) ** 2)
    assert metrics["mse"] < 1.25 * linear < 0.6 * naive
    assert metrics["r2"] > 0.9
