"""Autoencoder, VAE and GAN: the contract, what they learn on digits, their run folders."""

import json

import numpy as np
import pytest
from nanoml_deep.autoencoder import VAE, Autoencoder
from nanoml_deep.gan import GAN

from nanoml.testing import check_learner


@pytest.mark.parametrize("cls, params", [
    (Autoencoder, {"hidden_sizes": (8,), "code_size": 2, "epochs": 2}),
    (VAE, {"hidden_sizes": (8,), "latent_size": 2, "epochs": 2}),
    (GAN, {"hidden_sizes": (8,), "latent_size": 2, "epochs": 2}),
])
def test_contract(cls, params):
    check_learner(cls, params=params)


def test_autoencoder_compresses_like_pca(digits):
    decomposition = pytest.importorskip("sklearn.decomposition")
    model = Autoencoder(code_size=8, epochs=15).fit(digits.X_train)
    codes = model.transform(digits.X_test)
    assert codes.shape == (digits.X_test.shape[0], 8)
    np.testing.assert_array_equal(codes, model.predict(digits.X_test))
    restored = model.inverse_transform(codes)
    error = np.mean((restored - digits.X_test) ** 2)
    assert model.evaluate(digits.X_test)["reconstruction_mse"] == pytest.approx(error)
    pca = decomposition.PCA(8).fit(digits.X_train)
    pca_error = np.mean((pca.inverse_transform(pca.transform(digits.X_test)) - digits.X_test) ** 2)
    assert error < 1.2 * pca_error


def test_vae_loss_falls_and_samples_are_drawn(run_cli):
    result, out = run_cli("vae", "--epochs", "4", "--json")
    assert result.exit_code == 0, result.output
    history = json.loads((out / "metrics.json").read_text())["history"]
    assert history["loss"][-1] < 0.8 * history["loss"][0]
    assert history["val_loss"][-1] < history["val_loss"][0] - 2.0  # nats per sample
    assert (out / "samples.png").stat().st_size > 1000
    metrics = json.loads(result.stdout)["metrics"]
    assert metrics["neg_elbo"] == pytest.approx(metrics["reconstruction"] + metrics["kl"])
    assert metrics["neg_elbo"] < history["val_loss"][0]


def test_vae_samples_and_reconstructions_look_like_the_data(digits):
    model = VAE(epochs=10).fit(digits.X_train)
    samples = model.sample(500, seed=1)
    assert samples.shape == (500, 64)
    # Generated digits have the data's layout: mean image close to the data's, not flat.
    mean_gap = np.abs(samples.mean(axis=0) - digits.X_train.mean(axis=0)).mean()
    assert mean_gap < 0.15 * digits.X_train.mean()
    recon = model.predict(digits.X_test)
    assert np.mean((recon - digits.X_test) ** 2) < 0.5 * np.var(digits.X_test)
    np.testing.assert_array_equal(model.sample(3, seed=7), model.sample(3, seed=7))
    assert model.score(digits.X_test) == pytest.approx(-model.evaluate(digits.X_test)["neg_elbo"])


def test_gan_generator_gains_on_the_discriminator(run_cli):
    result, out = run_cli("gan", "--epochs", "15", "--json")
    assert result.exit_code == 0, result.output
    history = json.loads((out / "metrics.json").read_text())["history"]
    assert {"d_loss", "g_loss", "val_d_accuracy"} <= set(history)
    # The generator loss falls and the discriminator tells real from fake less often.
    assert history["g_loss"][-1] < history["g_loss"][0]
    assert history["val_d_accuracy"][-1] < history["val_d_accuracy"][0] - 0.1
    assert (out / "samples.png").stat().st_size > 1000
    metrics = json.loads(result.stdout)["metrics"]
    assert 0.0 <= metrics["d_accuracy"] <= 1.0


def test_gan_predicts_probabilities_and_samples_in_data_units(digits):
    model = GAN(epochs=2).fit(digits.X_train)
    p = model.predict(digits.X_test)
    assert p.shape == (digits.X_test.shape[0],) and np.all((p >= 0) & (p <= 1))
    samples = model.sample(10, seed=0)
    assert samples.shape == (10, 64)
    assert samples.min() >= digits.X_train.min() and samples.max() <= digits.X_train.max()
