import sys
import textwrap

import numpy as np
import pytest

from nanoml.plugins import PluginSet
from tests.samples import write_table


@pytest.fixture
def make_distribution(tmp_path, monkeypatch):
    """Create an installed-looking distribution: a module plus a dist-info with entry points.

    Returns a function ``make(dist_name, module_name, source, entry_points)`` where
    `entry_points` maps entry-point names to 'module:attr' or 'module' strings in group
    'nanoml'. The folder goes on sys.path, so importlib.metadata finds it as installed.
    """
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))

    def make(dist_name, module_name, source, entry_points):
        (site / f"{module_name}.py").write_text(textwrap.dedent(source))
        info = site / f"{dist_name.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: 1.0\n"
        )
        lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
        (info / "entry_points.txt").write_text(f"[nanoml]\n{lines}\n")
        (info / "RECORD").write_text("")
        sys.modules.pop(module_name, None)
        return site

    return make


@pytest.fixture
def fresh_plugins(monkeypatch):
    """Replace the process-wide plugin set with one rebuilt from the entry points now."""
    import nanoml.cli
    import nanoml.plugins

    def build():
        plugins = PluginSet()
        monkeypatch.setattr(nanoml.plugins, "plugin_set", lambda: plugins)
        monkeypatch.setattr(nanoml.cli, "plugin_set", lambda: plugins)
        return plugins

    return build


@pytest.fixture
def houses(tmp_path):
    """A CSV with a number, an integer with gaps, text, a boolean and a text target."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(200):
        area, city, garden = rng.uniform(30, 200), rng.choice(["lyon", "nice", "paris"]), i % 3 == 0
        kind = "house" if area + 40 * garden > 120 else "flat"
        rooms = "" if i % 25 == 7 else int(rng.integers(1, 6))
        rows.append([f"{area:.2f}", rooms, city, str(garden).lower(), kind])
    return write_table(tmp_path / "houses.csv", ["area", "rooms", "city", "garden", "kind"], rows)
