"""Typed task options: each task declares its options as a dataclass; values are converted and
checked once, when the task is made, so that the builders use them as they are.

A value may arrive as YAML gives it or as a command-line string (``--option frames=8``,
``inbbox_ratio=9e-1``): an ``int`` field takes an integer or its text (a float only when whole), a
``float`` field a number or its text, a ``bool`` field ``true``/``false``, a ``list[int]`` field a
list of such integers; ``X | None`` also takes ``None``. Anything else is an error naming the task,
the option, the value and what was expected.
"""
from __future__ import annotations

import math
import types
import typing
from dataclasses import MISSING, dataclass, fields


@dataclass(frozen=True)
class NoOptions:
    """A task without options."""


def defaults_of(options_type: type) -> dict[str, typing.Any]:
    """``{option: default}`` of an options dataclass, in declaration order."""
    out = {}
    for f in fields(options_type):
        out[f.name] = f.default_factory() if f.default is MISSING else f.default
    return out


def make_options(options_type: type, values: dict, task: str):
    """An instance of ``options_type`` from ``values`` (missing keys take their defaults), each value
    converted to its field's type."""
    hints = typing.get_type_hints(options_type)
    defaults = defaults_of(options_type)
    converted = {}
    for name, default in defaults.items():
        value = values.get(name, default)
        try:
            converted[name] = convert_value(value, hints[name])
        except (TypeError, ValueError):
            raise ValueError(f"task {task}: option {name}={value!r}, expected {describe_type(hints[name])}") from None
    return options_type(**converted)


def convert_value(value, kind):
    """``value`` as ``kind`` (int, float, bool, str, list[...], X | None); TypeError or ValueError otherwise."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(kind)
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return convert_value(value, inner)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise TypeError(value)
        (inner,) = typing.get_args(kind)
        return [convert_value(v, inner) for v in value]
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise TypeError(value)
    if kind is int:
        if isinstance(value, bool):
            raise TypeError(value)
        if isinstance(value, str):
            value = float(value) if any(c in value for c in ".eE") else int(value)
        if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
            raise ValueError(value)
        if not isinstance(value, (int, float)):
            raise TypeError(value)
        return int(value)
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise TypeError(value)
        out = float(value)
        if not math.isfinite(out):
            raise ValueError(value)
        return out
    if kind is str:
        if not isinstance(value, str):
            raise TypeError(value)
        return value
    raise TypeError(f"unsupported option type {kind}")


def describe_type(kind) -> str:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        inner = next(a for a in typing.get_args(kind) if a is not type(None))
        return f"{describe_type(inner)} or null"
    if origin is list:
        return f"a list of {describe_type(typing.get_args(kind)[0])} values"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(kind, str(kind))
