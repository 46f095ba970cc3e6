"""Entry point of the deep plugin: registers its learners and the `sine` dataset."""

from nanoml import hookimpl
from nanoml_deep.autoencoder import VAE, Autoencoder
from nanoml_deep.cnn import CNN
from nanoml_deep.datasets import sine
from nanoml_deep.gan import GAN
from nanoml_deep.mlp import MLP
from nanoml_deep.recurrent import GRUClassifier, LSTMClassifier, LSTMForecaster, RNNClassifier


@hookimpl
def register_learners(register):
    for learner in (MLP, CNN, RNNClassifier, LSTMClassifier, GRUClassifier, LSTMForecaster,
                    Autoencoder, VAE, GAN):
        register(learner)


@hookimpl
def register_datasets(register):
    register("sine", sine, "noisy sum of sines in windows of 20 steps: forecast the next value")
