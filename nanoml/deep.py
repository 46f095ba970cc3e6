"""The public base of deep learners: what a neural-network learner subclasses.

A deep learner gives its network and, where it is not a plain classifier or regressor,
its loss; everything else is here: hyperparameter checks, input checks and scaling,
the training loop (`nanoml.train.train`), early stopping, checkpoints, device placement,
batched inference, and the network's weights in the model file. A minimal classifier::

    from nanoml import nn
    from nanoml.deep import NetworkClassifier

    class TinyNet(NetworkClassifier):
        name = "tiny-net"
        default_dataset = "digits"
        description = "one hidden ReLU layer"

        def build_network(self, rng):
            return nn.Sequential(nn.Linear(self.n_features_in_, 64, rng=rng), nn.ReLU(),
                                 nn.Linear(64, self.n_outputs(), rng=rng))

What a subclass may define:

- ``__init__`` with its own keyword hyperparameters, stored with
  ``self.store_params(locals())``; without one it has DeepLearner's (epochs, batch_size,
  lr, seed, validation_fraction, patience, device, input_shape).
- ``build_network(rng)`` (required): the `nn.Module`, built from the learned shapes
  ``n_features_in_``, ``input_shape_`` (the sample's shape, or None for flat rows) and
  ``n_outputs()``; draw initial weights from `rng` only, so a seed fixes the model.
- ``batch_loss(x, y)``: (loss Tensor, logits or None) of one batch; the classifier's is
  softmax cross-entropy, the regressor's the mean squared error. Where ``_fit_targets``
  gives a tuple (targets, *more) of per-row arrays, each batch's rows of `more` follow
  y (``batch_loss(x, y, teacher)`` of a distilled student, `nanoml.distill`).
- ``check_params()``: validate extra hyperparameters (call ``super().check_params()``).
- ``input_ndim`` (3: images, 2: sequences, None: flat rows) and ``scaling`` (below).

``fit(X, y, checkpoint=PATH)`` writes the model file to PATH, atomically, at every
improvement of the validation loss, so a run stopped midway keeps its best model;
``fit(..., on_epoch=callback)`` hands each epoch's metrics to `callback`, which may stop
training by raising (a tuner prunes a poor trial this way).
"""

import functools
import math
import os
import sys

import numpy as np

from nanoml.backend import check_device_name
from nanoml.errors import InputError, ParameterError
from nanoml.learner import Learner
from nanoml.losses import cross_entropy, mse
from nanoml.nn import Module
from nanoml.optim import Adam
from nanoml.state_schema import (
    Array,
    Classes,
    Float,
    Int,
    Json,
    Network,
    Require,
    StateSchema,
    refuse,
)
from nanoml.tensor import Tensor, no_grad
from nanoml.train import train
from nanoml.validation import (
    check_array,
    check_number,
    check_targets,
    encode_labels,
    unit_scale,
)

# Rows per forward pass at inference: large enough to amortise the per-op overhead, small
# enough that a convolution's activations stay well under 100 MB.
INFERENCE_BATCH = 512
_MODULE_PREFIX = "module."
# epochs=None: the tutorial's 10 epochs where an epoch is long; on small data enough epochs
# for AUTO_STEPS updates, with early stopping (the CNN on the 1,347 digits: 0.965 -> 0.986
# mean test accuracy over 5 seeds).
AUTO_EPOCHS = 10
AUTO_STEPS = 4000
AUTO_MAX_EPOCHS = 200
AUTO_PATIENCE = 10


def check_sizes(name, value):
    """A hyperparameter that must be a tuple (or list) of positive integers, as a tuple."""
    if not isinstance(value, (tuple, list)) or not all(
        isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n > 0 for n in value
    ):
        raise ParameterError(f"{name} must be a tuple of positive integers, got {value!r}")
    return tuple(int(n) for n in value)


def square_side(n):
    """The side of a square of `n` pixels, or None when `n` is no square."""
    side = math.isqrt(n)
    return side if side * side == n else None


def mean_and_std(X, rows=2048):
    """The mean and standard deviation of all values of X, accumulated in float64.

    Block by block: ``X.std(dtype=np.float64)`` would make a float64 copy of all of X
    (350 MB for Fashion-MNIST) and take twice as long.
    """
    mean = float(X.mean(dtype=np.float64))
    squares = 0.0
    for start in range(0, X.shape[0], rows):
        block = X[start:start + rows].astype(np.float64)
        block -= mean
        # Not np.vdot: a BLAS call here would leave OpenBLAS's threads spinning into the
        # first training steps, where they take the cores from the kernels' threads.
        squares += float(np.square(block, out=block).sum())
    return mean, math.sqrt(squares / max(X.size, 1))


