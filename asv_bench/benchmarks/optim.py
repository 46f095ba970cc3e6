"""One optimizer step (fused nanoml kernel vs torch.optim) and one MLP training step."""

import numpy as np

from .peers import _torch

SHAPES = {
    "linear-5408x10": [(10, 5408), (10,)],
    "flat-1e6": [(1_000_000,)],
}


class AdamStep:
    """Adam over a Linear(5408, 10) layer's parameters, and over one 1e6-element parameter."""

    params = [list(SHAPES), ["adam", "adamw"]]
    param_names = ["parameters", "optimizer"]

    def setup(self, shapes, name):
        from nanoml import nn, optim

        torch = _torch()
        rng = np.random.default_rng(0)
        init = [rng.standard_normal(s).astype(np.float32) for s in SHAPES[shapes]]
        grads = [rng.standard_normal(s).astype(np.float32) for s in SHAPES[shapes]]
        ours = [nn.Parameter(w.copy()) for w in init]
        theirs = [torch.tensor(w.copy(), requires_grad=True) for w in init]
        for p, tp, g in zip(ours, theirs, grads, strict=True):
            p.grad, tp.grad = g, torch.from_numpy(g.copy())
        cls = {"adam": (optim.Adam, torch.optim.Adam), "adamw": (optim.AdamW, torch.optim.AdamW)}
        self.opt = cls[name][0](ours, lr=1e-3)
        self.topt = cls[name][1](theirs, lr=1e-3)
        self.opt.step()  # compile (or load) the kernel outside the timing

    def time_nanoml(self, shapes, name):
        self.opt.step()

    def time_torch(self, shapes, name):
        self.topt.step()


class MLPTrainStep:
    """Forward, cross-entropy, backward and Adam step of a 784-128-10 ReLU network."""

    params = [[8, 64]]
    param_names = ["batch"]

    def setup(self, batch):
        from nanoml import losses, nn, optim
        from nanoml.tensor import Tensor

        torch = _torch()
        rng = np.random.default_rng(0)
        X = rng.standard_normal((batch, 784)).astype(np.float32)
        y = rng.integers(0, 10, batch)
        model = nn.Sequential(nn.Linear(784, 128, rng=rng), nn.ReLU(), nn.Linear(128, 10, rng=rng))
        opt = optim.Adam(model.parameters(), lr=1e-3)

        def step():
            opt.zero_grad()
            losses.cross_entropy(model(Tensor(X)), y).backward()
            opt.step()

        tmodel = torch.nn.Sequential(
            torch.nn.Linear(784, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10)
        )
        topt = torch.optim.Adam(tmodel.parameters(), lr=1e-3)
        tX, ty = torch.from_numpy(X), torch.from_numpy(y)

        def tstep():
            topt.zero_grad()
            torch.nn.functional.cross_entropy(tmodel(tX), ty).backward()
            topt.step()

        self.step, self.tstep = step, tstep
        step()

    def time_nanoml(self, batch):
        self.step()

    def time_torch(self, batch):
        self.tstep()
