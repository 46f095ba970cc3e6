"""Training steps on the GPU: nanoml on the cuda device beside PyTorch on CUDA, same work.

``time_nanoml`` is what a user runs: nn layers moved with ``Module.to("cuda")``, autodiff,
`nanoml.optim.Adam`. ``time_nanoml_kernels`` is the same step composed by hand from the
kernels of `nanoml.kernels.cuda` (`CudaCNN`, `CudaLSTM`), the floor the framework's own
overhead sits on. All skip (setup raises NotImplementedError) without a real GPU, under the
CUDA simulator, or without PyTorch built for CUDA. tests/cuda/test_steps.py checks that the
hand-composed steps compute what nanoml's CPU autodiff computes.
"""

import numpy as np
from numba import cuda

import nanoml.functional as F
from nanoml import nn, optim
from nanoml.kernels import cuda as kernels
from nanoml.tensor import Tensor

BETAS, EPS = (0.9, 0.999), 1e-8


class _DeviceModel:
    """Parameters, their gradients and Adam state on the device; `adam_step` updates all."""

    def __init__(self, weights, lr):
        self.names = list(weights)
        self.params = {k: cuda.to_device(np.ascontiguousarray(w)) for k, w in weights.items()}
        self.grads = {k: cuda.device_array(w.shape, w.dtype) for k, w in weights.items()}
        self.moments = {k: (cuda.to_device(np.zeros(w.size, w.dtype)),
                            cuda.to_device(np.zeros(w.size, w.dtype)))
                        for k, w in weights.items()}
        self.lr = lr
        self.steps = 0

    def adam_step(self):
        self.steps += 1
        for k in self.names:
            p = self.params[k]
            exp_avg, exp_avg_sq = self.moments[k]
            kernels.adam_update(p.reshape(p.size), self.grads[k].reshape(p.size), exp_avg,
                                exp_avg_sq, self.lr, *BETAS, EPS, 0.0, False, self.steps)

    def linear_head(self, features, logits):
        """``logits = features @ fc_w.T + fc_b``."""
        kernels.matmul_nt(features, self.params["fc_w"], logits)
        kernels.add(logits, self.params["fc_b"], logits)

    def linear_head_backward(self, features, dlogits, dfeatures):
        """Backward of `linear_head`: fc gradients into `grads`, the input's into `dfeatures`."""
        kernels.matmul_tn(dlogits, features, self.grads["fc_w"])
        kernels.col_sum(dlogits, self.grads["fc_b"])
        kernels.matmul(dlogits, self.params["fc_w"], dfeatures)


def _xent(logits, labels, probs, losses, dlogits):
    """Mean softmax cross-entropy: per-sample `losses` and the gradient `dlogits`."""
    kernels.softmax_xent_forward(logits, labels, probs, losses)
    kernels.softmax_xent_backward(probs, labels, 1.0 / logits.shape[0], dlogits)


