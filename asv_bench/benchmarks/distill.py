"""The distillation loss, forward and backward: nanoml's one-pass kernel vs PyTorch's
cross-entropy plus KL divergence of log-softmaxes (the usual way to write Hinton's loss)."""

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