def show_progress():
    """Progress bars only where someone watches: a terminal, not a log or a test runner."""
    return sys.stderr.isatty()


def progress_mode():
    """How training reports its epochs (`nanoml.train`'s `progress`): a bar and a line per
    epoch on a terminal, only the lines elsewhere (a log keeps one line per epoch, not a
    bar's redraws), nothing with NANOML_PROGRESS=off."""
    if os.environ.get("NANOML_PROGRESS", "").lower() == "off":
        return False
    return True if show_progress() else "lines"


class DeepLearner(Learner):
    """Base class of the neural-network learners (see the module docstring)."""

    # Length of `input_shape` for networks that read shaped samples: 3 for images (channels,
    # height, width), 2 for sequences (steps, features). None where the network reads flat
    # rows; a given shape is then only checked and kept.
    input_ndim = None
    # How inputs are scaled, with statistics of the training data: "standard" subtracts the
    # mean of all values and divides by their standard deviation (images and series keep
    # their shape, centred inputs train faster); "range" maps the minimum and maximum to 0
    # and 1 (for networks with a sigmoid output); "features" standardises each feature on
    # its own (tabular data whose columns have different units).
    scaling = "standard"
    # A batch loss above this stops training as diverged (a NaN or infinite one always does).
    loss_limit = math.inf
    _checkpoint_path = None  # set by fit for the length of training
    _on_epoch = None  # likewise
    # The network's weights are checked against the network build_network makes.
    state_schema = StateSchema(
        checks=[Require(lambda v: v["input_shape_"] is None
                        or math.prod(v["input_shape_"]) == v["n_features_in_"],
                        "input_shape_", "does not hold n_features_in_ values")],
        n_features_in_=Int(low=1),
        input_shape_=Json(check=functools.partial(check_sizes, "input_shape_"), none=True),
        x_offset_=Array(np.float32, shape=("n_features_in_",)),
        x_scale_=Array(np.float32, shape=("n_features_in_",), above=0),
        history_=Json(optional=True),
        module_=Network(_MODULE_PREFIX),
    )

    def __init__(self, epochs=None, batch_size=32, lr=1e-3, seed=0, validation_fraction=0.1,
                 patience=None, device="cpu", input_shape=None):
        self.store_params(locals())

    # -- hyperparameters -------------------------------------------------------------------
    def check_params(self):
        """Raise ParameterError naming the first hyperparameter with an invalid value."""
        if self.epochs is not None:
            check_number("epochs", self.epochs, low=1, integer=True)
        check_number("batch_size", self.batch_size, low=1, integer=True)
        check_number("lr", self.lr, low=0, low_open=True)
        check_number("seed", self.seed, low=0, integer=True)
        check_number("validation_fraction", self.validation_fraction, low=0, high=0.9)
        if getattr(self, "patience", None) is not None:
            check_number("patience", self.patience, low=1, integer=True)
        check_device_name(self.device)
        if self.input_shape is not None:
            check_sizes("input_shape", self.input_shape)

    def _shape_words(self):
        return "(channels, height, width)" if self.input_ndim == 3 else "(steps, features)"

    def _hidden_sizes(self):
        return check_sizes("hidden_sizes", self.hidden_sizes)

    # -- inputs ----------------------------------------------------------------------------
    def _read_input(self, X, n_features=None, shape=None):
        """X as C-contiguous float32 rows (samples, features), and the per-sample shape
        X had when given with more than two axes (else None)."""
        arr = X if isinstance(X, np.ndarray) else np.asarray(X)
        trailing = None
        if arr.ndim > 2:
            trailing = tuple(int(n) for n in arr.shape[1:])
            if shape is not None and self._network_shape(trailing) != shape:
                raise InputError(
                    f"X has samples of shape {trailing} but the learner was fitted on {shape}"
                )
            arr = arr.reshape(arr.shape[0], -1)
        return check_array(arr, dtype=np.float32, n_features=n_features), trailing

    def _input_shape(self, n_features, trailing):
        """The per-sample shape the network reads: the hyperparameter, else X's own shape,
        else `_guess_shape`; None for a flat network that was given no shape."""
        given = self.input_shape if self.input_shape is not None else trailing
        if given is None:
            if self.input_ndim is None:
                return None
            shape = self._guess_shape(n_features)
            if shape is None:
                raise ParameterError(
                    f"{self.name} needs input_shape={self._shape_words()}: X has "
                    f"{n_features} features, from which no shape can be inferred"
                )
            return shape
        # A wrong hyperparameter is the user's setting; a wrong X shape is the data's.
        error = ParameterError if self.input_shape is not None else InputError
        shape = self._network_shape(tuple(int(n) for n in given))
        if self.input_ndim is not None and len(shape) != self.input_ndim:
            raise error(
                f"input_shape must have {self.input_ndim} entries {self._shape_words()} for "
                f"{self.name}, got {shape}"
            )
        if math.prod(shape) != n_features:
            raise error(
                f"input_shape {shape} holds {math.prod(shape)} values but X has "
                f"{n_features} features"
            )
        return shape

    def _guess_shape(self, n_features):
        """The shape of a sample given as `n_features` flat values: a square one-channel
        image (or its rows as steps), or None."""
        side = square_side(n_features)
        if side is None:
            return None
        return (1, side, side) if self.input_ndim == 3 else (side, side)

    def _network_shape(self, shape):
        """A given per-sample shape as the network reads it (recurrent learners read a
        one-channel image's rows as steps)."""
        return shape

    def _fit_scaling(self, X):
        if self.scaling == "features":  # float64 sums: float32 ones overflow near 1e38
            offset, scale = X.mean(axis=0, dtype=np.float64), X.std(axis=0, dtype=np.float64)
        else:
            if self.scaling == "range":
                low, high = float(X.min()), float(X.max())
                offset, spread = low, high - low
            else:
                offset, spread = mean_and_std(X)
            offset = np.full(X.shape[1], offset, dtype=np.float32)
            scale = np.full(X.shape[1], spread, dtype=np.float32)
        # A constant feature (or constant data) is only shifted: nothing to divide.
        scale = np.where(scale > 0, scale, 1).astype(np.float32)
        return offset.astype(np.float32), scale

    def _network_input(self, X):
        """Scaled rows, shaped as the network reads them (images, sequences or rows)."""
        scaled = (X - self.x_offset_) / self.x_scale_
        if self.input_ndim is None:
            return scaled
        return scaled.reshape((X.shape[0], *self.input_shape_))

    def _to_original(self, scaled):
        """Network-space rows back in the units of the training data (float64)."""
        return scaled.astype(np.float64) * self.x_scale_ + self.x_offset_

    def _prepare(self, X):
        """X checked against the fitted shape, scaled and shaped for the network."""
        self.check_fitted()
        X, _ = self._read_input(X, n_features=self.n_features_in_, shape=self.input_shape_)
        return self._network_input(X)

    # -- training --------------------------------------------------------------------------
    def _fit_targets(self, y, n):
        """(learned attributes, training targets) from `y`; unsupervised learners ignore y."""
        return {}, None

    def fit(self, X, y=None, *, checkpoint=None, on_epoch=None):
        """Train the network on X (and y); returns self.

        X holds one sample a row, or one sample per entry of its first axis in the shape
        the network reads (images as (channels, height, width)), from which the learner
        takes its input shape. `checkpoint`: a model-file path written at every improvement.
        `on_epoch(epoch, results)`: called with each epoch's metrics; raising stops training.
        """
        self.check_params()
        self._checkpoint_path, self._on_epoch = checkpoint, on_epoch
        X, trailing = self._read_input(X)
        shape = self._input_shape(X.shape[1], trailing)
        learned, targets = self._fit_targets(y, X.shape[0])
        offset, scale = self._fit_scaling(X)
        rng = np.random.default_rng(self.seed)
        try:
            self.n_features_in_ = X.shape[1]
            self.input_shape_ = shape
            self.x_offset_, self.x_scale_ = offset, scale
            for key, value in learned.items():
                setattr(self, key, value)
            self.module_ = self.build_network(rng).to(self.device)
            self.history_ = self._train(self._network_input(X), targets)
            self.module_.zero_grad()  # the last batch's gradients are of no further use
        except BaseException:
            self._forget()  # a half-trained network must not pass for a fitted one
            raise
        finally:
            self._checkpoint_path = self._on_epoch = None
        return self

    def _forget(self):
        for key in self._learned_names():
            delattr(self, key)

    def _schedule(self, n_samples):
        """(epochs, patience) for training on `n_samples`: as set, or for ``epochs=None``
        at least AUTO_EPOCHS epochs, on small data as many as make AUTO_STEPS optimizer
        steps (at most AUTO_MAX_EPOCHS), stopped early after ``patience`` (default
        AUTO_PATIENCE) epochs without a better validation loss."""
        patience = getattr(self, "patience", None)  # a learner may have no early stopping
        if self.epochs is not None:
            return self.epochs, patience
        n_train = max(1, round(n_samples * (1 - self.validation_fraction)))
        steps_per_epoch = math.ceil(n_train / self.batch_size)
        epochs = min(AUTO_MAX_EPOCHS, max(AUTO_EPOCHS, math.ceil(AUTO_STEPS / steps_per_epoch)))
        return epochs, AUTO_PATIENCE if patience is None else patience

    def _train(self, X, targets):
        """Adam on `batch_loss` through nanoml's training loop; -> history."""
        optimizer = Adam(self.module_.parameters(), lr=self.lr)
        epochs, patience = self._schedule(X.shape[0])
        schedule, on_epoch = self.lr_schedule(optimizer, epochs), self._on_epoch
        if schedule is not None:
            def on_epoch(epoch, results, then=self._on_epoch):
                schedule.step()
                if then is not None:
                    then(epoch, results)
        return train(
            self.batch_loss, self.module_, optimizer, X, targets, epochs=epochs,
            batch_size=self.batch_size, validation_fraction=self.validation_fraction,
            seed=self.seed, patience=patience,
            with_accuracy=self.task == "classification", on_improvement=self._checkpoint,
            on_epoch=on_epoch,
            progress=progress_mode(), description=self.name, device=self.device,
            loss_limit=self.loss_limit,
        )

    def lr_schedule(self, optimizer, epochs):
        """A learning-rate schedule of `nanoml.optim` over `optimizer`, stepped after each of
        the `epochs` epochs, or None (the default) for a constant rate."""
        return None

    def _checkpoint(self, epoch):
        """Write the model so far to the checkpoint path `fit` was given, if any."""
        if self._checkpoint_path is not None:
            self.save(self._checkpoint_path)

    def _forward(self, X, forward=None):
        """`forward` (default: the network) over network-ready X in batches, without a
        graph; -> one float32 array of the outputs."""
        forward = forward or self.module_
        self.module_.eval()
        parts = []
        with no_grad():
            for start in range(0, X.shape[0], INFERENCE_BATCH):
                batch = self._network_tensor(X[start:start + INFERENCE_BATCH])
                parts.append(forward(batch).cpu().data)
        return np.concatenate(parts)

    def _network_tensor(self, array):
        """`array` as a Tensor on the network's device (where fit or load put it)."""
        return Tensor(array).to(next(self.module_.parameters()).device)

    # -- persistence -----------------------------------------------------------------------
    def _get_state(self):
        """Shapes and scalars as JSON, the network's weights as ``module.<name>`` arrays."""
        return network_state(self, lambda attribute: _MODULE_PREFIX)

    def check_state(self, plain, arrays):
        plain, arrays = super().check_state(plain, arrays)
        shape = plain.get("input_shape_")
        if self.input_ndim is not None and (shape is None or len(shape) != self.input_ndim):
            refuse("input_shape_", f"must be a sample's {self._shape_words()}, got {shape!r}")
        return plain, arrays

    def _set_state(self, plain, arrays):
        weights = restore_network_state(self, plain, arrays, _module_weight)
        if self.input_shape_ is not None:
            self.input_shape_ = tuple(self.input_shape_)
        module = self.build_network(np.random.default_rng(0))
        self.module_ = module.load_state_dict(weights["module_"]).eval()


