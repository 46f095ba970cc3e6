"""LSTM and GRU forward+backward over a row-by-row 28x28 image batch, nanoml vs torch.

The shape of the recurrent learners' benchmark model: batch 64, 28 steps of 28 inputs,
hidden size 128, float32. Both sides compute the input gradient too.
"""

import numpy as np

from .peers import _torch

BATCH, STEPS, INPUTS, HIDDEN = 64, 28, 28, 128


class RecurrentForwardBackward:
    """One layer over the whole sequence, then backpropagation through time."""

    params = [["lstm", "gru"]]
    param_names = ["cell"]

    def setup(self, cell):
        from nanoml import nn
        from nanoml.tensor import Tensor

        torch = _torch()
        rng = np.random.default_rng(0)
        x = rng.standard_normal((BATCH, STEPS, INPUTS)).astype(np.float32)
        self.dout = rng.standard_normal((BATCH, STEPS, HIDDEN)).astype(np.float32)
        self.layer = getattr(nn, cell.upper())(INPUTS, HIDDEN, rng=rng)
        self.x = Tensor(x, requires_grad=True)
        self.tlayer = getattr(torch.nn, cell.upper())(INPUTS, HIDDEN, batch_first=True)
        self.tx = torch.from_numpy(x).requires_grad_()
        self.tdout = torch.from_numpy(self.dout)
        self.time_nanoml_forward_backward(cell)  # compile (or load) the kernels untimed

    def time_nanoml_forward_backward(self, cell):
        out, _ = self.layer(self.x)
        out.backward(self.dout)

    def time_torch_forward_backward(self, cell):
        out, _ = self.tlayer(self.tx)
        out.backward(self.tdout)

    def time_nanoml_forward(self, cell):
        self.layer(self.x)

    def time_torch_forward(self, cell):
        self.tlayer(self.tx)
