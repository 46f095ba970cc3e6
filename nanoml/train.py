"""The training loop every deep learner uses.

Seeded shuffled mini-batches, a held-out validation split, per-epoch metrics, a progress
bar (tqdm) with loss, accuracy, throughput and ETA, early stopping on validation loss, a
checkpoint callback on every improvement (the learner writes its model file atomically),
and a clear stop when the loss turns NaN or infinite (or, for a regressor, absurdly large).
On the cuda device the inputs are uploaded once and every batch is gathered on the device.
"""

import math
import sys
import time

import numpy as np
from tqdm.auto import tqdm

from nanoml import backend
from nanoml.errors import NanomlError
from nanoml.tensor import Tensor, no_grad


class TrainingDivergedError(NanomlError):
    """The loss became NaN, infinite or larger than the learner's divergence limit; training
    stopped."""


def check_finite(loss, what, where, bar, kept=False, limit=math.inf):
    """The loss as a float, or TrainingDivergedError (closing the progress `bar`) when it is
    NaN, infinite or above `limit`: "`what` became nan `where`"; `kept` says a checkpoint of
    the last good model exists."""
    value = loss.item()
    if not value <= limit:  # NaN compares false
        bar.close()
        raise TrainingDivergedError(
            f"{what} became {value} {where}; lower the learning rate (lr)"
            + ("; the last good model was kept" if kept else ""),
            argument="lr",
        )
    return value


def split_validation(n, fraction, rng):
    """(train rows, validation rows) drawn at random; no validation when fraction is 0."""
    order = rng.permutation(n)
    n_val = int(round(fraction * n))
    return order[n_val:], order[:n_val]


def minibatches(rows, batch_size, rng):
    """The rows shuffled by `rng`, cut into batches of `batch_size` (the last may be short)."""
    order = rows[rng.permutation(rows.shape[0])]
    for start in range(0, order.shape[0], batch_size):
        yield order[start : start + batch_size]


class Rows:
    """An array (inputs or targets) whose batches are taken on the training device.

    On a device the array is copied there once (on the CPU it is the array itself); a batch
    then costs one upload of its row numbers and one gather kernel, instead of an upload of
    its images. `take` gives the batch on that device; `host` the same rows as a NumPy array
    (for metrics).
    """

    def __init__(self, array, device="cpu"):
        self.host = array
        self._backend = backend.named(device)
        self._data = None if array is None else self._backend.from_host(array)

    def take(self, rows, device_rows=None):
        """The rows `rows` (an int array; `device_rows`, its copy on the device, if made)."""
        if self._data is None:
            return None
        if device_rows is None:
            device_rows = self._backend.from_host(rows)
        return self._backend.take_rows(self._data, device_rows)

    def upload(self, rows):
        """`rows` on the device this array is on, for `take`."""
        return self._backend.from_host(rows)


class _Meter:
    """Running sums of loss and correct predictions over one pass."""

    def __init__(self):
        self.loss = 0.0
        self.correct = 0
        self.count = 0

    def add(self, loss, n, correct=None):
        self.loss += loss * n
        self.count += n
        if correct is not None:
            self.correct += correct

    def results(self, prefix, with_accuracy):
        out = {f"{prefix}loss": self.loss / max(self.count, 1)}
        if with_accuracy:
            out[f"{prefix}accuracy"] = self.correct / max(self.count, 1)
        return out


def _correct(logits, y):
    return int(np.sum(np.argmax(logits.detach().cpu().data, axis=1) == y))


def _batch(X, ys, rows):
    """(input Tensor, *targets) of the batch `rows` of `Rows` X and each of ys, on their
    device."""
    device_rows = X.upload(rows)
    return Tensor(X.take(rows, device_rows)), *(y.take(rows, device_rows) for y in ys)


def _accuracy_count(logits, y, rows, with_accuracy):
    return _correct(logits, y.host[rows]) if with_accuracy else None


def evaluate_batches(step, X, ys, rows, batch_size, with_accuracy):
    """Mean loss (and accuracy) of `step` over `rows` of `Rows` X and ys (the targets
    first), without recording a graph."""
    meter = _Meter()
    with no_grad():
        for start in range(0, rows.shape[0], batch_size):
            batch = rows[start : start + batch_size]
            loss, logits = step(*_batch(X, ys, batch))
            meter.add(loss.item(), batch.shape[0],
                      _accuracy_count(logits, ys[0], batch, with_accuracy))
    return meter.results("val_", with_accuracy)


