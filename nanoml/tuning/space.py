"""Search spaces: the values each hyperparameter may take while tuning, as Optuna
distributions.

A learner's ``search_space`` lists values worth trying; each list becomes a categorical
choice. A tuning run may replace any entry (or add one for any hyperparameter) with a list
of values or with text:

    "0.001..0.1"        a range: of integers where the hyperparameter is an integer
    "1e-4..1:log"       a range sampled on a log scale
    "rbf,linear"        values, each typed by the hyperparameter's default as a fixed
                        setting is; a tuple in parentheses: "(64),(128,64)"
"""

import dataclasses
import json

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from nanoml.errors import ParameterError
from nanoml.params import coerce, parse_literal

_SCALARS = (bool, int, float, str, type(None))
_LOG = ":log"


@dataclasses.dataclass(frozen=True)
class Dimension:
    """One hyperparameter's distribution; a categorical one keeps the learner's values,
    which Optuna sees as labels (a tuple's label is its JSON text)."""

    name: str
    distribution: BaseDistribution
    values: tuple = ()

    @property
    def is_range(self):
        return not isinstance(self.distribution, CategoricalDistribution)

    @property
    def log(self):
        return getattr(self.distribution, "log", False)

    def value(self, label):
        """The hyperparameter's value for Optuna's parameter `label`."""
        if self.is_range:
            return label
        return self.values[self.distribution.choices.index(label)]

    def label(self, value):
        """Optuna's parameter for the value `value` (as a journal gives it back)."""
        return value if self.is_range else _label(value)

    def grid(self):
        """Every label, for the grid sampler; a range of floats has no grid."""
        if not self.is_range:
            return list(self.distribution.choices)
        if isinstance(self.distribution, FloatDistribution):
            raise ParameterError(
                f"the grid sampler needs values to try, but space {self.name} is a range of "
                f"numbers; list values instead ({self.name}=a,b,c)", argument="space",
            )
        return list(range(self.distribution.low, self.distribution.high + 1))

    def describe(self):
        """The dimension as a space entry reads: "1e-05..0.1:log" or "rbf,linear"."""
        if self.is_range:
            d = self.distribution
            return f"{d.low}..{d.high}{_LOG if d.log else ''}"
        return ",".join(_text(v) for v in self.values)


def _label(value):
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, (tuple, list)):
        return json.dumps(list(value))
    return str(value)


def _text(value):
    if isinstance(value, (tuple, list)):
        return "(" + ",".join(str(v) for v in value) + ")"
    return str(value)


def split_pairs(items, *, space=False):
    """['lr=1e-3..1e-1', ...] -> {'lr': '1e-3..1e-1', ...}: search-space entries when
    `space`, else fixed hyperparameter settings."""
    pairs = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            if space:
                raise ParameterError(f"space entries are key=values, got '{item}'",
                                     argument="space")
            raise ParameterError(f"a hyperparameter setting must be key=value, got '{item}'")
        pairs[key.strip()] = text.strip()
    return pairs


def check_known(classes, keys, what, defaults=None):
    """Every name in `keys` is a hyperparameter of at least one learner in `classes` (or
    in `defaults`, one dict of settable names per class, where a run takes more than the
    learner's own)."""
    valid = {}
    for i, cls in enumerate(classes):
        valid.update(dict.fromkeys(cls.param_defaults() if defaults is None else defaults[i]))
    for key in keys:
        if key not in valid:
            owners = ", ".join(c.name for c in classes)
            where = (f"learner '{owners}' has no hyperparameter" if len(classes) == 1
                     else f"none of the learners {owners} has a hyperparameter")
            prefix = "space: " if what == "space" else ""
            raise ParameterError(
                f"{prefix}{where} '{key}'; valid ones: {', '.join(valid) or '(none)'}",
                argument="space" if what == "space" else None,
            )


def fixed_params(cls, params, defaults=None):
    """The settings in `params` that learner `cls` has (or that `defaults` names); text is
    typed by the defaults."""
    defaults = cls.param_defaults() if defaults is None else defaults
    return {
        key: coerce(key, value, defaults[key]) if isinstance(value, str) else value
        for key, value in (params or {}).items() if key in defaults
    }


