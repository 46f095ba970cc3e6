"""nanoml: a small machine-learning framework whose hot loops are Numba kernels.

Everything public hangs off the package, as in PyTorch::

    import nanoml

    model = nanoml.nn.Sequential(nanoml.nn.Linear(4, 3), nanoml.nn.ReLU())
    opt = nanoml.optim.Adam(model.parameters(), lr=1e-3)
    loss = nanoml.losses.cross_entropy(model(nanoml.Tensor(x)), y)
    result = nanoml.run("cnn", dataset="digits")

Names are imported on first use (PEP 562), so that printing the version or listing the
learners does not load the ops and their kernels.
"""

import importlib
from importlib.metadata import PackageNotFoundError, version

# Eager: the submodule of the same name would otherwise shadow the marker once imported.
from nanoml.hookimpl import hookimpl as hookimpl

try:
    __version__ = version("nanoml")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

# Submodules reachable as attributes: nanoml.nn, nanoml.optim, ...
_SUBMODULES = (
    "data", "deep", "device", "errors", "functional", "losses", "metrics", "nn", "optim",
    "plugins", "runner", "state_schema", "tensor", "testing", "tuning", "validation",
)
# Names defined in a submodule, reachable from the package: nanoml.Tensor, nanoml.run, ...
_EXPORTS = {
    "Learner": "nanoml.learner",
    "NanomlError": "nanoml.errors",
    "RunResult": "nanoml.runner",
    "explain": "nanoml.explain",
    "distill": "nanoml.distillation",
    "Tensor": "nanoml.tensor",
    "get_learner": "nanoml.plugins",
    "no_grad": "nanoml.tensor",
    "run": "nanoml.runner",
    "tune": "nanoml.tuning",
}


def load_model(path):
    """Load any saved learner; its class is found among the installed plugins by name."""
    from nanoml.learner import Learner

    return Learner.load(path)


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"nanoml.{name}")
    else:
        raise AttributeError(f"module 'nanoml' has no attribute '{name}'")
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__():
    return sorted({*globals(), *_SUBMODULES, *_EXPORTS})


__all__ = sorted([*_EXPORTS, *_SUBMODULES, "hookimpl", "load_model", "__version__"])
