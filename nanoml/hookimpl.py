"""The marker plugins use for their hook implementations: ``@nanoml.hookimpl``."""

import pluggy

hookimpl = pluggy.HookimplMarker("nanoml")
