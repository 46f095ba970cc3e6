"""The autodiff core: the Tensor class, `apply`, and reverse mode over the graph.

Every differentiable op is a plain function (see `nanoml.ops`) that computes its output on
``.data`` arrays and joins the graph through `apply`, passing a closure that maps the
output's gradient to its parents' gradients. `Tensor.backward` walks the graph in an
iterative topological order, so graphs of any depth work (no recursion limit).

The ops import the class from here and `nanoml.ops` binds them to it as methods and
operators (``a + b``, ``a.sum()``); `nanoml.tensor` is the public front door to both.
Arrays are handled through their device's backend (`nanoml.backend`), so nothing here
knows which devices exist.
"""

import contextlib
import threading

import numpy as np

from nanoml import backend
from nanoml.errors import DeviceError, InputError
from nanoml.runtime import use_training_settings


class _GradMode(threading.local):
    enabled = True


_grad_mode = _GradMode()


@contextlib.contextmanager
def no_grad():
    """Context manager (and decorator) under which ops record no graph: inference, updates."""
    previous = _grad_mode.enabled
    _grad_mode.enabled = False
    try:
        yield
    finally:
        _grad_mode.enabled = previous


def is_grad_enabled():
    """False inside `no_grad()`."""
    return _grad_mode.enabled


def _float_array(data, dtype):
    """`data` as a float32 array, or float64 when `dtype` (or a Tensor being copied) says so.

    A float64 NumPy array still becomes float32 unless asked otherwise: NumPy makes float64
    by default, and one such input would silently run a whole float32 model in float64.
    An array stays on its device.
    """
    if isinstance(data, Tensor):
        dtype = data.data.dtype if dtype is None else dtype
        data = data.data
    return backend.of(data).tensor_data(data, dtype)


