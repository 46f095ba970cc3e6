"""Turning ``key=value`` strings into typed hyperparameters."""

from nanoml.errors import ParameterError

_WORDS = {"true": True, "false": False, "none": None, "null": None}


def parse_literal(text):
    """'3' -> 3, '0.1' -> 0.1, 'true' -> True, 'none' -> None, anything else -> the string."""
    lowered = text.strip().lower()
    if lowered in _WORDS:
        return _WORDS[lowered]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def coerce(name, text, default):
    """The value of `text` for a hyperparameter whose default is `default`."""
    value = parse_literal(text)
    if default is None or value is None:
        return value
    kind = type(default)
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise ParameterError(f"hyperparameter '{name}' expects true or false, got '{text}'")
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ParameterError(f"hyperparameter '{name}' expects an integer, got '{text}'")
    if kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ParameterError(f"hyperparameter '{name}' expects a number, got '{text}'")
    if kind in (tuple, list):  # "128,64", or as `nanoml info` prints it: "(128, 64)", "[64]"
        inner = text.strip()
        if inner[:1] + inner[-1:] in ("()", "[]"):
            inner = inner[1:-1]
        parts = [parse_literal(p) for p in inner.split(",") if p.strip()]
        return kind(parts)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value  # a text default may also take numbers (svm's gamma: 'scale' or 0.1)
    return text


def parse_assignments(learner_cls, assignments, defaults=None):
    """['lr=0.1', 'solver=gd'] -> {'lr': 0.1, 'solver': 'gd'}, checked against the learner
    (or against `defaults`, name -> default, where it takes more than its own)."""
    defaults = defaults or learner_cls.param_defaults()
    params = {}
    for item in assignments:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ParameterError(f"a hyperparameter setting must be key=value, got '{item}'")
        if key not in defaults:
            raise ParameterError(
                f"learner '{learner_cls.name}' has no hyperparameter '{key}'; "
                f"valid ones: {', '.join(defaults) or '(none)'}"
            )
        params[key] = coerce(key, text, defaults[key])
    return params