def train(
    step,
    module,
    optimizer,
    X,
    y,
    *,
    epochs,
    batch_size,
    validation_fraction=0.1,
    seed=0,
    patience=None,
    with_accuracy=False,
    on_improvement=None,
    on_epoch=None,
    progress=True,
    description="training",
    device="cpu",
    loss_limit=math.inf,
):
    """Train `module` by minimising the loss `step` returns; -> history (name -> per-epoch list).

    ``step(X_batch_tensor, y_batch) -> (loss Tensor, logits Tensor or None)`` computes one
    batch's loss (logits are used for accuracy when `with_accuracy`); `y` may also be a
    tuple (targets, *more), arrays of one entry per row whose batches `step` gets as
    further arguments (a distilled student's teacher outputs). After each epoch the
    validation loss is measured (if `validation_fraction` > 0); on improvement the best
    weights are kept and `on_improvement(epoch)` is called (to write a checkpoint). With
    `patience`, training stops after that many epochs without improvement. At the end the
    module holds the best weights seen. `progress` True draws a bar and writes one line per
    epoch to stderr, "lines" only the lines, False nothing. On `device` "cuda" the module
    (and the optimizer's state) must already be there; X and y are moved there once
    (integer targets must be valid class indices already: they are not checked again batch
    by batch).
    `on_epoch(epoch, results)` gets each epoch's metrics (loss, val_loss, accuracy, ...);
    an exception it raises stops training (a tuner prunes a poor trial this way).
    A batch loss that is NaN, infinite or above `loss_limit` stops training with
    TrainingDivergedError.
    """
    rng = np.random.default_rng(seed)
    train_rows, val_rows = split_validation(X.shape[0], validation_fraction, rng)
    X, ys = Rows(X, device), [Rows(a, device) for a in (y if isinstance(y, tuple) else (y,))]
    history = {}
    best_loss, best_state, stale = math.inf, None, 0
    steps_per_epoch = math.ceil(train_rows.shape[0] / batch_size)
    for epoch in range(1, epochs + 1):
        module.train()
        meter = _Meter()
        bar = tqdm(
            total=train_rows.shape[0],
            desc=f"{description} {epoch}/{epochs}",
            unit="img",
            unit_scale=True,
            leave=False,
            disable=progress is not True,
            dynamic_ncols=True,
        )
        started = time.perf_counter()
        for i, batch in enumerate(minibatches(train_rows, batch_size, rng)):
            loss, logits = step(*_batch(X, ys, batch))
            value = check_finite(
                loss,
                "the loss",
                f"at epoch {epoch}, batch {i + 1} of {steps_per_epoch}",
                bar,
                kept=best_state is not None,
                limit=loss_limit,
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            meter.add(value, batch.shape[0], _accuracy_count(logits, ys[0], batch, with_accuracy))
            bar.update(batch.shape[0])
            if i % 20 == 0:
                bar.set_postfix(meter.results("", with_accuracy), refresh=False)
        bar.close()
        seconds = time.perf_counter() - started
        results = meter.results("", with_accuracy)
        module.eval()
        if val_rows.shape[0]:
            results.update(
                evaluate_batches(step, X, ys, val_rows, max(batch_size, 256), with_accuracy)
            )
        results["seconds"] = seconds
        for key, value in results.items():
            history.setdefault(key, []).append(value)
        if progress:
            shown = ", ".join(f"{k} {v:.4f}" for k, v in results.items() if k != "seconds")
            tqdm.write(
                f"{description} epoch {epoch}/{epochs}: {shown} ({seconds:.1f} s, "
                f"{train_rows.shape[0] / seconds:,.0f} samples/s)",
                file=sys.stderr,
            )
        if on_epoch is not None:
            on_epoch(epoch, dict(results))
        watched = results.get("val_loss", results["loss"])
        if watched < best_loss:
            best_loss, stale = watched, 0
            best_state = {k: v.copy() for k, v in module.state_dict().items()}
            if on_improvement is not None:
                on_improvement(epoch)
        else:
            stale += 1
            if patience is not None and stale >= patience:
                break
    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    return history
