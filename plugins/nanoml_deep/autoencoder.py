"""The autoencoder (a learned non-linear compression) and the variational autoencoder."""

import numpy as np

from nanoml import metrics, nn
from nanoml.deep import INFERENCE_BATCH, DeepLearner, GenerativeLearner
from nanoml.losses import binary_cross_entropy, kl_divergence, mse
from nanoml.ops.elementwise import sigmoid
from nanoml.tensor import Tensor, no_grad
from nanoml.validation import check_array, check_number
from nanoml_deep.mlp import dense_stack


class _EncoderDecoder(nn.Module):
    """Two dense stacks mirroring each other through a bottleneck of `code_width`."""

    def __init__(self, n_features, hidden, code_width, latent, rng):
        super().__init__()
        self.encoder = dense_stack((n_features, *hidden, code_width), rng)
        self.decoder = dense_stack((latent, *reversed(hidden), n_features), rng)

    def forward(self, x):
        return self.decoder(self.encoder(x))


class Autoencoder(DeepLearner):
    """Dense encoder to a code of `code_size`, mirrored decoder back, trained on the mean
    squared reconstruction error. ``transform`` (and ``predict``) give the code,
    ``inverse_transform`` the reconstruction from a code.
    """

    name = "autoencoder"
    task = "decomposition"
    default_dataset = "digits"
    description = "dense autoencoder: a ReLU encoder to a small code and a mirrored decoder"
    search_space = {"code_size": [2, 4, 8, 16], "hidden_sizes": [(64,), (128,), (256, 64)]}

    def __init__(self, hidden_sizes=(128,), code_size=8, epochs=30, batch_size=32, lr=1e-3,
                 seed=0, validation_fraction=0.1, patience=None, device="cpu",
                 input_shape=None):
        self.store_params(locals())

    def check_params(self):
        super().check_params()
        self._hidden_sizes()
        check_number("code_size", self.code_size, low=1, integer=True)

    def build_network(self, rng):
        return _EncoderDecoder(self.n_features_in_, self._hidden_sizes(), self.code_size,
                               self.code_size, rng)

    def batch_loss(self, x, y):
        return mse(self.module_(x), x), None

    def transform(self, X):
        """The code of each row, shape (samples, code_size)."""
        return self._forward(self._prepare(X), forward=self.module_.encoder).astype(np.float64)

    def predict(self, X):
        return self.transform(X)

    def inverse_transform(self, Z):
        """Rows in the original feature space decoded from codes Z."""
        self.check_fitted()
        Z = check_array(Z, name="Z", dtype=np.float32, n_features=self.code_size)
        return self._to_original(self._forward(Z, forward=self.module_.decoder))

    def evaluate(self, X, y=None):
        """Mean squared reconstruction error in the data's units, and the share of X's
        variance (around its mean) the reconstructions keep."""
        self.check_fitted()
        X = self._read_input(X, n_features=self.n_features_in_, shape=self.input_shape_)[0]
        X = X.astype(np.float64)
        restored = self.inverse_transform(self.transform(X))
        error = metrics.mean_squared_error(X, restored)
        total = metrics.mean_squared_error(X, np.broadcast_to(X.mean(axis=0), X.shape))
        return {"reconstruction_mse": error,
                "explained_variance_ratio": 1.0 - error / total if total > 0 else 1.0}

    def score(self, X, y=None):
        """Share of X's variance the reconstructions keep (higher is better)."""
        return self.evaluate(X)["explained_variance_ratio"]


class _VAENet(_EncoderDecoder):
    """The encoder emits mean and log-variance side by side (one Linear, 2 * latent wide)."""

    def __init__(self, n_features, hidden, latent, rng):
        super().__init__(n_features, hidden, 2 * latent, latent, rng)
        self.latent = latent

    def encode(self, x):
        out = self.encoder(x)
        return out[:, :self.latent], out[:, self.latent:]


class VAE(GenerativeLearner):
    """Variational autoencoder (Kingma and Welling): a Gaussian encoder, the
    reparameterisation z = mu + sigma * eps, a Bernoulli decoder on the [0, 1]-scaled data.

    The loss is the negative ELBO per sample: binary cross-entropy summed over features
    plus the KL divergence of the code from N(0, I). ``predict`` gives reconstructions,
    ``transform`` the code means, ``sample`` new data; ``score`` is the ELBO (higher is better).
    """

    name = "vae"
    default_dataset = "digits"
    description = "variational autoencoder: Gaussian code, Bernoulli decoder, writes samples.png"
    search_space = {"latent_size": [2, 4, 8, 16], "hidden_sizes": [(128,), (256,), (256, 128)]}
    scaling = "range"  # Bernoulli targets for the decoder's BCE must lie in [0, 1]

    def __init__(self, hidden_sizes=(256,), latent_size=8, epochs=30, batch_size=32, lr=1e-3,
                 seed=0, validation_fraction=0.1, patience=None, device="cpu",
                 input_shape=None):
        self.store_params(locals())

    def check_params(self):
        super().check_params()
        self._hidden_sizes()
        check_number("latent_size", self.latent_size, low=1, integer=True)

    def build_network(self, rng):
        return _VAENet(self.n_features_in_, self._hidden_sizes(), self.latent_size, rng)

    def _train(self, X, targets):
        self._noise = np.random.default_rng([self.seed, 1])  # eps, apart from the init draws
        return super()._train(X, targets)

    def _terms(self, x, noise):
        """(reconstruction, KL) of one batch, each per sample, with eps drawn from `noise`."""
        mu, logvar = self.module_.encode(x)
        eps = noise.standard_normal(mu.shape).astype(np.float32)
        z = mu + (logvar * 0.5).exp() * Tensor(eps).to(mu.device)
        # Rows outside the training range (held-out data) are clipped to valid Bernoulli targets.
        target = x.detach().clip(0.0, 1.0)
        reconstruction = binary_cross_entropy(self.module_.decoder(z), target) * x.shape[1]
        return reconstruction, kl_divergence(mu, logvar)

    def batch_loss(self, x, y):
        reconstruction, kl = self._terms(x, self._noise)
        return reconstruction + kl, None

    def decode(self, z):
        return sigmoid(self.module_.decoder(z))

    def predict(self, X):
        """Reconstructions (decoded code means) in the data's units."""
        return self._to_original(self._forward(
            self._prepare(X), forward=lambda x: self.decode(self.module_.encode(x)[0])))

    def transform(self, X):
        """The code means, shape (samples, latent_size)."""
        encoded = self._forward(self._prepare(X), forward=lambda x: self.module_.encode(x)[0])
        return encoded.astype(np.float64)

    def evaluate(self, X, y=None):
        """Negative ELBO per sample (nats, on the scaled data) and its two terms; the
        noise is drawn from the seed, so the same data always scores the same."""
        X = self._prepare(X)
        self.module_.eval()
        noise = np.random.default_rng([self.seed, 2])
        totals = np.zeros(2)
        with no_grad():
            for start in range(0, X.shape[0], INFERENCE_BATCH):
                batch = X[start:start + INFERENCE_BATCH]
                terms = self._terms(self._network_tensor(batch), noise)
                totals += [t.item() * batch.shape[0] for t in terms]
        reconstruction, kl = totals / X.shape[0]
        return {"neg_elbo": reconstruction + kl, "reconstruction": reconstruction, "kl": kl}

    def score(self, X, y=None):
        """The ELBO per sample (higher is better)."""
        return -self.evaluate(X)["neg_elbo"]
