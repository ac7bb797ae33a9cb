"""YAML experiment configs with ``key=value`` overrides (dotted keys reach nested mappings).

A config may list ``defaults: [other.yaml, ...]`` (paths relative to it) that it is merged over.
Override values are read as YAML, so ``lr=2e-5``, ``stages=[sft,grpo]`` and ``lora=false`` work.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Iterable

import yaml



class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads "2e-5" (no dot) as a string; researchers write learning rates that way."""


_Loader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$"),
                              list("-+0123456789."))


def _scalar(raw: str) -> Any:
    return yaml.load(raw, Loader=_Loader) if raw != "" else ""


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    try:
        data = yaml.load(path.read_text(), Loader=_Loader) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ValueError(f"{path}{line}: expected valid YAML ({getattr(err, 'problem', err)})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    merged: dict = {}
    for parent in data.pop("defaults", []) or []:
        merged = _merge(merged, load_yaml(path.parent / parent))
    return _merge(merged, data)


def apply_overrides(config: dict, overrides: Iterable[str]) -> dict:
    out = copy.deepcopy(config)
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r}: expected key=value")
        key, raw = item.split("=", 1)
        value = _scalar(raw)
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[parts[-1]] = value
    return out


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> dict:
    return apply_overrides(load_yaml(path), overrides)
