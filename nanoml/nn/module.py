"""Module and Parameter: the containers layers and models are built from.

Parameters, submodules and buffers (non-learned arrays such as batch-norm running
statistics) assigned as attributes are registered automatically, so `parameters()` and
`state_dict()` find them, with dotted names (``"0.weight"``, ``"encoder.bn.running_mean"``).
"""

import numpy as np

from nanoml import backend
from nanoml.errors import InputError
from nanoml.tensor import Tensor


class Parameter(Tensor):
    """A Tensor a Module learns: requires grad, C-contiguous float32 (or float64) data."""

    __slots__ = ()

    def __init__(self, data, requires_grad=True, dtype=None):
        super().__init__(data, requires_grad=requires_grad, dtype=dtype)
        # Optimizers update the flat view in place, which needs contiguous memory.
        self.data = backend.of(self.data).contiguous(self.data)

    def __repr__(self):
        return "Parameter(" + super().__repr__() + ")"


class Module:
    """Base class of layers and models: subclasses set attributes in __init__ and define forward."""

    def __init__(self):
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise TypeError(
                f"{type(self).__name__}.__init__ must call super().__init__() before "
                f"assigning attributes ('{name}')"
            )
        registries = (self._parameters, self._modules, self._buffers)
        if isinstance(value, Parameter):
            target = self._parameters
        elif isinstance(value, Module):
            target = self._modules
        elif name in self._buffers and backend.is_array(value):
            target = self._buffers
        else:
            target = None
        for registry in registries:
            if registry is not target:
                registry.pop(name, None)
        if target is not None:
            target[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        for registry in (self._parameters, self._modules, self._buffers):
            registry.pop(name, None)
        object.__delattr__(self, name)

    def register_buffer(self, name, array):
        """Keep `array` (not learned, but saved in state_dict) as attribute `name`."""
        self._buffers[name] = array
        object.__setattr__(self, name, array)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # -- traversal -----------------------------------------------------------------------
    def named_children(self):
        return iter(self._modules.items())

    def children(self):
        return iter(self._modules.values())

    def named_modules(self, prefix=""):
        """This module and every submodule, depth first, with dotted names."""
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def named_parameters(self, prefix=""):
        """(dotted name, Parameter) pairs; a parameter shared by two layers appears once."""
        seen = set()
        for path, module in self.named_modules(prefix):
            for name, param in module._parameters.items():
                if param is not None and id(param) not in seen:
                    seen.add(id(param))
                    yield (f"{path}.{name}" if path else name), param

    def parameters(self):
        for _, param in self.named_parameters():
            yield param

    def named_buffers(self, prefix=""):
        for path, module in self.named_modules(prefix):
            for name, buf in module._buffers.items():
                yield (f"{path}.{name}" if path else name), buf

    # -- modes and gradients -------------------------------------------------------------
    def train(self, mode=True):
        """Training mode (dropout drops, batch norm uses batch statistics); returns self."""
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self):
        """Inference mode; returns self."""
        return self.train(False)

    def zero_grad(self):
        for param in self.parameters():
            param.grad = None

    # -- devices -------------------------------------------------------------------------
    def to(self, device):
        """Move every parameter and buffer to `device` ("cpu" or "cuda") in place; returns
        self. Parameters stay the same objects, so references to them stay valid; their
        gradients are dropped. Create the optimizer after moving the model."""
        target = backend.named(device)
        for param in self.parameters():
            if backend.of(param.data) is not target:
                param.data = backend.move(param.data, target)
                param.grad = None
        for module in self.modules():
            for name, buf in list(module._buffers.items()):
                if backend.of(buf) is not target:
                    module.register_buffer(name, backend.move(buf, target))
        return self

    # -- saving --------------------------------------------------------------------------
    def state_dict(self):
        """Dotted name -> host copy of every parameter's and buffer's array."""
        state = {name: backend.of(param.data).host_copy(param.data)
                 for name, param in self.named_parameters()}
        state.update((name, backend.of(buf).host_copy(buf)) for name, buf in self.named_buffers())
        return state

    def load_state_dict(self, state, strict=True):
        """Copy arrays from `state` into the parameters and buffers, in place.

        With strict=True the keys must match exactly; shapes must always match.
        """
        own = dict(self.named_parameters())
        own.update(self.named_buffers())
        if strict:
            missing = sorted(set(own) - set(state))
            unexpected = sorted(set(state) - set(own))
            if missing or unexpected:
                raise InputError(
                    f"state_dict keys do not match the model: missing {missing}, "
                    f"unexpected {unexpected}"
                )
        for name, target in own.items():
            if name not in state:
                continue
            value = np.asarray(state[name])
            array = target.data if isinstance(target, Tensor) else target
            if value.shape != array.shape:
                raise InputError(
                    f"state_dict['{name}'] has shape {value.shape}, the model expects "
                    f"{array.shape}"
                )
            backend.of(array).copy_into(array, value)
        return self

    def __repr__(self):
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, child in self._modules.items():
            child_lines = repr(child).splitlines()
            lines.append(f"  ({name}): " + "\n  ".join(child_lines))
        return "\n".join(lines) + ("\n)" if self._modules else ")")

    def extra_repr(self):
        """The layer's settings for repr(), e.g. ``in_features=4, out_features=2``."""
        return ""
