"""The plugin manager: everything nanoml can run arrives through the `nanoml` entry points.

First-party learners live in `plugins/` and are installed as distributions' entry points
exactly like third-party ones; nothing here names them. A plugin that fails to import,
hangs while importing, or registers a learner that breaks the contract is recorded with the
reason (`nanoml plugins` shows it) and the others keep working.

Two environment variables control loading:

- ``NANOML_LOAD_PLUGINS``: comma-separated entry-point names to load; the core's own
  entry points (modules inside the ``nanoml`` package) always load. Empty: the core only.
- ``NANOML_PLUGIN_TIMEOUT``: seconds a plugin's import may take (default 30) before it is
  given up as hanging.
"""

import dataclasses
import difflib
import functools
import importlib.metadata
import os
import threading
import traceback

import pluggy

from nanoml import hookspecs
from nanoml.errors import (
    LearnerContractError,
    PluginConflictError,
    UnknownDatasetError,
    UnknownEnvironmentError,
    UnknownLearnerError,
)

GROUP = "nanoml"
LOAD_VARIABLE = "NANOML_LOAD_PLUGINS"
TIMEOUT_VARIABLE = "NANOML_PLUGIN_TIMEOUT"
DEFAULT_IMPORT_TIMEOUT = 30.0


@dataclasses.dataclass
class PluginRecord:
    """What `nanoml plugins` shows about one entry point.

    ``error``: why the plugin could not be used at all (import failed or hung, misspelt
    hook); ``problems``: one line for each thing it registered that was refused (a learner
    breaking the contract, a name another plugin registers too, a hook that raised).
    """

    name: str
    module: str
    distribution: str
    version: str
    hooks: list = dataclasses.field(default_factory=list)
    error: str = ""
    problems: list = dataclasses.field(default_factory=list)


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
    pipeline: str = None  # learner chaining the steps raw rows need (see register_datasets)

    def is_available(self):
        return True if self.available is None else bool(self.available())


@dataclasses.dataclass(frozen=True)
class EnvironmentEntry:
    name: str
    make: object  # make(num_envs=1) -> a batch of environments
    description: str
    plugin: str


def _describe_error(exc):
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" ({last[0].filename}:{last[0].lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _is_core(ep):
    """True for the entry points nanoml itself declares (modules inside `nanoml`)."""
    return ep.value.split(":")[0].split(".")[0] == "nanoml"


def _import_timeout():
    text = os.environ.get(TIMEOUT_VARIABLE, "")
    try:
        seconds = float(text) if text.strip() else DEFAULT_IMPORT_TIMEOUT
    except ValueError:
        return DEFAULT_IMPORT_TIMEOUT
    return seconds if seconds > 0 else DEFAULT_IMPORT_TIMEOUT


