"""A generative adversarial network of two dense networks (Goodfellow et al., 2014)."""

import math
import time

import numpy as np
from scipy.special import expit
from tqdm.auto import tqdm

from nanoml import nn
from nanoml.deep import GenerativeLearner, show_progress
from nanoml.losses import binary_cross_entropy
from nanoml.ops.elementwise import sigmoid
from nanoml.optim import Adam
from nanoml.tensor import Tensor, no_grad
from nanoml.train import Rows, check_finite, minibatches, split_validation
from nanoml.validation import check_number
from nanoml_deep.mlp import dense_stack


class _GANNet(nn.Module):
    def __init__(self, n_features, hidden, latent, rng):
        super().__init__()
        self.generator = dense_stack((latent, *hidden, n_features), rng)
        # LeakyReLU keeps gradients flowing to the generator where the critic is sure.
        self.discriminator = dense_stack((n_features, *reversed(hidden), 1), rng,
                                         activation=lambda: nn.LeakyReLU(0.2))


class GAN(GenerativeLearner):
    """Generator (noise -> sample in [0, 1] through a sigmoid) against a discriminator
    (sample -> logit of "real"), trained in alternating Adam steps on binary
    cross-entropy from logits, the generator with the non-saturating loss.

    ``sample`` draws new data; ``predict`` is the discriminator's probability that each row
    is real; ``score`` its accuracy on held-out real rows against as many generated ones
    (0.5: it cannot tell them apart). The history holds d_loss and g_loss per epoch.
    Neither loss measures sample quality, so there is no early stopping: the run folder's
    checkpoint is rewritten after every epoch.
    """

    name = "gan"
    default_dataset = "digits"
    description = "generative adversarial network: dense generator and discriminator, samples.png"
    search_space = {"latent_size": [8, 16, 32], "hidden_sizes": [(128,), (256,), (256, 128)],
                    "lr": [1e-4, 2e-4, 5e-4]}
    scaling = "range"  # the generator's sigmoid output lives in [0, 1]

    def __init__(self, hidden_sizes=(128,), latent_size=16, epochs=50, batch_size=32, lr=2e-4,
                 seed=0, validation_fraction=0.1, device="cpu", input_shape=None):
        self.store_params(locals())

    def check_params(self):
        super().check_params()
        self._hidden_sizes()
        check_number("latent_size", self.latent_size, low=1, integer=True)

    def build_network(self, rng):
        return _GANNet(self.n_features_in_, self._hidden_sizes(), self.latent_size, rng)

    def decode(self, z):
        return sigmoid(self.module_.generator(z))

    def _fake(self, n, rng):
        z = rng.standard_normal((n, self.latent_size)).astype(np.float32)
        return self.decode(self._network_tensor(z))

    def _d_loss(self, real, fake):
        """(discriminator loss, its logits on real rows, its logits on fake rows)."""
        critic = self.module_.discriminator
        real_logits, fake_logits = critic(real), critic(fake)
        loss = (binary_cross_entropy(real_logits, np.ones(real_logits.shape, np.float32))
                + binary_cross_entropy(fake_logits, np.zeros(fake_logits.shape, np.float32)))
        return loss, real_logits, fake_logits

    def _g_loss(self, fake):
        """The non-saturating generator loss: -log D(fake)."""
        logits = self.module_.discriminator(fake)
        return binary_cross_entropy(logits, np.ones(logits.shape, np.float32))

    def _train(self, X, targets):
        """Alternating steps: the discriminator on a real and a fake batch, then the
        generator against the updated discriminator."""
        rng = np.random.default_rng(self.seed)
        train_rows, val_rows = split_validation(X.shape[0], self.validation_fraction, rng)
        real = Rows(X, self.device)
        net = self.module_
        betas = (0.5, 0.999)  # the usual GAN setting: less momentum, steadier alternation
        d_opt = Adam(net.discriminator.parameters(), lr=self.lr, betas=betas)
        g_opt = Adam(net.generator.parameters(), lr=self.lr, betas=betas)
        history = {}
        epochs = self._schedule(X.shape[0])[0]
        for epoch in range(1, epochs + 1):
            net.train()
            sums = np.zeros(2)
            started = time.perf_counter()
            batches = tqdm(minibatches(train_rows, self.batch_size, rng), leave=False,
                           total=math.ceil(train_rows.shape[0] / self.batch_size),
                           desc=f"{self.name} {epoch}/{epochs}", disable=not show_progress())
            for batch in batches:
                fake = self._fake(batch.shape[0], rng)
                # The discriminator's loss must not reach the generator: it sees a detached copy.
                d_loss = self._d_loss(Tensor(real.take(batch)), fake.detach())[0]
                where = f"at epoch {epoch}"
                d_value = check_finite(d_loss, "the discriminator loss", where, batches)
                d_opt.zero_grad()
                d_loss.backward()
                d_opt.step()
                g_loss = self._g_loss(fake)
                g_value = check_finite(g_loss, "the generator loss", where, batches)
                g_opt.zero_grad()
                g_loss.backward()
                g_opt.step()
                sums += np.multiply((d_value, g_value), batch.shape[0])
            results = dict(zip(("d_loss", "g_loss"), sums / train_rows.shape[0], strict=True))
            if val_rows.shape[0]:
                results.update(
                    ("val_" + k, v) for k, v in self._metrics(X[val_rows], rng).items())
            results["seconds"] = time.perf_counter() - started
            for key, value in results.items():
                history.setdefault(key, []).append(float(value))
            self._checkpoint(epoch)
        net.eval()
        return history

    def _metrics(self, X, rng):
        """Losses and the discriminator's accuracy on real rows X against as many fakes."""
        self.module_.eval()
        with no_grad():
            fake = self._fake(X.shape[0], rng)
            d_loss, real_logits, fake_logits = self._d_loss(self._network_tensor(X), fake)
            g_loss = self._g_loss(fake)
        accuracy = (np.mean(real_logits.cpu().data > 0) + np.mean(fake_logits.cpu().data < 0)) / 2
        return {"d_loss": d_loss.item(), "g_loss": g_loss.item(),
                "d_accuracy": float(accuracy)}

    def predict(self, X):
        """The discriminator's probability that each row is real data."""
        logits = self._forward(self._prepare(X), forward=self.module_.discriminator)
        return expit(logits[:, 0].astype(np.float64))

    def evaluate(self, X, y=None):
        """Discriminator accuracy, discriminator and generator losses on held-out real rows
        against as many generated ones (drawn from the seed, so repeatable)."""
        return self._metrics(self._prepare(X), np.random.default_rng([self.seed, 2]))

    def score(self, X, y=None):
        """The discriminator's accuracy on X against generated rows (0.5: indistinguishable)."""
        return self.evaluate(X)["d_accuracy"]
