"""`import nanoml` gives the whole public API, loaded on first use."""

import subprocess
import sys

import pytest

import nanoml


@pytest.mark.parametrize(
    "name, module",
    [("nn", "nanoml.nn"), ("optim", "nanoml.optim"), ("losses", "nanoml.losses"),
     ("functional", "nanoml.functional"), ("data", "nanoml.data"), ("deep", "nanoml.deep"),
     ("testing", "nanoml.testing"), ("metrics", "nanoml.metrics")],
)
def test_submodules_are_attributes(name, module):
    assert getattr(nanoml, name) is sys.modules[module]


def test_pytorch_style_names_work_from_the_package():
    rng = __import__("numpy").random.default_rng(0)
    model = nanoml.nn.Linear(3, 2, rng=rng)
    opt = nanoml.optim.Adam(model.parameters(), lr=0.1)
    loss = nanoml.losses.cross_entropy(model(nanoml.Tensor(rng.random((4, 3)))), [0, 1, 0, 1])
    loss.backward()
    opt.step()
    assert nanoml.run.__module__ == "nanoml.runner" and callable(nanoml.Learner)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = nanoml.nope
    assert {"nn", "optim", "run", "Tensor", "hookimpl"} <= set(dir(nanoml))


def test_importing_nanoml_loads_no_numpy():
    code = ("import sys, nanoml; "
            "print(sorted(m for m in ('numpy', 'numba', 'nanoml.tensor') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_hookimpl_stays_the_marker_after_its_module_is_imported():
    import nanoml.hookimpl  # noqa: F401  (the submodule of the same name)
    from nanoml import hookimpl

    assert callable(hookimpl) and type(hookimpl).__name__ == "HookimplMarker"
