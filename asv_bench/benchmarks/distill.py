"""The distillation loss, forward and backward: nanoml's one-pass kernel vs PyTorch's
cross-entropy plus KL divergence of log-softmaxes (the usual way to write Hinton's loss);
and the digits accuracy of a small student distilled with a transfer set."""

import tempfile

import numpy as np

from .peers import _torch

TEMPERATURE, ALPHA = 4.0, 0.1


class DistillationLoss:
    """Loss and logit gradient of a batch of 10-class logits against teacher logits."""

    params = [[32, 512]]
    param_names = ["batch"]

    def setup(self, batch):
        from nanoml import losses
        from nanoml.tensor import tensor

        torch = _torch()
        rng = np.random.default_rng(0)
        z, t = (3 * rng.standard_normal((2, batch, 10))).astype(np.float32)
        labels = rng.integers(0, 10, batch)

        def ours():
            logits = tensor(z, requires_grad=True)
            losses.distillation(logits, labels, t, TEMPERATURE, ALPHA).backward()

        functional = torch.nn.functional
        tt, tlabels = torch.from_numpy(t), torch.from_numpy(labels)

        def theirs():
            logits = torch.tensor(z, requires_grad=True)
            soft = functional.kl_div(functional.log_softmax(logits / TEMPERATURE, dim=1),
                                     functional.log_softmax(tt / TEMPERATURE, dim=1),
                                     reduction="batchmean", log_target=True)
            loss = (ALPHA * functional.cross_entropy(logits, tlabels)
                    + (1 - ALPHA) * TEMPERATURE ** 2 * soft)
            loss.backward()

        self.ours, self.theirs = ours, theirs
        ours()  # compile (or load) the kernel outside the timing

    def time_nanoml(self, batch):
        self.ours()

    def time_torch(self, batch):
        self.theirs()


# An MLP 64-32-10 (no dropout, 20 epochs), where plain distillation does not help.
SMALL_STUDENT = {"hidden_sizes": (32,), "dropout": 0.0, "epochs": 20}
SEEDS = [0, 1, 2, 3, 4]


class DistillDigitsAccuracy:
    """Digits test accuracy of an MLP 64-32-10 taught by the tutorial CNN with a transfer
    set (4 copies of each training image moved by up to 1 pixel, labelled by the
    teacher), beside the same MLP from the labels alone and the teacher, one value per seed.

    The Fashion-MNIST recipe (a 2x800 student, 10 epochs) takes most of an hour per seed
    on nanoml's dense kernels, too long for a benchmark; this one takes seconds.
    """

    params = SEEDS
    param_names = ["seed"]
    unit = "test accuracy"
    timeout = 1800
    rounds = 1

    def setup_cache(self):
        import nanoml

        folder = tempfile.mkdtemp(prefix="nanoml-bench-distill-")
        metrics = {}
        for seed in SEEDS:
            result = nanoml.distill("cnn", "mlp", "digits", params=SMALL_STUDENT, transfer=4,
                                    shift=1, jitter=0.0, seed=seed, out=f"{folder}/{seed}")
            metrics[seed] = {key: result.metrics[key]["accuracy"]
                             for key in ("teacher", "distilled", "from_labels")}
        return metrics

    def track_distilled(self, metrics, seed):
        return metrics[seed]["distilled"]

    def track_from_labels(self, metrics, seed):
        return metrics[seed]["from_labels"]

    def track_teacher(self, metrics, seed):
        return metrics[seed]["teacher"]
