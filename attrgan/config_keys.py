"""Config fields that carry their own rules: a field's type (its annotation), its range or
choices, whether it says how a run trains (a recipe key) or only how long, where and how
visibly (a run-time key, free on ``--resume``), which model kinds read it, and a line of
documentation. Coercion, validation, the keys a model kind never reads, the resume rules and
the ``--set`` reference (``attrgan config-keys``) are all derived from them here."""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from typing import Any, Iterator

from attrgan.runtime.errors import UserError

MODEL_KINDS = ("vaegan", "vae", "gan")


class ConfigError(UserError):
    """An unknown key, a wrong type or an invalid value in a config or override."""


@dataclass(frozen=True)
class Rule:
    """What a config field allows and means (kept in the field's metadata)."""

    doc: str
    choices: tuple | None = None
    low: float | None = None
    high: float | None = None
    open_low: bool = False  # low itself is refused
    open_high: bool = False
    runtime: bool = False  # how long, where or how visibly: free on --resume, outside the recipe
    recipe: bool = True  # part of the recipe fingerprint (attrgan.config.recipe_of)
    read_by: tuple[str, ...] = MODEL_KINDS  # the model kinds whose training reads it
    empty_list: bool = False  # a list of choices may be empty (the feature off)

    def bounds(self) -> str:
        """The allowed range in words: ``>= 1``, ``in (0, 1)``, ``one of a, b``."""
        if self.choices is not None:
            return "one of " + ", ".join(str(c).lower() if isinstance(c, bool) else str(c) for c in self.choices)
        if self.low is not None and self.high is not None:
            return f"in {'(' if self.open_low else '['}{self.low:g}, {self.high:g}{')' if self.open_high else ']'}"
        if self.low is not None:
            return f"{'>' if self.open_low else '>='} {self.low:g}"
        if self.high is not None:
            return f"{'<' if self.open_high else '<='} {self.high:g}"
        return ""


def setting(default: Any = dataclasses.MISSING, *, factory: Any = dataclasses.MISSING, doc: str, **rule: Any):
    """A config field with its :class:`Rule` (a list default goes in ``factory``)."""
    return dataclasses.field(default=default, default_factory=factory, metadata={"rule": Rule(doc=doc, **rule)})


@dataclass(frozen=True)
class Key:
    """One dotted config key: ``section.name``, its type annotation and its rule."""

    path: str
    hint: Any
    rule: Rule
    default: Any


def keys(config_class: type) -> Iterator[Key]:
    """Every leaf key of a config made of dataclass sections, in declaration order."""
    for section in dataclasses.fields(config_class):
        section_class = typing.get_type_hints(config_class)[section.name]
        hints = typing.get_type_hints(section_class)
        for field in dataclasses.fields(section_class):
            default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
            yield Key(f"{section.name}.{field.name}", hints[field.name], field.metadata["rule"], default)


def coerce(value: Any, hint: Any, path: str) -> Any:
    """``value`` as the annotation ``hint`` allows (an int where a float goes, a float that YAML
    1.1 read as a string such as "1e-4"), or a ConfigError naming ``path``."""
    kinds = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    if value is None:
        if type(None) in kinds:
            return None
        raise ConfigError(f"config key {path!r} cannot be empty")
    for kind in kinds:
        ok, converted = _as(value, kind)
        if ok:
            return converted
    raise ConfigError(f"config key {path!r} must be {type_name(hint)}, got {value!r}")


def _as(value: Any, kind: Any) -> tuple[bool, Any]:
    if typing.get_origin(kind) is list:
        item = typing.get_args(kind)[0]
        converted = [_as(v, item) for v in value] if isinstance(value, list) else None
        return (True,
                [v for _,
                 v in converted]) if converted is not None and all(ok for ok, _ in converted) else (False, None)
    if kind is float and isinstance(value, str):
        try:
            return True, float(value)
        except ValueError:
            return False, None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return True, float(value)
    if kind is int and isinstance(value, bool):
        return False, None
    return (isinstance(value, kind), value) if isinstance(kind, type) else (False, None)


def type_name(hint: Any) -> str:
    """``int``, ``float or empty``, ``list of int``: an annotation in words."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        names = [type_name(k) for k in typing.get_args(hint) if k is not type(None)]
        return " or ".join(names) + (" or empty" if type(None) in typing.get_args(hint) else "")
    if typing.get_origin(hint) is list:
        return f"list of {type_name(typing.get_args(hint)[0])}"
    return getattr(hint, "__name__", str(hint))


def check(key: Key, value: Any) -> None:
    """Refuse ``value`` outside ``key``'s rule: not finite, out of range, not a choice, an
    empty list or one with an item out of range or not a choice."""
    rule = key.rule
    if value is None:
        return
    if isinstance(value, list):
        if _list_item(key.hint) is int and not (value and all(_within(rule, item) for item in value)):
            raise ConfigError(f"{key.path} must be a non-empty list of integers {rule.bounds()}, got {value!r}")
        if rule.choices is not None and ((not value and not rule.empty_list) or set(value) - set(rule.choices)
                                         or len(set(value)) != len(value)):
            size = "a list" if rule.empty_list else "a non-empty list"
            raise ConfigError(f"{key.path} must be {size} of {' and/or '.join(rule.choices)}, each once, got {value!r}")
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{key.path} must be a finite number, got {value!r}")
    if rule.choices is not None and value not in rule.choices:
        raise ConfigError(f"{key.path} must be {rule.bounds()}, got {value!r}")
    if rule.choices is None and not isinstance(value, (bool, str)) and not _within(rule, value):
        raise ConfigError(f"{key.path} must be {rule.bounds()}, got {value!r}")


def _list_item(hint: Any) -> Any:
    """The item type of the list in ``hint`` (``list[int] | None`` -> int), else None."""
    kinds = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    return next((typing.get_args(kind)[0] for kind in kinds if typing.get_origin(kind) is list), None)


def _within(rule: Rule, value: float) -> bool:
    low_ok = rule.low is None or (value > rule.low if rule.open_low else value >= rule.low)
    high_ok = rule.high is None or (value < rule.high if rule.open_high else value <= rule.high)
    return low_ok and high_ok


def reference(config_class: type, kind: str | None = None) -> list[dict[str, str]]:
    """The ``--set`` reference: one row per key (of the keys ``kind`` reads, or all), with its
    type, default, allowed values, whether it is a run-time key and its documentation."""
    rows = []
    for key in keys(config_class):
        if kind is not None and kind not in key.rule.read_by:
            continue
        reads = "all" if key.rule.read_by == MODEL_KINDS else ", ".join(key.rule.read_by)
        rows.append({"key": key.path, "type": type_name(key.hint), "default": _shown(key.default),
                     "allowed": key.rule.bounds(), "run-time": "yes" if key.rule.runtime else "",
                     "read by": reads, "doc": key.rule.doc})
    return rows


def _shown(value: Any) -> str:
    if value is None:
        return "(empty)"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value).replace("'", "")


def reference_markdown(config_class: type, kind: str | None = None) -> str:
    """:func:`reference` as a Markdown table (``attrgan config-keys``, docs/config.md)."""
    rows = reference(config_class, kind)
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(f"`{value}`" if column in ("key", "default") and value else value.replace("|", "\\|")
                                for column, value in row.items()) + " |" for row in rows]
    return "\n".join(lines) + "\n"