class CudaCNN(_DeviceModel):
    """Conv2d(C -> M, KxK) -> ReLU -> MaxPool(2) -> Linear, mean cross-entropy, Adam.

    `weights`: conv_w (M, C, K, K), conv_b (M,), fc_w (classes, M*PH*PW), fc_b (classes,).
    """

    def __init__(self, weights, batch, image, lr=1e-3):
        super().__init__(weights, lr)
        M, _, K, _ = weights["conv_w"].shape
        classes, features = weights["fc_w"].shape
        dt = weights["conv_w"].dtype
        side = image - K + 1
        empty = cuda.device_array
        self.conv = empty((batch, M, side, side), dt)
        self.act = empty(self.conv.shape, dt)
        self.dact = empty(self.conv.shape, dt)
        self.dconv = empty(self.conv.shape, dt)
        self.pooled = empty((batch, M, side // 2, side // 2), dt)
        self.idx = empty(self.pooled.shape, np.int32)
        self.dpooled = empty(self.pooled.shape, dt)
        self.logits = empty((batch, classes), dt)
        self.probs = empty(self.logits.shape, dt)
        self.dlogits = empty(self.logits.shape, dt)
        self.losses = empty(batch, dt)
        self.features = (batch, features)

    def step(self, x, labels):
        """One step on device images `x` (N, C, H, W) and int labels; returns per-sample losses."""
        p, g = self.params, self.grads
        kernels.conv2d_forward_direct(x, p["conv_w"], p["conv_b"], self.conv, None)
        kernels.relu(self.conv, self.act)
        kernels.max_pool2d_forward(self.act, 2, 2, 2, 2, self.pooled, self.idx)
        flat = self.pooled.reshape(*self.features)
        self.linear_head(flat, self.logits)
        _xent(self.logits, labels, self.probs, self.losses, self.dlogits)
        self.linear_head_backward(flat, self.dlogits, self.dpooled.reshape(*self.features))
        kernels.max_pool2d_backward(self.dpooled, self.idx, self.dact)
        kernels.relu_backward(self.conv, self.dact, self.dconv)
        kernels.conv2d_backward_weight_direct(x, self.dconv, g["conv_w"], g["conv_b"], None)
        self.adam_step()
        return self.losses


class CudaLSTM(_DeviceModel):
    """LSTM over the sequence, Linear on the last hidden state, mean cross-entropy, Adam.

    `weights`: w_ih (4H, I), w_hh (4H, H), b_ih, b_hh (4H,), fc_w (classes, H), fc_b.
    """

    def __init__(self, weights, batch, steps, lr=1e-3):
        super().__init__(weights, lr)
        H = weights["w_hh"].shape[1]
        classes = weights["fc_w"].shape[0]
        dt = weights["w_hh"].dtype
        empty = cuda.device_array

        def zeros(*shape):
            return cuda.to_device(np.zeros(shape, dt))

        self.h0, self.c0 = zeros(batch, H), zeros(batch, H)
        self.dout, self.dc_n = zeros(batch, steps, H), zeros(batch, H)
        self.out = empty((batch, steps, H), dt)
        self.h_n, self.c_n = empty((batch, H), dt), empty((batch, H), dt)
        self.dh_n, self.dh0, self.dc0 = (empty((batch, H), dt) for _ in range(3))
        self.hs, self.cs = empty((steps + 1, batch, H), dt), empty((steps + 1, batch, H), dt)
        self.gates = empty((steps, batch, 4 * H), dt)
        self.dg = empty(self.gates.shape, dt)
        self.logits = empty((batch, classes), dt)
        self.probs = empty(self.logits.shape, dt)
        self.dlogits = empty(self.logits.shape, dt)
        self.losses = empty(batch, dt)

    def step(self, x, labels):
        """One step on a device batch `x` (B, T, I) and int labels; returns per-sample losses."""
        p, g = self.params, self.grads
        kernels.lstm_forward(x, p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], self.h0, self.c0,
                             self.out, self.h_n, self.c_n, self.hs, self.cs, self.gates)
        self.linear_head(self.h_n, self.logits)
        _xent(self.logits, labels, self.probs, self.losses, self.dlogits)
        self.linear_head_backward(self.h_n, self.dlogits, self.dh_n)
        kernels.lstm_backward(self.dout, self.dh_n, self.dc_n, x, p["w_ih"], p["w_hh"], self.hs,
                              self.cs, self.gates, self.dg, None, self.dh0, self.dc0, g["w_ih"],
                              g["w_hh"], g["b_ih"], g["b_hh"])
        self.adam_step()
        return self.losses


def _devices():
    """torch, once a real GPU serves both numba and PyTorch; else NotImplementedError."""
    import numba

    if numba.config.ENABLE_CUDASIM or not cuda.is_available():
        raise NotImplementedError("no CUDA GPU (or the CUDA simulator is on)")
    try:
        import torch
    except ImportError:
        raise NotImplementedError("torch is not installed") from None
    if not torch.cuda.is_available():
        raise NotImplementedError("torch was built without CUDA or sees no GPU")
    return torch


def _uniform(rng, shape, fan_in):
    bound = 1 / np.sqrt(fan_in)
    return rng.uniform(-bound, bound, shape).astype(np.float32)


def _nanoml_step(model, x, y):
    """A function running one Adam training step of nanoml `model` on host batch (x, y),
    with the model and the batch moved to the cuda device first."""
    model.to("cuda")
    opt = optim.Adam(model.parameters(), lr=1e-3, betas=BETAS, eps=EPS)
    xd, yd = Tensor(x).to("cuda"), cuda.to_device(y.astype(np.int64))

    def step():
        opt.zero_grad()
        F.cross_entropy(model(xd), yd).backward()
        opt.step()

    return step


def _load(module, weights):
    """`module` with its parameters set from `weights` (name -> array), in order."""
    for param, array in zip(module.parameters(), weights.values(), strict=True):
        param.data[...] = array
    return module


class _Step:
    """Times the three steps `setup` builds; each waits for the GPU to finish."""

    def _warm(self):
        self.model.step(self.x, self.y)  # compile (or load) the kernels outside the timing
        self.nstep()
        self.tstep()
        cuda.synchronize()

    def time_nanoml(self):
        self.nstep()
        cuda.synchronize()

    def time_nanoml_kernels(self):
        self.model.step(self.x, self.y)
        cuda.synchronize()

    def time_torch(self):
        self.tstep()
        self.sync()


def _torch_step(torch, model, x, y):
    """A function running one Adam training step of torch `model` on device batch (x, y)."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=BETAS, eps=EPS)

    def step():
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    return step


class CNNTrainStep(_Step):
    """The tutorial's CNN: batch 32, Conv 1->32 3x3 on 28x28, ReLU, pool 2, Linear 5408->10."""

    def setup(self):
        torch = _devices()
        rng = np.random.default_rng(0)
        weights = {"conv_w": _uniform(rng, (32, 1, 3, 3), 9), "conv_b": _uniform(rng, 32, 9),
                   "fc_w": _uniform(rng, (10, 5408), 5408), "fc_b": _uniform(rng, 10, 5408)}
        x = rng.standard_normal((32, 1, 28, 28)).astype(np.float32)
        y = rng.integers(0, 10, 32)
        self.model = CudaCNN(weights, batch=32, image=28)
        self.x, self.y = cuda.to_device(x), cuda.to_device(y)
        tmodel = torch.nn.Sequential(
            torch.nn.Conv2d(1, 32, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Flatten(), torch.nn.Linear(5408, 10),
        ).cuda()
        self.tstep = _torch_step(torch, tmodel, torch.from_numpy(x).cuda(),
                                 torch.from_numpy(y).cuda())
        self.sync = torch.cuda.synchronize
        module = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                               nn.Linear(5408, 10))
        self.nstep = _nanoml_step(_load(module, weights), x, y)
        self._warm()


def _torch_lstm(torch, n_in, hidden, classes):
    """nn.LSTM (batch first) and a Linear on its final hidden state, as one torch Module."""

    class LSTMClassifier(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(n_in, hidden, batch_first=True)
            self.fc = torch.nn.Linear(hidden, classes)

        def forward(self, x):
            _, (h_n, _) = self.lstm(x)
            return self.fc(h_n[0])

    return LSTMClassifier()


class _LastHidden(nn.Module):
    """nanoml's LSTM (batch first) and a Linear on its final hidden state."""

    def __init__(self, n_in, hidden, classes):
        super().__init__()
        self.lstm = nn.LSTM(n_in, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, classes)

    def forward(self, x):
        _, (h_n, _) = self.lstm(x)
        return self.fc(h_n[0])


class LSTMTrainStep(_Step):
    """MNIST rows as a sequence: batch 64, 28 steps of 28 inputs, hidden 128, Linear 128->10."""

    def setup(self):
        torch = _devices()
        rng = np.random.default_rng(0)
        B, T, n_in, H = 64, 28, 28, 128
        weights = {"w_ih": _uniform(rng, (4 * H, n_in), H), "w_hh": _uniform(rng, (4 * H, H), H),
                   "b_ih": _uniform(rng, 4 * H, H), "b_hh": _uniform(rng, 4 * H, H),
                   "fc_w": _uniform(rng, (10, H), H), "fc_b": _uniform(rng, 10, H)}
        x = rng.standard_normal((B, T, n_in)).astype(np.float32)
        y = rng.integers(0, 10, B)
        self.model = CudaLSTM(weights, batch=B, steps=T)
        self.x, self.y = cuda.to_device(x), cuda.to_device(y)
        tmodel = _torch_lstm(torch, n_in, H, 10).cuda()
        self.tstep = _torch_step(torch, tmodel, torch.from_numpy(x).cuda(),
                                 torch.from_numpy(y).cuda())
        self.sync = torch.cuda.synchronize
        self.nstep = _nanoml_step(_load(_LastHidden(n_in, H, 10), weights), x, y)
        self._warm()
