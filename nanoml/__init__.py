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


__all__ = ["Learner", "NanomlError", "get_learner", "hookimpl", "load_model", "__version__"]
