"""What every deep learner gets from the base class: checkpoints, divergence, early stopping,
devices, input checks."""

import json

import numpy as np
import pytest
from nanoml_deep.mlp import MLP

from nanoml import Learner
from nanoml.errors import DeviceError, InputError, ParameterError
from nanoml.train import TrainingDivergedError


class _DivergesInEpochTwo(MLP):
    """An MLP whose loss turns infinite once the second epoch starts."""

    def batch_loss(self, x, y):
        loss, logits = super().batch_loss(x, y)
        self._batches = getattr(self, "_batches", 0) + 1
        return (loss * float("inf") if self._batches > self._per_epoch else loss), logits


def test_divergence_keeps_the_last_good_checkpoint(digits, tmp_path):
    params = {"epochs": 3, "validation_fraction": 0.0, "batch_size": 64}
    model = _DivergesInEpochTwo(**params)
    model._per_epoch = int(np.ceil(digits.X_train.shape[0] / 64))
    with pytest.raises(TrainingDivergedError, match="epoch 2.*last good model was kept"):
        model.fit(digits.X_train, digits.y_train, checkpoint=str(tmp_path / "model.npz"))
    assert not model.is_fitted()
    saved = Learner.load(tmp_path / "model.npz")
    after_one_epoch = MLP(**{**params, "epochs": 1}).fit(digits.X_train, digits.y_train)
    np.testing.assert_array_equal(saved.predict_proba(digits.X_test),
                                  after_one_epoch.predict_proba(digits.X_test))


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid:RuntimeWarning")
def test_huge_learning_rate_stops_with_one_line(run_cli):
    result, out = run_cli("mlp", "--lr", "1e30", "--epochs", "2")
    assert result.exit_code == 2
    assert "loss became" in result.output and "(--lr)" in result.output
    assert "Traceback" not in result.output


def test_run_checkpoints_and_writes_curves(run_cli):
    result, out = run_cli("mlp", "--epochs", "3", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["metrics"]["accuracy"] > 0.85
    assert {"model.npz", "curves.png"} <= {p.name for p in out.iterdir()}
    history = json.loads((out / "metrics.json").read_text())["history"]
    assert len(history["val_loss"]) == 3 and len(history["accuracy"]) == 3


def test_early_stopping_when_validation_stops_improving():
    # Labels that are pure noise: the validation loss rises as soon as the network memorises.
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 20))
    y = rng.integers(0, 2, 300)
    model = MLP(hidden_sizes=(128,), dropout=0.0, epochs=50, patience=1,
                validation_fraction=0.3).fit(X, y)
    val = model.history_["val_loss"]
    assert len(val) < 50
    assert val[-1] >= min(val[:-1])  # stopped after one epoch without improvement


def test_cuda_without_a_gpu_is_a_clear_device_error(digits, monkeypatch):
    from numba import cuda

    monkeypatch.setattr(cuda, "is_available", lambda: False)
    monkeypatch.setattr(cuda, "cuda_error",
                        lambda: "Call to cuInit results in CUDA_ERROR_NO_DEVICE (100)")
    with pytest.raises(DeviceError, match="device 'cuda' is not available: the NVIDIA driver"):
        MLP(device="cuda").fit(digits.X_train, digits.y_train)


@pytest.mark.parametrize("params, message", [
    ({"epochs": 0}, "epochs"),
    ({"lr": -1.0}, "lr"),
    ({"hidden_sizes": (4, 0)}, "hidden_sizes"),
    ({"validation_fraction": 1.0}, "validation_fraction"),
    ({"input_shape": (1, 8)}, "input_shape"),
])
def test_bad_hyperparameters_name_themselves(digits, params, message):
    with pytest.raises(ParameterError, match=message):
        MLP(**params).fit(digits.X_train, digits.y_train)


def test_images_may_come_shaped(digits):
    images = digits.X_train.reshape(-1, 1, 8, 8)
    model = MLP(epochs=1).fit(images, digits.y_train)
    assert model.input_shape_ == (1, 8, 8)
    np.testing.assert_array_equal(model.predict(digits.X_test),
                                  model.predict(digits.X_test.reshape(-1, 1, 8, 8)))
    with pytest.raises(InputError, match=r"\(1, 4, 16\)"):
        model.predict(digits.X_test.reshape(-1, 1, 4, 16))


def test_mean_and_std_match_numpy_in_float64():
    from nanoml.deep import mean_and_std

    X = np.random.default_rng(0).random((1000, 7), dtype=np.float32) * 100 + 1e4
    mean, std = mean_and_std(X, rows=64)
    assert mean == pytest.approx(X.mean(dtype=np.float64), rel=1e-12)
    assert std == pytest.approx(X.std(dtype=np.float64), rel=1e-9)


@pytest.mark.parametrize("setting, lines", [("", 3), ("off", 0)])
def test_without_a_terminal_each_epoch_is_one_line_on_stderr(monkeypatch, capsys, setting,
                                                              lines):
    monkeypatch.setenv("NANOML_PROGRESS", setting)
    X = np.random.default_rng(0).standard_normal((60, 4))
    MLP(hidden_sizes=(8,), epochs=3).fit(X, (X[:, 0] > 0).astype(int))
    err = capsys.readouterr().err
    assert err.count("mlp epoch ") == lines
    assert "\r" not in err  # no bar redraws in a log