def _load_within(ep, seconds):
    """`ep.load()`, given up after `seconds`: the import runs in a daemon thread, so a
    plugin that hangs (a network call at import time, say) leaves the process usable."""
    outcome = {}

    def load():
        try:
            outcome["module"] = ep.load()
        except BaseException as exc:  # handed to the caller's thread below
            outcome["error"] = exc

    thread = threading.Thread(target=load, name=f"nanoml-plugin-{ep.name}", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise TimeoutError(
            f"importing {ep.value} did not finish within {seconds:g} s; it was given up "
            f"(set {TIMEOUT_VARIABLE} to allow longer)"
        )
    if "error" in outcome:
        raise outcome["error"]
    return outcome["module"]


class _Refused(Exception):
    """A registration refused: `name` (None when it has none) and the error to show."""

    def __init__(self, name, error):
        super().__init__(str(error))
        self.name, self.error = name, error


class _Registry:
    """Names registered through one hook: entries, and the names that were refused.

    A name two plugins register is refused for both (neither silently wins); asking for
    a refused name raises the error that refused it.
    """

    def __init__(self, kind):
        self.kind = kind
        self.entries = {}
        self.refused = {}  # name -> NanomlError

    def add(self, name, entry, record, records):
        if name in self.refused:
            error = self.refused[name]
            record.problems.append(str(error))
            return
        if name in self.entries:
            first = self.entries.pop(name)
            error = PluginConflictError(
                f"{self.kind} '{name}' is registered by both plugin '{first.plugin}' and "
                f"plugin '{record.name}'; uninstall one of them (or leave one out with "
                f"{LOAD_VARIABLE})"
            )
            self.refused[name] = error
            record.problems.append(str(error))
            records[first.plugin].problems.append(str(error))
            return
        self.entries[name] = entry

    def refuse(self, name, error, record):
        record.problems.append(str(error))
        if name:
            self.entries.pop(name, None)
            self.refused[name] = error

    def get(self, name, unknown_error, listing):
        if name in self.refused:
            raise self.refused[name]
        try:
            return self.entries[name]
        except KeyError:
            raise unknown_error(_unknown(self.kind, name, self.entries, listing)) from None


class PluginSet:
    """A pluggy manager loaded from the entry points, plus the records of each plugin."""

    def __init__(self, entry_points=None):
        self.manager = pluggy.PluginManager(GROUP)
        self.manager.add_hookspecs(hookspecs)
        self.records = []
        found = _entry_points() if entry_points is None else entry_points
        timeout = _import_timeout()
        for ep in self._selected(found):
            self._load(ep, timeout)
        self._learners = None
        self._datasets = None
        self._environments = None

    def _selected(self, entry_points):
        """The entry points `NANOML_LOAD_PLUGINS` lets load (all when it is unset); a name
        it gives that is not installed is recorded as such."""
        wanted = os.environ.get(LOAD_VARIABLE)
        if wanted is None:
            return list(entry_points)
        names = [n.strip() for n in wanted.split(",") if n.strip()]
        known = {ep.name for ep in entry_points}
        for name in names:
            if name not in known:
                self.records.append(PluginRecord(
                    name=name, module="", distribution="", version="",
                    error=f"not installed: {LOAD_VARIABLE} names it, no entry point in "
                          f"group '{GROUP}' has that name",
                ))
        return [ep for ep in entry_points if _is_core(ep) or ep.name in names]

    def _load(self, ep, timeout):
        dist = getattr(ep, "dist", None)
        record = PluginRecord(
            name=ep.name,
            module=ep.value,
            distribution=dist.metadata["Name"] if dist else "",
            version=dist.version if dist else "",
        )
        self.records.append(record)
        try:
            module = _load_within(ep, timeout)
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

    def call_each(self, hook_name, arguments):
        """Call a hook plugin by plugin with the keyword arguments ``arguments(record)``
        makes for that plugin's record; a plugin whose hook raises is recorded with the
        error and the others still run."""
        records = {r.name: r for r in self.records}
        for impl in getattr(self.manager.hook, hook_name).get_hookimpls():
            record = records[impl.plugin_name]
            try:
                impl.function(**arguments(record))
            except Exception as exc:
                record.problems.append(f"{hook_name} failed: {_describe_error(exc)}")

    @property
    def learners(self):
        """Learner name -> LearnerEntry, for every plugin that imported cleanly."""
        if self._learners is None:
            self._learners = self._collect("learner", "register_learners", self._learner_entry)
        return self._learners.entries

    @property
    def refused_learners(self):
        """Learner name -> the error that refused it (contract mistake or name clash)."""
        _ = self.learners
        return self._learners.refused

    @property
    def datasets(self):
        """Dataset name -> DatasetEntry."""
        if self._datasets is None:
            self._datasets = self._collect("dataset", "register_datasets", self._dataset_entry)
        return self._datasets.entries

    @property
    def environments(self):
        """Environment name -> EnvironmentEntry."""
        if self._environments is None:
            self._environments = self._collect("environment", "register_environments",
                                               self._environment_entry)
        return self._environments.entries

    def _collect(self, kind, hook_name, make_entry):
        registry = _Registry(kind)
        records = {r.name: r for r in self.records}

        def make_register(record):
            def register(*args, **kwargs):
                try:
                    name, entry = make_entry(record, *args, **kwargs)
                except _Refused as refused:
                    registry.refuse(refused.name, refused.error, record)
                    return
                registry.add(name, entry, record, records)

            return {"register": register}

        self.call_each(hook_name, make_register)
        registry.entries = dict(sorted(registry.entries.items()))
        return registry

    @staticmethod
    def _learner_entry(record, cls):
        from nanoml.learner import contract_problem

        problem = contract_problem(cls)
        if problem is not None:
            error = LearnerContractError(
                f"plugin '{record.name}' registers a broken learner: {problem}; its author "
                "has to fix it ('nanoml.testing.check_learner' finds this)"
            )
            name = getattr(cls, "name", None)
            raise _Refused(name if isinstance(name, str) and name else None, error)
        return cls.name, LearnerEntry(cls, record.name)

    @staticmethod
    def _dataset_entry(record, name, loader, description, available=None, pipeline=None):
        return name, DatasetEntry(name, loader, description, record.name, available, pipeline)

    @staticmethod
    def _environment_entry(record, name, make, description):
        return name, EnvironmentEntry(name, make, description, record.name)

    def learner(self, name):
        """The learner class registered as `name`; an unknown name suggests the closest,
        a refused one raises the error that refused it."""
        _ = self.learners
        return self._learners.get(name, UnknownLearnerError, "nanoml list").cls

    def dataset(self, name):
        _ = self.datasets
        return self._datasets.get(name, UnknownDatasetError, "nanoml datasets")

    def environment(self, name):
        _ = self.environments
        return self._environments.get(name, UnknownEnvironmentError, "nanoml envs")

    def add_commands(self, cli):
        """Let every plugin add its commands to the click group `cli`."""
        self.call_each("register_commands", lambda record: {"cli": cli})


def _entry_points():
    return sorted(importlib.metadata.entry_points(group=GROUP), key=lambda ep: ep.name)


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

