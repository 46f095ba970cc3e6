"""Fashion-MNIST test accuracy of the tutorial's CNN after 3 epochs, beside PyTorch's
identical model, one value per seed.

One run's accuracy moves by about +-0.005 with the seed (initial weights, validation rows,
batch order), so the seeds are tracked side by side: compare the two columns' spread, not
one pair. Both models start from Keras's initialisation (Glorot-uniform weights, zero
biases), train on a random 90% of the training images with Adam 1e-3 at batch 32, and see
pixels standardised with the training set's mean and standard deviation. nanoml keeps the
epoch with the best validation loss (its training loop's rule); PyTorch keeps the last.

Runs only where the files are already on disk (``nanoml run cnn --dataset fashion-mnist``
fetches them): a benchmark should not download 30 MB.
"""

import numpy as np

from .deep_epoch import _torch_cnn
from .peers import _torch, _torch_train

EPOCHS = 3


class CNNFashionAccuracy:
    params = [0, 1, 2, 3, 4]
    param_names = ["seed"]
    unit = "test accuracy"
    timeout = 900
    rounds = 1

    def setup(self, seed):
        from nanoml.data import load_dataset
        from nanoml.data.mnist import local_files

        if local_files("fashion-mnist") is None:
            raise NotImplementedError("Fashion-MNIST is not on disk")
        self.data = load_dataset("fashion-mnist")

    def track_nanoml(self, seed):
        from nanoml_deep.cnn import CNN

        data = self.data
        model = CNN(epochs=EPOCHS, seed=seed, input_shape=(1, 28, 28))
        return model.fit(data.X_train, data.y_train).score(data.X_test, data.y_test)

    def track_torch(self, seed):
        torch = _torch()
        torch.manual_seed(seed)
        data = self.data
        mean, std = data.X_train.mean(dtype=np.float64), data.X_train.std(dtype=np.float64)

        def images(X):
            return torch.from_numpy(((X - mean) / std).astype(np.float32).reshape(-1, 1, 28, 28))

        keep = np.random.default_rng(seed).permutation(len(data.y_train))
        keep = keep[: len(keep) * 9 // 10]
        model = _torch_cnn(torch)
        for parameter in model.parameters():
            if parameter.ndim > 1:
                torch.nn.init.xavier_uniform_(parameter)
            else:
                torch.nn.init.zeros_(parameter)
        _torch_train(torch, model, images(data.X_train[keep]),
                     torch.from_numpy(data.y_train[keep].astype(np.int64)), 32, EPOCHS, seed)
        with torch.no_grad():
            predicted = model(images(data.X_test)).argmax(1).numpy()
        return float(np.mean(predicted == data.y_test))
