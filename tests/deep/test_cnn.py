"""The tutorial's CNN: its layers, the contract, PyTorch agreement, and digits through the CLI."""

import json

import numpy as np
import pytest
from nanoml_deep.cnn import CNN

import nanoml
from nanoml.errors import ParameterError
from nanoml.losses import cross_entropy
from nanoml.nn.fusion import fused_steps
from nanoml.tensor import Tensor
from nanoml.testing import check_learner


def test_contract(digits):
    check_learner(CNN, params={"epochs": 1}, data=(digits.X_train[:150], digits.y_train[:150]))


def test_layers_are_the_tutorials(digits):
    model = CNN(epochs=1, validation_fraction=0.0).fit(digits.X_train[:64], digits.y_train[:64])
    kinds = [type(layer).__name__ for layer in model.module_]
    assert kinds == ["Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear"]
    assert model.module_[2].kernel_size == (2, 2)
    # Sequential runs the first three as the kernel-fused conv + pool + ReLU.
    assert len(fused_steps(list(model.module_))) == 3
    shapes = {k: v.shape for k, v in model.module_.state_dict().items()}
    # 8x8 digits: conv 3x3 -> 6x6, pool 2x2 -> 3x3, 32 * 3 * 3 = 288 features.
    assert shapes == {"0.weight": (32, 1, 3, 3), "0.bias": (32,), "4.weight": (10, 288),
                      "4.bias": (10,)}
    assert model.input_shape_ == (1, 8, 8)


def test_dropout_sits_before_the_dense_layer_and_survives_a_save(digits, tmp_path):
    model = CNN(epochs=1, dropout=0.5).fit(digits.X_train[:64], digits.y_train[:64])
    kinds = [type(layer).__name__ for layer in model.module_]
    assert kinds == ["Conv2d", "ReLU", "MaxPool2d", "Flatten", "Dropout", "Linear"]
    assert model.module_[4].p == 0.5
    model.save(tmp_path / "model.npz")
    loaded = CNN.load(tmp_path / "model.npz")
    np.testing.assert_array_equal(loaded.predict(digits.X_test), model.predict(digits.X_test))
    with pytest.raises(ParameterError, match="dropout"):
        CNN(dropout=1.5).fit(digits.X_train[:64], digits.y_train[:64])


def test_input_shape_is_inferred_or_required(digits):
    with pytest.raises(ParameterError, match="input_shape"):
        CNN(epochs=1).fit(np.zeros((20, 10)), np.arange(20) % 2)
    with pytest.raises(ParameterError, match="at least 4x4"):
        CNN(epochs=1, input_shape=(1, 3, 3)).fit(np.zeros((20, 9)), np.arange(20) % 2)
    shaped = digits.X_train[:64].reshape(-1, 4, 4, 4)
    model = CNN(epochs=1).fit(shaped, digits.y_train[:64])
    assert model.input_shape_ == (4, 4, 4)
    assert model.module_[0].weight.shape == (32, 4, 3, 3)


def test_width_and_a_hidden_layer_are_hyperparameters(digits, tmp_path):
    model = CNN(epochs=1, filters=8, hidden=16, dropout=0.25).fit(digits.X_train[:64],
                                                                  digits.y_train[:64])
    kinds = [type(layer).__name__ for layer in model.module_]
    assert kinds == ["Conv2d", "ReLU", "MaxPool2d", "Flatten", "Dropout", "Linear", "ReLU",
                     "Dropout", "Linear"]
    shapes = {k: v.shape for k, v in model.module_.state_dict().items()}
    assert shapes == {"0.weight": (8, 1, 3, 3), "0.bias": (8,), "5.weight": (16, 72),
                      "5.bias": (16,), "8.weight": (10, 16), "8.bias": (10,)}
    model.save(tmp_path / "model.npz")
    loaded = CNN.load(tmp_path / "model.npz")
    np.testing.assert_array_equal(loaded.predict(digits.X_test), model.predict(digits.X_test))
    for bad in ({"filters": 0}, {"hidden": -1}, {"hidden": 2.5}):
        with pytest.raises(ParameterError, match=next(iter(bad))):
            CNN(**bad).fit(digits.X_train[:64], digits.y_train[:64])


@pytest.mark.parametrize("params", [{}, {"filters": 8, "hidden": 16}])
def test_forward_loss_and_gradients_match_torch(digits, params):
    torch = pytest.importorskip("torch")
    model = CNN(epochs=1, **params).fit(digits.X_train[:200], digits.y_train[:200])
    filters = params.get("filters", 32)
    dense = ([torch.nn.Linear(filters * 9, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10)]
             if params else [torch.nn.Linear(filters * 9, 10)])
    reference = torch.nn.Sequential(
        torch.nn.Conv2d(1, filters, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), *dense)
    weights = model.module_.state_dict()
    with torch.no_grad():
        for name, param in reference.named_parameters():
            param.copy_(torch.from_numpy(weights[name]))
    x = model._network_input(digits.X_test[:50].astype(np.float32))
    y = model._fit_targets(digits.y_test[:50], 50)[1]
    logits = model.module_(Tensor(x))
    ours = cross_entropy(logits, y)
    model.module_.zero_grad()
    ours.backward()
    torch_logits = reference(torch.from_numpy(x))
    theirs = torch.nn.functional.cross_entropy(torch_logits, torch.from_numpy(y))
    theirs.backward()
    np.testing.assert_allclose(logits.data, torch_logits.detach().numpy(), rtol=1e-4, atol=1e-5)
    assert float(ours.data) == pytest.approx(theirs.item(), rel=1e-5)
    ours_grads = dict(model.module_.named_parameters())
    for name, param in reference.named_parameters():
        np.testing.assert_allclose(ours_grads[name].grad, param.grad.numpy(), rtol=1e-3,
                                   atol=1e-6)


def test_defaults_reach_97_percent_on_digits_over_five_seeds(tmp_path):
    # The defaults: epochs=None trains small data longer, with early stopping.
    accuracies = []
    for seed in range(5):
        result = nanoml.run("cnn", dataset="digits", seed=seed, out=tmp_path / str(seed))
        accuracies.append(result.metrics["accuracy"])
        assert result.model.input_shape_ == (1, 8, 8)  # taken from the dataset's images
        assert len(result.model.history_["loss"]) > 10  # more than the tutorial's 10 epochs
    assert np.mean(accuracies) >= 0.97, accuracies
    config = json.loads((tmp_path / "0" / "config.json").read_text())
    assert config["params"]["epochs"] is None and config["params"]["batch_size"] == 32


def test_defaults_keep_the_tutorials_ten_epochs_where_an_epoch_is_long():
    # Fashion-MNIST's 54,000 training images: 1,688 steps an epoch.
    assert CNN()._schedule(60000) == (10, 10)
    assert CNN(epochs=3)._schedule(60000) == (3, None)
    epochs, patience = CNN()._schedule(1347)  # the digits: 38 steps an epoch
    assert epochs == 106 and patience == 10
