"""Optimizers (SGD, Adam, AdamW, RMSprop), gradient clipping and learning-rate schedules.

Each optimizer keeps its state as plain arrays, one set per parameter, and updates every
parameter with ONE fused kernel call over its flat array, from the kernel table of the
parameter's backend (`nanoml.kernels.cpu`, or its twin with the state on the device).
The update rules are PyTorch's, so the same hyperparameters behave the same way.
"""

import math

import numpy as np

from nanoml import backend
from nanoml.errors import DeviceError, InputError, ParameterError
from nanoml.validation import check_number


def _zeros(size, like):
    """Flat zeros of `size` elements of `like`'s dtype, on `like`'s device."""
    return backend.of(like).zeros(size, like.dtype)


def _kernels(array):
    """The kernel table of `array`'s device."""
    return backend.of(array).kernels


class Optimizer:
    """Base class: holds the parameters, their state arrays, the learning rate `lr`."""

    def __init__(self, params, lr):
        self.params = list(params)
        if not self.params:
            raise ParameterError("the optimizer got an empty parameter list")
        self.lr = float(check_number("lr", lr, low=0))
        self.state = [self._init_state(p.data) for p in self.params]
        self._backends = [backend.of(p.data) for p in self.params]

    def _init_state(self, data):
        """name -> array for one parameter (zeros of its shape, or empty when unused)."""
        raise NotImplementedError

    def _update(self, param, grad, state):
        """Update the flat `param` in place from the flat `grad` with one kernel call."""
        raise NotImplementedError

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def step(self):
        """Update every parameter that has a gradient."""
        for p, state, xp in zip(self.params, self.state, self._backends, strict=True):
            grad = p.grad
            if grad is None:
                continue
            if backend.of(p.data) is not xp:
                raise DeviceError(
                    f"a parameter of shape {p.shape} moved to {p.device} after the optimizer "
                    f"was created; move the model first (module.to(device)), then create the "
                    f"optimizer"
                )
            # The kernels write through the flat view, which needs contiguous memory.
            p.data = data = xp.contiguous(p.data)
            grad = xp.contiguous(grad, data.dtype)
            self._update(data.reshape(-1), grad.reshape(-1), state)

    def state_dict(self):
        """Name -> array (``"lr"``, ``"<param index>.<buffer>"``), enough to resume training."""
        out = {"lr": np.array(self.lr)}
        for i, state in enumerate(self.state):
            out.update((f"{i}.{name}", backend.of(a).host_copy(a)) for name, a in state.items())
        return out

    def load_state_dict(self, state):
        """Restore what `state_dict` returned, checking every key and shape."""
        expected = {"lr"} | {f"{i}.{n}" for i, s in enumerate(self.state) for n in s}
        if set(state) != expected:
            raise InputError(
                f"optimizer state keys do not match: missing {sorted(expected - set(state))}, "
                f"unexpected {sorted(set(state) - expected)}"
            )
        for i, own in enumerate(self.state):
            for name, array in own.items():
                value = np.asarray(state[f"{i}.{name}"])
                if value.shape != array.shape:
                    raise InputError(
                        f"optimizer state '{i}.{name}' has shape {value.shape}, expected "
                        f"{array.shape}"
                    )
                backend.of(array).copy_into(array, value)
        self.lr = float(state["lr"])
        return self


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov and L2 weight decay."""

    def __init__(self, params, lr=0.01, momentum=0.0, weight_decay=0.0, nesterov=False):
        self.momentum = float(check_number("momentum", momentum, low=0))
        self.weight_decay = float(check_number("weight_decay", weight_decay, low=0))
        if nesterov and self.momentum == 0:
            raise ParameterError("nesterov=True needs momentum > 0, got momentum=0")
        self.nesterov = bool(nesterov)
        super().__init__(params, lr)

    def _init_state(self, data):
        size = data.size if self.momentum else 0
        return {"momentum_buffer": _zeros(size, data)}

    def _update(self, param, grad, state):
        _kernels(param).sgd_update(
            param, grad, state["momentum_buffer"], self.lr, self.momentum, self.weight_decay,
            self.nesterov,
        )


class Adam(Optimizer):
    """Adam; `weight_decay` adds an L2 term to the gradient (see AdamW for decoupled decay)."""

    decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        beta1, beta2 = betas
        self.beta1 = float(check_number("betas[0]", beta1, low=0, high=1))
        self.beta2 = float(check_number("betas[1]", beta2, low=0, high=1))
        if self.beta1 == 1 or self.beta2 == 1:
            raise ParameterError(f"betas must be in [0, 1), got {tuple(betas)}")
        self.eps = float(check_number("eps", eps, low=0))
        self.weight_decay = float(check_number("weight_decay", weight_decay, low=0))
        super().__init__(params, lr)

    def _init_state(self, data):
        return {
            "step": np.zeros((), dtype=np.int64),
            "exp_avg": _zeros(data.size, data),
            "exp_avg_sq": _zeros(data.size, data),
        }

    def _update(self, param, grad, state):
        counter = state["step"]
        step = int(counter) + 1
        counter.fill(step)
        _kernels(param).adam_update(
            param, grad, state["exp_avg"], state["exp_avg_sq"], self.lr, self.beta1,
            self.beta2, self.eps, self.weight_decay, self.decoupled, step,
        )


class AdamW(Adam):
    """Adam with decoupled weight decay: the parameter shrinks by lr * weight_decay per step."""

    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


class RMSprop(Optimizer):
    """RMSprop: divide the gradient by a running root mean square; optional momentum."""

    def __init__(self, params, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0):
        self.alpha = float(check_number("alpha", alpha, low=0, high=1))
        self.eps = float(check_number("eps", eps, low=0))
        self.weight_decay = float(check_number("weight_decay", weight_decay, low=0))
        self.momentum = float(check_number("momentum", momentum, low=0))
        super().__init__(params, lr)

    def _init_state(self, data):
        return {
            "square_avg": _zeros(data.size, data),
            "momentum_buffer": _zeros(data.size if self.momentum else 0, data),
        }

    def _update(self, param, grad, state):
        _kernels(param).rmsprop_update(
            param, grad, state["square_avg"], state["momentum_buffer"], self.lr, self.alpha,
            self.eps, self.weight_decay, self.momentum,
        )


def clip_grad_norm(parameters, max_norm):
    """Scale all gradients in place so their joint L2 norm is at most `max_norm`.

    Returns the norm before clipping (as torch.nn.utils.clip_grad_norm_ does).
    """
    check_number("max_norm", max_norm, low=0)
    params = [p for p in parameters if p.grad is not None]
    total = math.sqrt(sum(_squared_norm(p.grad) for p in params))
    scale = max_norm / (total + 1e-6)
    if scale < 1:
        for p in params:
            p.grad = backend.of(p.grad).scale(p.grad, scale, out=p.grad)
    return total


def _squared_norm(g):
    return backend.of(g).vdot(g, g)


class _Schedule:
    """Sets ``optimizer.lr`` from the number of `step()` calls (epochs, usually)."""

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.epoch = 0

    def lr_at(self, epoch):
        raise NotImplementedError

    def step(self):
        self.epoch += 1
        self.optimizer.lr = self.lr_at(self.epoch)

    def state_dict(self):
        return {"epoch": np.array(self.epoch), "base_lr": np.array(self.base_lr)}

    def load_state_dict(self, state):
        self.epoch = int(state["epoch"])
        self.base_lr = float(state["base_lr"])
        self.optimizer.lr = self.lr_at(self.epoch)
        return self


class StepLR(_Schedule):
    """Multiply the learning rate by `gamma` every `step_size` epochs."""

    def __init__(self, optimizer, step_size, gamma=0.1):
        self.step_size = check_number("step_size", step_size, low=1, integer=True)
        self.gamma = float(check_number("gamma", gamma, low=0))
        super().__init__(optimizer)

    def lr_at(self, epoch):
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class CosineAnnealingLR(_Schedule):
    """Anneal the learning rate from its initial value to `eta_min` over `T_max` epochs.

    lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2.
    """

    def __init__(self, optimizer, T_max, eta_min=0.0):
        self.T_max = check_number("T_max", T_max, low=1, integer=True)
        self.eta_min = float(check_number("eta_min", eta_min, low=0))
        super().__init__(optimizer)

    def lr_at(self, epoch):
        cosine = (1 + math.cos(math.pi * epoch / self.T_max)) / 2
        return self.eta_min + (self.base_lr - self.eta_min) * cosine
