"""Convolution and max pooling, forward and forward+backward, nanoml vs torch.

"cnn" is the tutorial CNN's first layer: batch 32 of 28x28 grey images, 1->32 channels,
3x3, no padding, so its input needs no gradient; the pooling is its 2x2 max pool over the
(32, 32, 26, 26) activations. "mid" is a deeper layer: 32->64 channels, 3x3 with padding 1
on 14x14, where the input gradient is computed too. float32 throughout. The tutorial CNN
runs its first layer, ReLU and pooling as one fused op: `ConvPoolReLU2d` times that against
torch's three calls.
"""

import numpy as np

from .peers import _torch

# name: (input shape, out channels, padding, input requires grad)
CONVS = {
    "cnn": ((32, 1, 28, 28), 32, 0, False),
    "mid": ((32, 32, 14, 14), 64, 1, True),
}


class Conv2d:
    """conv2d with bias; forward alone, and forward then backward of every needed gradient."""

    params = [list(CONVS)]
    param_names = ["shape"]

    def setup(self, shape):
        from nanoml.tensor import Tensor

        torch = _torch()
        x_shape, out_channels, self.padding, input_grad = CONVS[shape]
        rng = np.random.default_rng(0)
        x = rng.standard_normal(x_shape).astype(np.float32)
        fan_in = x_shape[1] * 9
        w = (rng.standard_normal((out_channels, x_shape[1], 3, 3)) / fan_in**0.5).astype(np.float32)
        b = np.zeros(out_channels, np.float32)
        self.x = Tensor(x, requires_grad=input_grad)
        self.w = Tensor(w, requires_grad=True)
        self.b = Tensor(b, requires_grad=True)
        self.tx = torch.tensor(x, requires_grad=input_grad)
        self.tw = torch.tensor(w, requires_grad=True)
        self.tb = torch.tensor(b, requires_grad=True)
        self.F = torch.nn.functional
        self.torch = torch
        out = self.run_nanoml()  # compile (or load) the kernels untimed
        self.dout = rng.standard_normal(out.shape).astype(np.float32)
        self.tdout = torch.from_numpy(self.dout)

    def run_nanoml(self):
        import nanoml.functional as F

        return F.conv2d(self.x, self.w, self.b, 1, self.padding)

    def time_nanoml_forward(self, shape):
        from nanoml.tensor import no_grad

        with no_grad():
            self.run_nanoml()

    def time_torch_forward(self, shape):
        with self.torch.no_grad():
            self.F.conv2d(self.tx, self.tw, self.tb, 1, self.padding)

    def time_nanoml_forward_backward(self, shape):
        self.run_nanoml().backward(self.dout)

    def time_torch_forward_backward(self, shape):
        self.F.conv2d(self.tx, self.tw, self.tb, 1, self.padding).backward(self.tdout)


class MaxPool2d:
    """2x2 max pooling of the tutorial CNN's conv activations (32, 32, 26, 26)."""

    def setup(self):
        from nanoml.tensor import Tensor

        torch = _torch()
        rng = np.random.default_rng(0)
        x = rng.standard_normal((32, 32, 26, 26)).astype(np.float32)
        self.dout = rng.standard_normal((32, 32, 13, 13)).astype(np.float32)
        self.x = Tensor(x, requires_grad=True)
        self.tx = torch.tensor(x, requires_grad=True)
        self.tdout = torch.from_numpy(self.dout)
        self.F = torch.nn.functional
        self.torch = torch
        self.time_nanoml_forward_backward()  # compile (or load) the kernels untimed

    def time_nanoml_forward(self):
        import nanoml.functional as F
        from nanoml.tensor import no_grad

        with no_grad():
            F.max_pool2d(self.x, 2)

    def time_torch_forward(self):
        with self.torch.no_grad():
            self.F.max_pool2d(self.tx, 2)

    def time_nanoml_forward_backward(self):
        import nanoml.functional as F

        F.max_pool2d(self.x, 2).backward(self.dout)

    def time_torch_forward_backward(self):
        self.F.max_pool2d(self.tx, 2).backward(self.tdout)


class ConvPoolReLU2d:
    """The tutorial CNN's first layer, ReLU and 2x2 max pooling: nanoml's fused op vs torch's
    conv2d, relu, max_pool2d on batch 32 of 28x28 grey images, 1->32 channels, 3x3."""

    def setup(self):
        from nanoml.tensor import Tensor

        torch = _torch()
        rng = np.random.default_rng(0)
        x = rng.standard_normal((32, 1, 28, 28)).astype(np.float32)
        w = (rng.standard_normal((32, 1, 3, 3)) / 3).astype(np.float32)
        b = np.zeros(32, np.float32)
        self.dout = rng.standard_normal((32, 32, 13, 13)).astype(np.float32)
        self.x = Tensor(x)
        self.w = Tensor(w, requires_grad=True)
        self.b = Tensor(b, requires_grad=True)
        self.tx = torch.tensor(x)
        self.tw = torch.tensor(w, requires_grad=True)
        self.tb = torch.tensor(b, requires_grad=True)
        self.tdout = torch.from_numpy(self.dout)
        self.F = torch.nn.functional
        self.torch = torch
        self.time_nanoml_forward_backward()  # compile (or load) the kernels untimed

    def run_nanoml(self):
        import nanoml.functional as F

        return F.conv2d_max_pool_relu(self.x, self.w, self.b, 2)

    def run_torch(self):
        return self.F.max_pool2d(self.F.relu(self.F.conv2d(self.tx, self.tw, self.tb)), 2)

    def time_nanoml_forward(self):
        from nanoml.tensor import no_grad

        with no_grad():
            self.run_nanoml()

    def time_torch_forward(self):
        with self.torch.no_grad():
            self.run_torch()

    def time_nanoml_forward_backward(self):
        self.run_nanoml().backward(self.dout)

    def time_torch_forward_backward(self):
        self.run_torch().backward(self.tdout)