def _module_weight(name):
    """("module_", parameter) for a ``module.<parameter>`` array, else None."""
    return ("module_", name[len(_MODULE_PREFIX):]) if name.startswith(_MODULE_PREFIX) else None


def network_state(learner, prefix):
    """`learner`'s learned state as a model file holds it, (JSON-able dict, name -> array):
    the weights of each network (an `nn.Module` attribute) as arrays named
    ``prefix(attribute) + parameter``."""
    plain, arrays = {}, {}
    for key in learner._learned_names():
        value = getattr(learner, key)
        if isinstance(value, Module):
            arrays.update((prefix(key) + k, v) for k, v in value.state_dict().items())
        elif isinstance(value, np.ndarray):
            arrays[key] = value
        else:
            plain[key] = value
    return plain, arrays


def restore_network_state(learner, plain, arrays, weight_of):
    """Set what `network_state` wrote back on `learner`, all but the networks' weights, and
    return those: attribute -> {parameter: array}. ``weight_of(name)`` is (attribute,
    parameter) for an array of network weights, None for any other name."""
    weights = {}
    for key, value in {**plain, **arrays}.items():
        owner = weight_of(key)
        if owner is None:
            setattr(learner, key, value)
        else:
            weights.setdefault(owner[0], {})[owner[1]] = value
    return weights


