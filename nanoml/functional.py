"""Every differentiable op, for users: ``import nanoml.functional as F``.

Ops take and return Tensors and record their backward when an input requires grad
(see `nanoml.tensor.apply`). Each family's module lives in `nanoml.ops`, the losses among
them; the imports below are the public surface.
"""
# ruff: noqa: F401
# (this module exists to re-export names)

from nanoml.ops.conv import avg_pool2d, conv2d, max_pool2d
from nanoml.ops.conv_pool import conv2d_max_pool_relu
from nanoml.ops.elementwise import (
    abs,
    add,
    clip,
    div,
    exp,
    leaky_relu,
    log,
    mul,
    neg,
    pow,
    relu,
    sigmoid,
    sqrt,
    sub,
    tanh,
)
from nanoml.ops.linalg import linear, matmul
from nanoml.ops.losses import binary_cross_entropy, cross_entropy, hinge, kl_divergence, mae, mse
from nanoml.ops.nn import batch_norm, dropout, embedding
from nanoml.ops.recurrent import gru, lstm, rnn
from nanoml.ops.reduce import argmax, log_softmax, logsumexp, max, mean, min, softmax, sum, var
from nanoml.ops.shape import concatenate, flatten, getitem, reshape, stack, transpose
