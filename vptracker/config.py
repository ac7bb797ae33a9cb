"""YAML experiment configs with ``key=value`` overrides (dotted keys reach nested mappings).

A config may list ``defaults: [other.yaml, ...]`` (paths relative to it) that it is merged over.
Override values are read as YAML, so ``lr=2e-5``, ``stages=[sft,grpo]`` and ``lora=false`` work.
This module holds the one parser for every ``key=value`` on the command line (stage overrides,
data-config overrides, ``--option``), so the same text always means the same value.
"""
from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

# The repository holds the shipped configs; a relative path in a config is relative to it.
REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO_ROOT / "configs"


def resolve_path(value: str | Path) -> Path:
    """Relative paths in configs are relative to the repository root, not the working directory."""
    path = Path(str(value)).expanduser()
    return path if path.is_absolute() else REPO_ROOT / path


class ConfigError(ValueError):
    """A setting that cannot be used; the message names the file or key and what was expected.

    The CLI prints it as one line and exits 2 (bad input), unlike internal errors (exit 1).
    """


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads "2e-5" (no dot) as a string; researchers write learning rates that way."""


_Loader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$"),
                              list("-+0123456789."))


def parse_value(raw: str, key: str = "value") -> Any:
    """One override value read as YAML (``2e-5`` is a float, ``[a,b]`` a list, empty text is "")."""
    if raw == "":
        return ""
    try:
        return yaml.load(raw, Loader=_Loader)
    except yaml.YAMLError as err:
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"override {key}={raw!r}: expected a YAML value ({problem})") from None


def parse_override(item: str) -> tuple[list[str], Any]:
    """``"a.b=2e-5"`` -> ``(["a", "b"], 2e-05)``."""
    if "=" not in item:
        raise ConfigError(f"override {item!r}: expected key=value")
    key, raw = item.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"override {item!r}: expected key=value with a non-empty (dotted) key")
    return parts, parse_value(raw, key.strip())


def parse_pairs(items: Iterable[str], what: str = "override") -> dict:
    """Flat ``key=value`` items (e.g. ``--option scale=norm1000``) as a dict, values parsed as above."""
    out = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"{what} {item!r}: expected key=value")
        key, raw = item.split("=", 1)
        out[key.strip()] = parse_value(raw, key.strip())
    return out


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


merge = _merge


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM from a Windows editor is harmless
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file does not exist") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: expected UTF-8 text (byte {err.start} is not)") from None
    try:
        data = yaml.load(text, Loader=_Loader) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{line}: expected valid YAML ({getattr(err, 'problem', err)})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    merged: dict = {}
    parents = data.pop("defaults", []) or []
    if not isinstance(parents, list):
        raise ConfigError(f"{path}: key 'defaults': expected a list of YAML files, got {parents!r}")
    for parent in parents:
        merged = _merge(merged, load_yaml(path.parent / str(parent)))
    return _merge(merged, data)


def apply_overrides(config: dict, overrides: Iterable[str | tuple[list[str], Any]]) -> dict:
    """``config`` with each override set in order; items are strings or :func:`parse_override` pairs."""
    out = copy.deepcopy(config)
    for item in overrides:
        parts, value = parse_override(item) if isinstance(item, str) else item
        node = out
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[parts[-1]] = copy.deepcopy(value)
    return out


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> dict:
    return apply_overrides(load_yaml(path), overrides)


class UnknownName(ConfigError, KeyError):
    """A registry lookup (task, dataset, metric, ...) for a name nobody registered; a
    :class:`ConfigError` for the CLI (exit 2) and a ``KeyError`` for code that looks names up."""

    __str__ = BaseException.__str__   # KeyError would quote the message


def nearest(name: str, known: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest known name, or an empty string."""
    import difflib

    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_name(kind: str, name: str, known: Iterable[str]) -> UnknownName:
    known = sorted(known)
    return UnknownName(f"unknown {kind} {name!r}{nearest(name, known)}; registered: {', '.join(known)}")
