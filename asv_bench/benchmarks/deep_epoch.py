"""One training epoch of the deep learners, beside PyTorch doing the same work.

Fixed random MNIST-shaped data (2,048 images of 28x28, 10 classes); no validation split, so
both sides do exactly the epoch's forward, backward and Adam steps.
"""

import numpy as np

from .peers import _torch, _torch_train

N_IMAGES = 2048


def _images(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((N_IMAGES, 28 * 28), dtype=np.float32)
    y = rng.integers(0, 10, N_IMAGES)
    return X, y


def _torch_cnn(torch):
    """The tutorial's CNN in PyTorch, with PyTorch's default initialisation."""
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(32 * 13 * 13, 10))


class _Epoch:
    timeout = 600
    number = 1
    repeat = 3
    batch_size = None

    def _learner(self):
        raise NotImplementedError

    def _torch_model(self, torch):
        raise NotImplementedError

    def setup(self):
        torch = _torch()
        self.X, self.y = _images()
        # Load (or compile) the kernels outside the timed epoch.
        self._learner().fit(self.X[:64], self.y[:64])
        self.torch = torch
        self.X_torch = torch.from_numpy(self.X.reshape(-1, 1, 28, 28))
        self.y_torch = torch.from_numpy(self.y)

    def time_nanoml(self):
        self._learner().fit(self.X, self.y)

    def peakmem_nanoml(self):
        self._learner().fit(self.X, self.y)

    def time_torch(self):
        torch = self.torch
        torch.manual_seed(0)
        _torch_train(torch, self._torch_model(torch), self.X_torch, self.y_torch, self.batch_size)


class CNNEpoch(_Epoch):
    """The tutorial's CNN (conv 3x3x32 + ReLU, 2x2 max pool, dense), batch 32."""

    batch_size = 32

    def _learner(self):
        from nanoml_deep.cnn import CNN

        return CNN(epochs=1, batch_size=self.batch_size, validation_fraction=0.0,
                   input_shape=(1, 28, 28))

    def _torch_model(self, torch):
        return _torch_cnn(torch)


class RowLSTMEpoch(_Epoch):
    """The row LSTM (28 steps of 28 pixels, 128 hidden units, Linear head), batch 64."""

    batch_size = 64

    def _learner(self):
        from nanoml_deep.recurrent import LSTMClassifier

        return LSTMClassifier(epochs=1, batch_size=self.batch_size,
                              validation_fraction=0.0, input_shape=(1, 28, 28))

    def _torch_model(self, torch):
        class RowLSTM(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.lstm = torch.nn.LSTM(28, 128, batch_first=True)
                self.head = torch.nn.Linear(128, 10)

            def forward(self, x):
                outputs, _ = self.lstm(x.reshape(-1, 28, 28))
                return self.head(outputs[:, -1])

        return RowLSTM()
