"""nanoml: a small machine-learning framework whose hot loops are Numba kernels."""

from importlib.metadata import PackageNotFoundError, version

from nanoml.errors import NanomlError
from nanoml.hookimpl import hookimpl
from nanoml.learner import Learner
from nanoml.plugins import get_learner

try:
    __version__ = version("nanoml")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"


def load_model(path):
    """Load any saved learner; its class is found among the installed plugins by name."""
    return Learner.load(path)


_TENSOR_EXPORTS = ("Tensor", "no_grad", "tensor")


def __getattr__(name):
    # Imported on first use so that `nanoml --version` does not load NumPy ops and kernels.
    if name in _TENSOR_EXPORTS:
        import nanoml.tensor

        return nanoml.tensor if name == "tensor" else getattr(nanoml.tensor, name)
    raise AttributeError(f"module 'nanoml' has no attribute '{name}'")


__all__ = [
    "Learner",
    "NanomlError",
    "Tensor",
    "get_learner",
    "hookimpl",
    "load_model",
    "no_grad",
    "tensor",
    "__version__",
]
