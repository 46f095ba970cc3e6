"""Models a user composes from plain `nn` layers, trained in a plain loop, beside PyTorch's
identical model: what a third-party plugin or a user's script gets, not a built-in learner.

The model definitions take the layer namespace (`nanoml.nn` or `torch.nn`): both spell the
layers and their arguments alike, so the two sides are the same network by construction.
A training step is forward, cross-entropy, backward and one Adam update on a fixed batch.
"""

import numpy as np

from .peers import _torch


def tutorial_cnn(nn):
    """The tutorial's Keras CNN."""
    return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(32 * 13 * 13, 10))


def keras_convnet(nn):
    """Keras' mnist_convnet example."""
    return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.5),
                         nn.Linear(64 * 5 * 5, 10))


def mlp(nn):
    """784-256-128-10 with ReLU."""
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128),
                         nn.ReLU(), nn.Linear(128, 10))


def small_cifar(nn):
    """3-channel 32x32 input, padding 1 and a stride-2 convolution."""
    return nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(64 * 8 * 8, 10))


MODELS = {
    "tutorial_cnn": (tutorial_cnn, (1, 28, 28)),
    "keras_convnet": (keras_convnet, (1, 28, 28)),
    "mlp": (mlp, (1, 28, 28)),
    "small_cifar": (small_cifar, (3, 32, 32)),
}


def _data(model, batch, seed=0):
    rng = np.random.default_rng(seed)
    shape = MODELS[model][1]
    return rng.random((batch,) + shape, dtype=np.float32), rng.integers(0, 10, batch)


class _Pair:
    """setup builds the same model in nanoml and PyTorch and the data for both."""

    def _build(self, model, batch):
        from nanoml import nn, optim

        torch = _torch()
        make = MODELS[model][0]
        self.x, self.y = _data(model, batch)
        self.ours = make(nn)
        self.our_opt = optim.Adam(self.ours.parameters(), lr=1e-3)
        self.theirs = make(torch.nn)
        self.their_opt = torch.optim.Adam(self.theirs.parameters(), lr=1e-3)
        self.torch = torch
        self.tx, self.ty = torch.from_numpy(self.x), torch.from_numpy(self.y)


class TrainStep(_Pair):
    """One training step of each model at batch 32 and 128."""

    params = (list(MODELS), [32, 128])
    param_names = ["model", "batch"]
    timeout = 300

    def setup(self, model, batch):
        self._build(model, batch)
        for _ in range(2):  # compile or load the kernels, warm the allocators
            self.time_nanoml(model, batch)
            self.time_torch(model, batch)

    def time_nanoml(self, model, batch):
        from nanoml import losses
        from nanoml.tensor import Tensor

        self.our_opt.zero_grad()
        losses.cross_entropy(self.ours(Tensor(self.x)), self.y).backward()
        self.our_opt.step()

    def time_torch(self, model, batch):
        self.their_opt.zero_grad()
        self.torch.nn.functional.cross_entropy(self.theirs(self.tx), self.ty).backward()
        self.their_opt.step()


class Inference(_Pair):
    """Predictions without a graph, in eval mode: a batch of 1,000 and a single image."""

    params = (list(MODELS), [1, 1000])
    param_names = ["model", "batch"]
    timeout = 300

    def setup(self, model, batch):
        self._build(model, batch)
        self.ours.eval()
        self.theirs.eval()
        self.time_nanoml(model, batch)
        self.time_torch(model, batch)

    def time_nanoml(self, model, batch):
        from nanoml.tensor import Tensor, no_grad

        with no_grad():
            self.ours(Tensor(self.x))

    def time_torch(self, model, batch):
        with self.torch.no_grad():
            self.theirs(self.tx)


class TinyStep:
    """The per-step cost of the framework itself: a Linear 4 -> 2 on a batch of 8, MSE, SGD."""

    def setup(self):
        from nanoml import nn, optim

        torch = _torch()
        rng = np.random.default_rng(0)
        self.x = rng.random((8, 4), dtype=np.float32)
        self.t = rng.random((8, 2), dtype=np.float32)
        self.ours = nn.Linear(4, 2)
        self.our_opt = optim.SGD(self.ours.parameters(), lr=0.01)
        self.theirs = torch.nn.Linear(4, 2)
        self.their_opt = torch.optim.SGD(self.theirs.parameters(), lr=0.01)
        self.torch = torch
        self.tx, self.tt = torch.from_numpy(self.x), torch.from_numpy(self.t)
        self.time_nanoml()
        self.time_torch()

    def time_nanoml(self):
        from nanoml import losses
        from nanoml.tensor import Tensor

        self.our_opt.zero_grad()
        losses.mse(self.ours(Tensor(self.x)), self.t).backward()
        self.our_opt.step()

    def time_torch(self):
        self.their_opt.zero_grad()
        self.torch.nn.functional.mse_loss(self.theirs(self.tx), self.tt).backward()
        self.their_opt.step()


class ConvnetEpochMemory:
    """Peak memory of one epoch (2,048 images) of the Keras convnet at batch 128. Each side
    imports only its own framework, in the measured process."""

    timeout = 300
    rows = 2048
    batch = 128

    def setup(self):
        self.x, self.y = _data("keras_convnet", self.rows)

    def peakmem_nanoml(self):
        from nanoml import losses, nn, optim
        from nanoml.tensor import Tensor

        model = keras_convnet(nn)
        opt = optim.Adam(model.parameters(), lr=1e-3)
        for start in range(0, self.rows, self.batch):
            rows = slice(start, start + self.batch)
            opt.zero_grad()
            losses.cross_entropy(model(Tensor(self.x[rows])), self.y[rows]).backward()
            opt.step()

    def peakmem_torch(self):
        torch = _torch()
        model = keras_convnet(torch.nn)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        x, y = torch.from_numpy(self.x), torch.from_numpy(self.y)
        for start in range(0, self.rows, self.batch):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[start:start + self.batch]),
                                              y[start:start + self.batch]).backward()
            opt.step()
