"""Scaffolds for third-party plugins (the `nanoml new-plugin` command): a package that
installs with pip, registers one working learner through the `nanoml` entry point and
tests it.

The templates (``nanoml/templates/plugin``) are rendered with Jinja2, a well-kept, widely
known template engine that already ships as a dependency of half the Python ecosystem;
copier would add a CLI, a questionnaire and git handling we do not need.
"""

import importlib.metadata
import importlib.util
import keyword
import os
import pathlib
import re
import secrets
import shutil

from nanoml.errors import ParameterError
from nanoml.templating import environment

# A distribution name as pip writes it: lowercase words of letters and digits joined by
# single hyphens, the first starting with a letter.
_NAME = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")

# What each template writes: its learner's one-line description and default dataset.
_FLAVOURS = {
    "classic": {
        "description": "nearest-centroid classifier, centroids shrunk towards the overall mean",
        "dataset": "iris",
    },
    "deep": {
        "description": "multilayer perceptron: one hidden ReLU layer, Adam, cross-entropy",
        "dataset": "digits",
    },
}


def write_plugin(name, folder=".", deep=False):
    """Write a plugin package called `name` into ``folder/name`` and return that path.

    `name` is the distribution's name (``my-learners``); the import package is the same
    with underscores (``my_learners``), and the plugin's entry point and its learner are
    called `name` too. `deep` picks a small neural network instead of a NumPy
    nearest-centroid classifier. Nothing is written unless every file renders, and an
    existing non-empty ``folder/name`` is never touched.
    """
    package = _check_name(name)
    target = pathlib.Path(folder) / name
    if target.exists() and not (target.is_dir() and not any(target.iterdir())):
        raise ParameterError(
            f"'{target}' already exists and is not an empty folder; new-plugin never "
            "overwrites files: pick another name or folder"
        )
    files = _render(name, package, "deep" if deep else "classic")
    _write_all(target, files)
    return target


def _check_name(name):
    """The import package of the plugin `name`, or ParameterError if `name` cannot be one."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ParameterError(
            f"plugin name {name!r} is not allowed: use lowercase letters, digits and single "
            "hyphens, starting with a letter, e.g. 'my-learners'"
        )
    package = name.replace("-", "_")
    if keyword.iskeyword(package) or package == "tests":
        raise ParameterError(
            f"plugin name {name!r} is not allowed: its package '{package}' would clash with "
            "a Python keyword or the plugin's tests folder; pick another, e.g. 'my-learners'"
        )
    _check_free(name, package)
    return package


def _check_free(name, package):
    """Refuse a name the installed plugins already use (entry point, learner or module):
    the new plugin would be refused, or hide another module, once installed."""
    from nanoml import plugins

    for ep in importlib.metadata.entry_points(group=plugins.GROUP):
        if ep.name == name:
            raise ParameterError(
                f"an installed nanoml plugin is already called '{name}' (entry point "
                f"'{ep.value}'); pick another name"
            )
    if name in plugins.plugin_set().learners:
        raise ParameterError(
            f"an installed plugin already registers a learner called '{name}' (see "
            "'nanoml list'); pick another name"
        )
    try:
        taken = importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        taken = True
    if taken:
        raise ParameterError(
            f"a module called '{package}' is already importable; a plugin package of that "
            "name would hide it or be hidden by it: pick another name"
        )


def _render(name, package, flavour):
    """Relative path -> text of every file of the plugin, rendered in memory."""
    context = {
        "name": name,
        "package": package,
        "learner_name": name,
        "class_name": "".join(part.capitalize() for part in package.split("_")),
        "deep": flavour == "deep",
        **_FLAVOURS[flavour],
    }
    layout = {
        "pyproject.toml": "pyproject.toml.j2",
        "README.md": "README.md.j2",
        f"{package}/__init__.py": "__init__.py.j2",
        f"{package}/plugin.py": f"{flavour}/plugin.py.j2",
        f"tests/test_{package}.py": "test_plugin.py.j2",
    }
    env = environment("plugin")
    return {path: env.get_template(template).render(context) for path, template in layout.items()}


def _write_all(target, files):
    """Write `files` into a hidden sibling of `target`, then rename it into place, so a
    failure midway leaves no half-made plugin; the sibling goes again if anything fails."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}-{secrets.token_hex(4)}.tmp"
    staging.mkdir()  # not mkdtemp: the plugin's folder gets the usual permissions
    try:
        for relative, text in files.items():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        if target.is_dir():
            target.rmdir()  # empty (checked by the caller); fails if it no longer is
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
