"""The device seam stays in one place, and the Tensor and the ops import in one direction.

Which device an array is on is decided in `nanoml.backend` alone; no module but the backends
(and the kernels themselves) reaches a kernel package; and the autodiff core, the ops and
the backends form no import cycle.
"""

import ast
import re
import subprocess
import sys
from pathlib import Path

import nanoml

PACKAGE = Path(nanoml.__file__).parent
BACKEND = PACKAGE / "backend"
KERNELS = PACKAGE / "kernels"


def modules(folder=PACKAGE):
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def outside(*folders):
    return [p for p in modules() if not any(f in p.parents for f in folders)]


def hits(pattern, files):
    regex = re.compile(pattern)
    return [f"{p.relative_to(PACKAGE.parent)}:{n}: {line.strip()}"
            for p in files for n, line in enumerate(p.read_text().splitlines(), 1)
            if regex.search(line)]


def test_device_decisions_live_in_the_backends():
    # The grep, less the host-value checks on user data at the edges (saving a
    # learner's arrays, reading X), which are no device decision: any test of a tensor's
    # or gradient's array type, and any numba.cuda array call, is one.
    decisions = (r"is_device_array|on_cuda|isinstance\([^,]*\.(data|grad)\b[^,]*, np\.ndarray"
                 r"|type\([^)]*\.(data|grad)\) is np\.ndarray|copy_to_host|to_device\("
                 r"|device_array\(|numba\.cuda|from numba import cuda|== \"cuda\"|!= \"cuda\"")
    assert hits(decisions, outside(BACKEND, KERNELS / "cuda")) == []


def test_only_the_backends_import_the_kernel_packages():
    kernel_import = (r"^\s*(from|import)\s+nanoml\.kernels(\.(cpu|cuda)\b| import .*\b(cpu|cuda)\b)"
                     r"|import_module\(.nanoml\.kernels\.(cpu|cuda)")
    assert hits(kernel_import, outside(BACKEND, KERNELS)) == []


def _imports(path):
    """The nanoml modules `path` imports at its top level (a package's submodule when a
    `from package import name` names one)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                as_path = PACKAGE.parent / sub.replace(".", "/")
                is_module = as_path.with_suffix(".py").exists() or as_path.is_dir()
                found.add(sub if is_module else node.module)
    return {m for m in found if m == "nanoml" or m.startswith("nanoml.")}


def _name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_the_core_the_ops_and_the_backends_import_in_one_direction():
    core = [PACKAGE / "autograd.py", PACKAGE / "tensor.py", *modules(PACKAGE / "ops"),
            *modules(BACKEND)]
    graph = {_name(p): _imports(p) for p in core}
    # No op module reaches the front door that binds them; the core and the backends reach
    # no op.
    for name, imported in graph.items():
        if name.startswith("nanoml.ops"):
            assert "nanoml.tensor" not in imported, name
    assert not any(m.startswith("nanoml.ops") or m == "nanoml.tensor"
                   for m in graph["nanoml.autograd"])
    for name in graph:
        if name.startswith("nanoml.backend"):
            assert not any(m.startswith(("nanoml.ops", "nanoml.autograd", "nanoml.tensor"))
                           for m in graph[name]), name
    # And no cycle at all among them.
    done, active = set(), []

    def visit(name):
        assert name not in active, " -> ".join(active + [name])
        if name in done or name not in graph:
            return
        active.append(name)
        for target in graph[name]:
            visit(target)
        active.pop()
        done.add(name)

    for name in graph:
        visit(name)


def test_an_op_module_works_imported_first():
    code = ("import sys, numpy as np\n"
            "from nanoml.ops.losses import mse\n"
            "from nanoml.autograd import Tensor\n"
            "loss = mse(Tensor(np.ones(3), requires_grad=True), np.zeros(3))\n"
            "loss.backward()\n"
            "print(loss.item(), 'nanoml.tensor' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.split() == ["1.0", "False"]
