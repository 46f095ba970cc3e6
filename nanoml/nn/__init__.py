"""Layers and the Module/Parameter base classes; each layer family re-exported here."""
# ruff: noqa: F401
# (this module exists to re-export names)

from nanoml.nn import init
from nanoml.nn.activation import LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from nanoml.nn.container import ModuleList, Sequential
from nanoml.nn.conv import AvgPool2d, Conv2d, ConvPoolReLU2d, MaxPool2d
from nanoml.nn.dropout import Dropout
from nanoml.nn.embedding import Embedding
from nanoml.nn.linear import Flatten, Linear
from nanoml.nn.module import Module, Parameter
from nanoml.nn.norm import BatchNorm1d, BatchNorm2d
from nanoml.nn.recurrent import GRU, LSTM, RNN
