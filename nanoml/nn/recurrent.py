"""Recurrent layers RNN (tanh), LSTM and GRU, stacked `num_layers` deep.

Parameters are named and shaped as in PyTorch (``weight_ih_l0`` (G*H, I), ``weight_hh_l0``,
``bias_ih_l0``, ``bias_hh_l0``, ...), so a state dict converts by copying arrays.
"""

import numpy as np

from nanoml.errors import InputError
from nanoml.nn import init
from nanoml.nn.module import Module, Parameter
from nanoml.ops.recurrent import gru, lstm, rnn
from nanoml.ops.shape import stack, transpose
from nanoml.validation import check_number


class _Recurrent(Module):
    """The layers' shared part: parameters, input checks, layer stacking, batch_first."""

    _op = None  # the op running one layer: rnn, lstm or gru
    _gates = 1  # how many gate blocks the weights stack

    def __init__(self, input_size, hidden_size, num_layers=1, batch_first=True, rng=None):
        super().__init__()
        check_number("input_size", input_size, low=1, integer=True)
        check_number("hidden_size", hidden_size, low=1, integer=True)
        check_number("num_layers", num_layers, low=1, integer=True)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.batch_first = batch_first
        # PyTorch's initialisation: every weight and bias from U(-1/sqrt(H), 1/sqrt(H)).
        bound = 1.0 / np.sqrt(hidden_size)
        rows = self._gates * hidden_size
        for k in range(num_layers):
            n_in = input_size if k == 0 else hidden_size
            setattr(self, f"weight_ih_l{k}", Parameter(init.uniform((rows, n_in), bound, rng)))
            setattr(self, f"weight_hh_l{k}",
                    Parameter(init.uniform((rows, hidden_size), bound, rng)))
            setattr(self, f"bias_ih_l{k}", Parameter(init.uniform((rows,), bound, rng)))
            setattr(self, f"bias_hh_l{k}", Parameter(init.uniform((rows,), bound, rng)))

    def _layer(self, k):
        return tuple(getattr(self, f"{kind}_l{k}")
                     for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))

    def _check_input(self, x):
        layout = "(batch, steps, features)" if self.batch_first else "(steps, batch, features)"
        if x.ndim != 3:
            raise InputError(f"{type(self).__name__} expects input of shape {layout}, got "
                             f"shape {x.shape}")
        if x.shape[2] != self.input_size:
            raise InputError(f"{type(self).__name__} was built for {self.input_size} input "
                             f"features, got input of shape {x.shape} with {x.shape[2]}")

    def _run(self, x, initial):
        """Check the input, then apply every layer.

        `initial` maps state names (h0, c0) to (num_layers, B, H) Tensors or None. Returns
        the last layer's outputs and, per state, the (num_layers, B, H) final states.
        """
        self._check_input(x)
        batch = x.shape[0 if self.batch_first else 1]
        expected = (self.num_layers, batch, self.hidden_size)
        for name, h in initial.items():
            if h is not None and h.shape != expected:
                raise InputError(f"{type(self).__name__}: {name} must have shape "
                                 f"(num_layers, batch, hidden_size) = {expected}, got {h.shape}")
        if not self.batch_first:
            x = transpose(x, 1, 0, 2)
        finals = []
        for k in range(self.num_layers):
            states = [None if h is None else h[k] for h in initial.values()]
            x, final = self._op(x, *self._layer(k), *states)
            finals.append(final if isinstance(final, tuple) else (final,))
        if not self.batch_first:
            x = transpose(x, 1, 0, 2)
        per_state = zip(*finals, strict=True)
        return x, tuple(stack(list(layers), axis=0) for layers in per_state)

    def extra_repr(self):
        return (f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
                f"batch_first={self.batch_first}")


class RNN(_Recurrent):
    """Elman RNN with tanh. ``forward(x, hx=None)`` -> (outputs, h_n (num_layers, B, H))."""

    _op = staticmethod(rnn)
    _gates = 1

    def forward(self, x, hx=None):
        out, (h_n,) = self._run(x, {"hx": hx})
        return out, h_n


class GRU(_Recurrent):
    """GRU with PyTorch's gates (r, z, n). ``forward(x, hx=None)`` -> (outputs, h_n)."""

    _op = staticmethod(gru)
    _gates = 3

    def forward(self, x, hx=None):
        out, (h_n,) = self._run(x, {"hx": hx})
        return out, h_n


class LSTM(_Recurrent):
    """LSTM with PyTorch's gates (i, f, g, o).

    ``forward(x, hx=None)`` with `hx` = (h0, c0), each (num_layers, B, H), returns
    (outputs, (h_n, c_n)).
    """

    _op = staticmethod(lstm)
    _gates = 4

    def forward(self, x, hx=None):
        h0, c0 = (None, None) if hx is None else hx
        out, (h_n, c_n) = self._run(x, {"h0": h0, "c0": c0})
        return out, (h_n, c_n)
