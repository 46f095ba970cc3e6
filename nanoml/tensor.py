"""Tensor: an array, its gradient, and the graph that computes it (reverse-mode autodiff).

Every differentiable op is a plain function (see `nanoml.ops`) that computes its output on
``.data`` arrays and joins the graph through `apply`, passing a closure that maps the
output's gradient to its parents' gradients. `Tensor.backward` walks the graph in an
iterative topological order, so graphs of any depth work (no recursion limit).
"""

import contextlib
import sys
import threading
import types

import numpy as np

from nanoml import cuda_arrays
from nanoml.errors import DeviceError, InputError

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


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
    """
    if isinstance(data, Tensor):
        dtype = data.data.dtype if dtype is None else dtype
        data = data.data
    if cuda_arrays.is_device_array(data):
        if data.dtype not in _FLOATS or (dtype is not None and np.dtype(dtype) != data.dtype):
            raise InputError(f"a {data.dtype} device array cannot become a "
                             f"{'float tensor' if dtype is None else np.dtype(dtype)} tensor; "
                             f"cast it on the host first")
        return data
    dtype = np.dtype(np.float32 if dtype is None else dtype)
    if dtype not in _FLOATS:
        raise InputError(f"dtype must be float32 or float64, got {dtype}")
    try:
        return np.asarray(data, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise InputError(f"data could not be read as a {dtype} array: {exc}") from None


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
        """"cpu" for NumPy data, "cuda" for a numba device array (see `to`)."""
        return "cpu" if isinstance(self.data, np.ndarray) else "cuda"

    def to(self, device):
        """This tensor on `device` ("cpu" or "cuda"): itself if already there, else a copy
        that stays in the graph (the gradient travels back to this tensor's device)."""
        device = check_device(device)
        if device == self.device:
            return self
        if device == "cuda":
            return apply(cuda_arrays.to_device(self.data), (self,),
                         lambda g: (cuda_arrays.to_host(g),))
        return apply(cuda_arrays.to_host(self.data), (self,),
                     lambda g: (cuda_arrays.to_device(g),))

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
        device = ", device='cuda'" if self.device == "cuda" else ""
        body = np.array2string(self._host_data(), separator=", ", prefix="tensor(")
        return f"tensor({body}, dtype={self.data.dtype}{device}{grad})"

    def _host_data(self):
        """The data as a host array (a copy when it lives on the device)."""
        return self.data if isinstance(self.data, np.ndarray) else cuda_arrays.to_host(self.data)

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
        if not isinstance(self.data, np.ndarray):
            raise DeviceError(f"a cuda tensor cannot be {what}; call .to('cpu') first")

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
        if grad is None:
            if self.data.size != 1:
                raise InputError(
                    f"backward() without a gradient needs a one-element tensor, got shape "
                    f"{self.data.shape}; pass grad= of that shape"
                )
            grad = (np.ones(self.data.shape, self.data.dtype) if self.device == "cpu"
                    else cuda_arrays.full(self.data.shape, 1, self.data.dtype))
        else:
            grad = grad.data if isinstance(grad, Tensor) else grad
            if cuda_arrays.is_device_array(grad) and self.device == "cpu":
                grad = cuda_arrays.to_host(grad)
            if not cuda_arrays.is_device_array(grad):
                grad = np.asarray(grad, self.data.dtype)
            if tuple(grad.shape) != self.shape:
                raise InputError(
                    f"grad has shape {tuple(grad.shape)} but the tensor has shape {self.shape}"
                )
            if self.device == "cuda" and isinstance(grad, np.ndarray):
                grad = cuda_arrays.to_device(grad)
        grads = {id(self): grad}
        for node in reversed(_topological_order(self)):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if node._backward is None:
                _accumulate_grad(node, g)
                continue
            if isinstance(g, np.ndarray) and not g.flags.c_contiguous:
                g = g.copy(order="C")
            parent_grads = node._backward(g)
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
                grads[key] = _add(grads[key], pg) if key in grads else pg


def _add(a, b):
    """a + b of two gradients on one device."""
    return cuda_arrays.binary("add", a, b) if cuda_arrays.is_device_array(a) else a + b


def _accumulate_grad(leaf, g):
    """Add `g` to ``leaf.grad``, which never aliases an op's gradient array."""
    on_device = cuda_arrays.is_device_array(g)
    if leaf.grad is None:
        leaf.grad = (cuda_arrays.copy(g) if on_device
                     else np.array(g, dtype=leaf.data.dtype, order="C"))
    elif on_device:
        leaf.grad = _add(leaf.grad, g)
    else:
        leaf.grad += g


DEVICES = ("cpu", "cuda")


def check_device(device):
    """`device` as "cpu" or "cuda" (raising InputError for anything else)."""
    name = str(device).lower()
    if name not in DEVICES:
        raise InputError(f"unknown device {device!r}; use one of {', '.join(DEVICES)}")
    return name


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
    out.data = (out_data if type(out_data) is np.ndarray or cuda_arrays.is_device_array(out_data)
                else np.asarray(out_data))
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


def tensor(data, requires_grad=False, dtype=None):
    """A new leaf Tensor: float32 unless `dtype` says float64."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


class _CallableModule(types.ModuleType):
    """`nanoml.tensor` is this module, and ``nanoml.tensor(data)`` builds a tensor.

    The package exports the factory `tensor` under the same name as this module; once the
    module is imported the package attribute is the module, so the module itself must be
    callable for ``nanoml.tensor([1, 2])`` to keep working.
    """

    def __call__(self, data, requires_grad=False, dtype=None):
        return tensor(data, requires_grad=requires_grad, dtype=dtype)


sys.modules[__name__].__class__ = _CallableModule

# The ops live in nanoml.ops; they import `apply` and `Tensor` from here, so they are bound
# to the class only now that both exist.
from nanoml.ops import elementwise as _ew  # noqa: E402
from nanoml.ops import linalg as _linalg  # noqa: E402
from nanoml.ops import reduce as _reduce  # noqa: E402
from nanoml.ops import shape as _shape  # noqa: E402

Tensor.__add__ = Tensor.__radd__ = _ew.add
Tensor.__sub__ = _ew.sub
Tensor.__rsub__ = _ew.rsub
Tensor.__mul__ = Tensor.__rmul__ = _ew.mul
Tensor.__truediv__ = _ew.div
Tensor.__rtruediv__ = _ew.rdiv
Tensor.__pow__ = _ew.pow
Tensor.__rpow__ = _ew.rpow
Tensor.__neg__ = _ew.neg
Tensor.__lt__ = _ew.lt
Tensor.__le__ = _ew.le
Tensor.__gt__ = _ew.gt
Tensor.__ge__ = _ew.ge
Tensor.__eq__ = _ew.eq
Tensor.__ne__ = _ew.ne
Tensor.exp = _ew.exp
Tensor.log = _ew.log
Tensor.sqrt = _ew.sqrt
Tensor.tanh = _ew.tanh
Tensor.sigmoid = _ew.sigmoid
Tensor.relu = _ew.relu
Tensor.leaky_relu = _ew.leaky_relu
Tensor.abs = Tensor.__abs__ = _ew.abs
Tensor.clip = _ew.clip
Tensor.__matmul__ = _linalg.matmul
Tensor.__rmatmul__ = _linalg.rmatmul
Tensor.sum = _reduce.sum
Tensor.mean = _reduce.mean
Tensor.max = _reduce.max
Tensor.min = _reduce.min
Tensor.argmax = _reduce.argmax
Tensor.var = _reduce.var
Tensor.reshape = _shape.reshape
Tensor.transpose = _shape.transpose
Tensor.T = property(_shape.transpose)
Tensor.flatten = _shape.flatten
Tensor.__getitem__ = _shape.getitem