class NetworkClassifier(DeepLearner):
    """A network with one logit per class, trained with softmax cross-entropy."""

    task = "classification"
    state_schema = DeepLearner.state_schema.extend(classes_=Classes())

    def _fit_targets(self, y, n):
        classes, codes = encode_labels(y, n)
        return {"classes_": classes}, codes

    def n_outputs(self):
        return len(self.classes_)

    def batch_loss(self, x, y):
        logits = self.module_(x)
        return cross_entropy(logits, y), logits

    def predict_proba(self, X):
        """Class probabilities, one column per entry of ``classes_``."""
        logits = self._forward(self._prepare(X)).astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        return probs / probs.sum(axis=1, keepdims=True)

    def predict(self, X):
        logits = self._forward(self._prepare(X))
        return self.classes_[np.argmax(logits, axis=1)]


class NetworkRegressor(DeepLearner):
    """A network with one output, trained with mean squared error on standardised targets."""

    task = "regression"
    state_schema = DeepLearner.state_schema.extend(y_mean_=Float(), y_scale_=Float(above=0))
    # Predicting the mean scores a loss of 1 on standardised targets: a loss a million times
    # that is a diverging network (huge but finite while tanh or clipping bound its states),
    # not slow learning.
    loss_limit = 1e6

    def _fit_targets(self, y, n):
        y = check_targets(y, n)
        unit = unit_scale(y)  # squares of targets near 1e300 would overflow
        mean, scale = float((y / unit).mean()) * unit, float((y / unit).std()) * unit or 1.0
        return {"y_mean_": mean, "y_scale_": scale}, ((y - mean) / scale).astype(np.float32)

    def n_outputs(self):
        return 1

    def batch_loss(self, x, y):
        pred = self.module_(x)
        return mse(pred, y.reshape(-1, 1)), None

    def predict(self, X):
        scaled = self._forward(self._prepare(X))[:, 0].astype(np.float64)
        return scaled * self.y_scale_ + self.y_mean_