def learner_space(cls, overrides=None, fixed=(), defaults=None, search_space=None):
    """Hyperparameter -> Dimension for learner `cls`: its ``search_space`` (or
    `search_space`), with the entries of `overrides` it has (or `defaults` names) replacing
    or adding to it, less the names in `fixed`."""
    defaults = cls.param_defaults() if defaults is None else defaults
    search_space = cls.search_space if search_space is None else search_space
    overrides = {k: v for k, v in (overrides or {}).items() if k in defaults}
    clash = sorted(set(overrides) & set(fixed))
    if clash:
        raise ParameterError(
            f"space: '{clash[0]}' is both searched and fixed for learner '{cls.name}'; "
            "give it one or the other", argument="space",
        )
    specs = {k: v for k, v in search_space.items() if k not in fixed}
    specs.update(overrides)
    return {name: dimension(name, spec, defaults.get(name)) for name, spec in specs.items()}


def dimension(name, spec, default):
    """The Dimension of hyperparameter `name` (default `default`) for `spec`: a list of
    values or a space entry's text."""
    if isinstance(spec, str):
        return _parse(name, spec, default)
    if isinstance(spec, (list, tuple)) and len(spec):
        return _categorical(name, list(spec))
    raise ParameterError(
        f"space {name}: expected a list of values or text such as 'low..high', "
        f"got {spec!r}", argument="space",
    )


def _categorical(name, values):
    unique = []
    for value in values:
        if value not in unique:
            unique.append(value)
    labels = [_label(v) for v in unique]
    return Dimension(name, CategoricalDistribution(labels), tuple(unique))


def _parse(name, text, default):
    entry = f"space {name}={text}"
    if not text:
        raise ParameterError(f"{entry} gives no values", argument="space")
    if ".." in text:
        return _parse_range(name, text, default, entry)
    if text.endswith(_LOG):
        raise ParameterError(f"{entry}: only a range low..high can take :log",
                             argument="space")
    values = []
    for part in _split_choices(text):
        if not part:
            raise ParameterError(f"{entry} has an empty value", argument="space")
        inner = part[1:-1] if part.startswith("(") and part.endswith(")") else part
        try:
            values.append(coerce(name, inner, default))
        except ParameterError as exc:
            raise ParameterError(f"{entry}: {exc}", argument="space") from None
    return _categorical(name, values)


def _split_choices(text):
    """'a,(1,2),b' -> ['a', '(1,2)', 'b']: commas inside parentheses do not split."""
    parts, depth, current = [], 0, []
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    return parts


def _parse_range(name, text, default, entry):
    body, log = (text[: -len(_LOG)], True) if text.endswith(_LOG) else (text, False)
    low_text, _, high_text = body.partition("..")
    low, high = parse_literal(low_text), parse_literal(high_text)
    if not all(_is_number(v) for v in (low, high)) or ":" in body:
        raise ParameterError(
            f"{entry}: a range is low..high or low..high:log with numbers", argument="space"
        )
    if isinstance(default, (bool, str, tuple, list)):
        raise ParameterError(
            f"{entry}: '{name}' takes values such as {default!r}, not a range of numbers; "
            f"list them: {name}=a,b,c", argument="space",
        )
    integers = isinstance(low, int) and isinstance(high, int)
    if isinstance(default, int) and not integers:
        raise ParameterError(f"{entry}: '{name}' is an integer, so the range needs integers",
                             argument="space")
    if low >= high:
        raise ParameterError(f"{entry} is an empty range: low must be below high",
                             argument="space")
    if log and low <= 0:
        raise ParameterError(f"{entry}: a log range must start above 0", argument="space")
    if integers and not isinstance(default, float):
        return Dimension(name, IntDistribution(low, high, log=log))
    return Dimension(name, FloatDistribution(float(low), float(high), log=log))


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def grid_size(space):
    """How many points `space` (a dict of Dimensions) has; None if it has a range of
    floats."""
    size = 1
    for dim in space.values():
        if isinstance(dim.distribution, FloatDistribution):
            return None
        size *= len(dim.grid())
    return size

