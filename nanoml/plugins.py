"""The plugin manager: everything nanoml can run arrives through the `nanoml` entry points.

First-party learners live in `plugins/` and are installed as distributions' entry points
exactly like third-party ones; nothing here names them. A plugin that fails to import is
recorded with its error (see `plugin_report`) and the others keep working.
"""

import dataclasses
import difflib
import functools
import importlib.metadata
import traceback

import pluggy

from nanoml import hookspecs
from nanoml.errors import PluginConflictError, UnknownDatasetError, UnknownLearnerError

GROUP = "nanoml"


@dataclasses.dataclass
class PluginRecord:
    """What `nanoml plugins` shows about one entry point."""

    name: str
    module: str
    distribution: str
    version: str
    hooks: list = dataclasses.field(default_factory=list)
    error: str = ""


@dataclasses.dataclass(frozen=True)
class LearnerEntry:
    cls: type
    plugin: str


@dataclasses.dataclass(frozen=True)
class DatasetEntry:
    name: str
    loader: object
    description: str
    plugin: str
    available: object = None

    def is_available(self):
        return True if self.available is None else bool(self.available())


def _describe_error(exc):
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" ({last[0].filename}:{last[0].lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _entry_points():
    return sorted(importlib.metadata.entry_points(group=GROUP), key=lambda ep: ep.name)


class PluginSet:
    """A pluggy manager loaded from the entry points, plus the records of each plugin."""

    def __init__(self, entry_points=None):
        self.manager = pluggy.PluginManager(GROUP)
        self.manager.add_hookspecs(hookspecs)
        self.records = []
        for ep in _entry_points() if entry_points is None else entry_points:
            self._load(ep)
        self._learners = None
        self._datasets = None

    def _load(self, ep):
        dist = getattr(ep, "dist", None)
        record = PluginRecord(
            name=ep.name,
            module=ep.value,
            distribution=dist.metadata["Name"] if dist else "",
            version=dist.version if dist else "",
        )
        self.records.append(record)
        try:
            module = ep.load()
            self.manager.register(module, name=ep.name)
        except Exception as exc:  # a broken plugin must not take the CLI down with it
            record.error = _describe_error(exc)
            return
        try:
            self.manager.check_pending()  # a misspelt hook name fails loudly, per plugin
        except pluggy.PluginValidationError as exc:
            self.manager.unregister(module)
            record.error = f"PluginValidationError: {exc}"
            return
        record.hooks = sorted(
            caller.name for caller in self.manager.get_hookcallers(module) or []
        )

    def _call_each(self, hook_name, make_register):
        """Call a registration hook plugin by plugin, so each registration knows its plugin."""
        records = {r.name: r for r in self.records}
        for impl in getattr(self.manager.hook, hook_name).get_hookimpls():
            try:
                impl.function(register=make_register(impl.plugin_name))
            except PluginConflictError:
                raise
            except Exception as exc:
                records[impl.plugin_name].error = _describe_error(exc)

    @property
    def learners(self):
        """Learner name -> LearnerEntry, for every plugin that imported cleanly."""
        if self._learners is None:
            found = {}

            def make_register(plugin):
                def register(cls):
                    name = cls.name
                    if name in found:
                        raise PluginConflictError(
                            f"learner '{name}' is registered by both plugin "
                            f"'{found[name].plugin}' and plugin '{plugin}'; "
                            "uninstall one of them"
                        )
                    found[name] = LearnerEntry(cls, plugin)

                return register

            self._call_each("register_learners", make_register)
            self._learners = dict(sorted(found.items()))
        return self._learners

    @property
    def datasets(self):
        """Dataset name -> DatasetEntry."""
        if self._datasets is None:
            found = {}

            def make_register(plugin):
                def register(name, loader, description, available=None):
                    if name in found:
                        raise PluginConflictError(
                            f"dataset '{name}' is registered by both plugin "
                            f"'{found[name].plugin}' and plugin '{plugin}'; "
                            "uninstall one of them"
                        )
                    found[name] = DatasetEntry(name, loader, description, plugin, available)

                return register

            self._call_each("register_datasets", make_register)
            self._datasets = dict(sorted(found.items()))
        return self._datasets

    def learner(self, name):
        """The learner class registered as `name`; an unknown name suggests the closest."""
        try:
            return self.learners[name].cls
        except KeyError:
            raise UnknownLearnerError(
                _unknown("learner", name, self.learners, "nanoml list")
            ) from None

    def dataset(self, name):
        try:
            return self.datasets[name]
        except KeyError:
            raise UnknownDatasetError(
                _unknown("dataset", name, self.datasets, "nanoml datasets")
            ) from None


def _unknown(kind, name, known, listing):
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"unknown {kind} '{name}': {hint}'{listing}' shows the installed ones"


@functools.lru_cache(maxsize=1)
def plugin_set():
    """The process-wide PluginSet, built from the installed entry points on first use."""
    return PluginSet()


def get_learner(name):
    """The learner class registered under `name` by any installed plugin."""
    return plugin_set().learner(name)
