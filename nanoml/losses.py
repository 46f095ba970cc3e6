"""Loss functions, each a differentiable op returning the mean over the batch as a
one-element Tensor: ``nanoml.losses.cross_entropy(logits, labels)``.

The ops live in `nanoml.ops.losses` beside the other op families; this is their public name.
"""
# ruff: noqa: F401
# (this module exists to re-export names)

from nanoml.ops.losses import (
    binary_cross_entropy,
    cross_entropy,
    distillation,
    hinge,
    kl_divergence,
    mae,
    mse,
)