class GenerativeLearner(DeepLearner):
    """A learner that draws new samples from a latent code ``latent_size`` wide.

    Subclasses define ``decode(z)``: latent Tensor -> scaled samples in [0, 1].
    """

    task = "generation"

    def sample(self, n_samples=64, seed=None):
        """`n_samples` new rows in the units of the training data, drawn with `seed`."""
        self.check_fitted()
        check_number("n_samples", n_samples, low=1, integer=True)
        rng = np.random.default_rng(seed)
        z = rng.standard_normal((n_samples, self.latent_size)).astype(np.float32)
        return self._to_original(self._forward(z, forward=self.decode))

    def _grid_shape(self):
        """(height, width) to draw a sample as, for one-channel images; else None."""
        shape = self.input_shape_
        if shape is None:
            side = square_side(self.n_features_in_)
            return None if side is None else (side, side)
        return tuple(shape[1:]) if len(shape) == 3 and shape[0] == 1 else None

    def write_artifacts(self, folder, dataset):
        """The training curves, and samples.png: 64 generated samples as images."""
        from nanoml import plots

        written = super().write_artifacts(folder, dataset)
        shape = self._grid_shape()
        if shape is not None:
            images = self.sample(64, seed=self.seed).reshape(-1, *shape)
            plots.plot_image_grid(images, os.path.join(folder, "samples.png"),
                                  title=f"{self.name}: generated samples")
            written.append("samples.png")
        return written
