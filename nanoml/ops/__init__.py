"""Differentiable ops: plain functions that compute on ``.data`` and join the graph via `apply`.

One module per family, each op one body for every device: it computes through the backend
of its operands (`nanoml.backend`). `nanoml.functional` re-exports them for users.

Importing this package binds the ops to `nanoml.autograd.Tensor` as its methods and
operators; the ops import the class, never the other way round.
"""

from nanoml.autograd import Tensor
from nanoml.ops import elementwise as _ew
from nanoml.ops import linalg as _linalg
from nanoml.ops import reduce as _reduce
from nanoml.ops import shape as _shape

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