class Tensor:
    """An n-dimensional float array with an optional gradient and the op that made it.

    ``data`` is float32 unless ``dtype=np.float64`` is given; ``grad`` (set by `backward`
    on tensors that require grad and were not produced by an op) has the same shape and dtype.
    """

    __slots__ = ("data", "grad", "requires_grad", "_parents", "_backward")
    # So that `ndarray + Tensor` calls Tensor.__radd__ rather than NumPy looping over it.
    __array_ufunc__ = None

    def __init__(self, data, requires_grad=False, dtype=None):
        self.data = _float_array(data, dtype)
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self._parents = ()
        self._backward = None

    # -- array-like facts --------------------------------------------------------------
    @property
    def shape(self):
        return tuple(self.data.shape)  # a device array's may be a tuple-like of its own

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def size(self):
        return self.data.size

    @property
    def device(self):
        """The name of the device holding the data: "cpu", "cuda" (see `to`)."""
        return backend.of(self.data).name

    def to(self, device):
        """This tensor on `device` ("cpu" or "cuda"): itself if already there, else a copy
        that stays in the graph (the gradient travels back to this tensor's device)."""
        target = backend.named(device)
        source = backend.of(self.data)
        if target is source:
            return self
        return apply(backend.move(self.data, target), (self,),
                     lambda g: (backend.move(g, source),))

    def cpu(self):
        """``to("cpu")``."""
        return self.to("cpu")

    @property
    def is_leaf(self):
        """True for tensors not produced by a recorded op; only leaves receive ``.grad``."""
        return self._backward is None

    def __len__(self):
        if not self.data.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __bool__(self):
        # As NumPy: ambiguous (ValueError) for more than one element, so `t in list`
        # cannot silently compare elementwise and call any non-empty result true.
        return bool(self._host_data())

    def __repr__(self):
        grad = ", requires_grad=True" if self.requires_grad else ""
        xp = backend.of(self.data)
        device = "" if xp.host else f", device='{xp.name}'"
        body = np.array2string(self._host_data(), separator=", ", prefix="tensor(")
        return f"tensor({body}, dtype={self.data.dtype}{device}{grad})"

    def _host_data(self):
        """The data as a host array (a copy when it lives on a device)."""
        return backend.of(self.data).to_host(self.data)

    def __array__(self, dtype=None, copy=None):
        self._require_host("converted to a NumPy array")
        if dtype is None or np.dtype(dtype) == self.data.dtype:
            return self.data.copy() if copy else self.data
        return self.data.astype(dtype)

    __hash__ = object.__hash__  # comparisons are elementwise, identity stays hashable

    def numpy(self):
        """The data array itself (shared, not copied); a cuda tensor must come to the CPU
        first (``t.to("cpu").numpy()``), as in PyTorch."""
        self._require_host("read with .numpy()")
        return self.data

    def _require_host(self, what):
        xp = backend.of(self.data)
        if not xp.host:
            raise DeviceError(f"a {xp.name} tensor cannot be {what}; call .to('cpu') first")

    def item(self):
        """The value of a one-element tensor as a Python number."""
        return self._host_data().item()

    def detach(self):
        """The same data, cut off from the graph."""
        return Tensor(self)

    def zero_grad(self):
        self.grad = None

    # -- reverse mode ------------------------------------------------------------------
    def backward(self, grad=None):
        """Accumulate d(self)/d(leaf) into ``.grad`` of every leaf that requires grad.

        `grad` defaults to 1 for a one-element tensor. Gradients add up across calls, as
        in PyTorch: call ``zero_grad`` (or the optimizer's) between steps.
        """
        if not self.requires_grad:
            raise InputError(
                "backward() needs a tensor that requires grad; this one was computed from "
                "tensors that do not (or under no_grad())"
            )
        use_training_settings()
        xp = backend.of(self.data)
        if grad is None:
            if self.data.size != 1:
                raise InputError(
                    f"backward() without a gradient needs a one-element tensor, got shape "
                    f"{self.data.shape}; pass grad= of that shape"
                )
            grad = xp.full(self.data.shape, 1, self.data.dtype)
        else:
            grad = grad.data if isinstance(grad, Tensor) else grad
            source = backend.of(grad)
            if source is not xp or getattr(grad, "dtype", None) != self.data.dtype:
                # Through the host (a list, another device), cast to the tensor's dtype.
                grad = xp.from_host(np.asarray(source.to_host(grad), self.data.dtype))
            if tuple(grad.shape) != self.shape:
                raise InputError(
                    f"grad has shape {tuple(grad.shape)} but the tensor has shape {self.shape}"
                )
        grads = {id(self): grad}
        for node in reversed(_topological_order(self)):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            xp = backend.of(g)
            if node._backward is None:
                _accumulate_grad(xp, node, g)
                continue
            parent_grads = node._backward(xp.contiguous(g))
            for parent, pg in zip(node._parents, parent_grads, strict=True):
                if pg is None or parent is None or not parent.requires_grad:
                    continue
                if pg.shape != parent.data.shape:
                    raise RuntimeError(
                        f"an op's backward returned a gradient of shape {pg.shape} for a "
                        f"parent of shape {parent.data.shape}"
                    )
                key = id(parent)
                # Not in place: `pg` may alias another node's gradient.
                grads[key] = backend.of(pg).add(grads[key], pg) if key in grads else pg


def _accumulate_grad(xp, leaf, g):
    """Add `g` (on `xp`'s device) to ``leaf.grad``, which never aliases an op's gradient."""
    if leaf.grad is None:
        leaf.grad = xp.copy(g, leaf.data.dtype)
    else:
        leaf.grad = xp.add(leaf.grad, g, out=leaf.grad)


def _topological_order(root):
    """Nodes that require grad, each after all of its parents; iterative depth-first."""
    order = []
    visited = {id(root)}
    stack = [(root, iter(root._parents))]
    while stack:
        node, parents = stack[-1]
        for parent in parents:
            if parent is not None and parent.requires_grad and id(parent) not in visited:
                visited.add(id(parent))
                stack.append((parent, iter(parent._parents)))
                break
        else:
            stack.pop()
            order.append(node)
    return order


def apply(out_data, parents, backward_fn):
    """Wrap an op's output array as a Tensor, recording `backward_fn` if any parent needs it.

    `parents` is a tuple of Tensors (None allowed). ``backward_fn(grad_out)`` receives a
    C-contiguous array of the output's shape and dtype (it must not modify it) and returns
    one entry per parent: that parent's gradient (its shape) or None. Under `no_grad()`, or
    when no parent requires grad, no graph is recorded.
    """
    out = Tensor.__new__(Tensor)
    out.data = out_data if backend.is_array(out_data) else np.asarray(out_data)
    out.grad = None
    if _grad_mode.enabled and any(p is not None and p.requires_grad for p in parents):
        out.requires_grad = True
        out._parents = parents
        out._backward = backward_fn
    else:
        out.requires_grad = False
        out._parents = ()
        out._backward = None
    return out
