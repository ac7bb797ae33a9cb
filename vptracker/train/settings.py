"""Value checks for stage configs: every setting's type and range, before anything runs.

ms-swift's own argument annotations give the types of the ``swift:`` and ``rollout:`` blocks (so a
new swift argument is checked without a table here); our keys and the CLIP phase's keys have their
types below. :func:`check_value` returns what was expected, or None when the value is fine.
Without these checks ``lr=abc`` reached swift as text and was silently replaced by its default.
"""
from __future__ import annotations

import dataclasses
import enum
import functools
import importlib.metadata
import importlib.util
import json
import math
import os
import sys
import tempfile
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

# Our own keys (the ``swift:``/``rollout:`` types come from ms-swift's dataclasses).
TOP_TYPES: dict[str, Any] = {
    "stage": str, "kind": str, "model_preset": str, "profile": str, "data_root": str, "run_dir": str,
    "init": str | None, "merge_lora": bool, "lr_decay_ratio": float, "plugins": list[str] | None,
    "render_images": bool | Literal["auto"], "dataset": list[str], "val_dataset": list[str] | None,
    "global_batch_size": int | None, "trust_remote_code": bool, "select": dict | None,
}
MODEL_TYPES: dict[str, Any] = {"path": str, "family": str, "model_type": str, "template": str,
                               "target_modules": str | list[str]}
# The CLIP-style phase (vptracker/train/clip.py) reads these into transformers' TrainingArguments.
CLIP_TYPES: dict[str, Any] = {
    "dataset": list[str], "train": list[Literal["vision", "aligner"]], "learning_rate": float,
    "warmup_ratio": float, "num_train_epochs": float, "max_steps": int, "per_device_train_batch_size": int,
    "gradient_accumulation_steps": int, "temperature": float, "max_caption_tokens": int, "max_pixels": int,
    "bf16": bool, "deepspeed": str | None, "save_steps": int, "save_total_limit": int | None,
    "logging_steps": int, "dataloader_num_workers": int, "seed": int, "weight_decay": float,
    "report_to": str | list[str], "lr_scheduler_type": Literal["linear", "cosine", "constant_with_warmup",
                                                                "warmup_stable_decay"],
    "lr_decay_ratio": float,
}

# Ranges by argument name, wherever the name appears (swift:, rollout:, clip: or the top level).
RANGES: dict[str, tuple[typing.Callable[[float], bool], str]] = {
    name: rule for names, rule in [
        (("learning_rate", "num_train_epochs", "temperature", "save_steps", "logging_steps", "eval_steps",
          "lora_alpha"), (lambda v: v > 0, "> 0")),
        (("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps", "lora_rank",
          "max_length", "max_pixels", "max_completion_length", "max_caption_tokens", "dataset_num_proc",
          "save_total_limit", "global_batch_size"), (lambda v: v >= 1, ">= 1")),
        (("dataloader_num_workers", "weight_decay", "beta", "seed"), (lambda v: v >= 0, ">= 0")),
        (("warmup_ratio", "lr_decay_ratio"), (lambda v: 0 <= v <= 1, "between 0 and 1")),
        (("lora_dropout",), (lambda v: 0 <= v < 1, "in [0, 1)")),
        (("vllm_gpu_memory_utilization", "top_p"), (lambda v: 0 < v <= 1, "in (0, 1]")),
        (("num_generations",), (lambda v: v >= 2, ">= 2 (GRPO compares completions within a group)")),
        (("max_steps",), (lambda v: v == -1 or v >= 1, "-1 (use epochs) or >= 1")),
    ] for name in names
}


@functools.cache
def swift_types(kind: str) -> dict[str, Any]:
    """ms-swift's argument types for ``sft`` or ``grpo``.

    Read from a table written next to the environment's other vptracker files the first time
    (``<venv>/share/vptracker/``, one file per ms-swift version and argument sources): importing
    ``swift.arguments`` takes ~7 s, which every ``vptracker train`` process paid to check its keys.
    Each type is kept as its shape (union, literal, list, enum name, ...), all that the checks and
    their messages use (``tests/test_train_config.py`` compares both ways on every argument)."""
    return {name: _from_shape(shape) for name, shape in _swift_table()[kind].items()}


@functools.cache   # one read per process, for both kinds
def _swift_table() -> dict[str, dict[str, Any]]:
    key = _swift_key()
    path = Path(sys.prefix) / "share" / "vptracker" / f"swift_arguments_{key}.json"
    if key:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            pass
    table = {kind: {name: _shape(hint) for name, hint in _read_swift(kind).items()} for kind in ("sft", "grpo")}
    if key:
        try:   # written aside and moved in: parallel processes never read half a file
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as tmp:
                json.dump(table, tmp)
            os.replace(tmp.name, path)
        except OSError:
            pass   # a read-only environment checks from the import each time
    return table


def _swift_key() -> str | None:
    """ms-swift's version and its argument sources' last change, without importing it; None if unknown."""
    try:
        version = importlib.metadata.version("ms-swift")
        spec = importlib.util.find_spec("swift")
    except (importlib.metadata.PackageNotFoundError, ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    sources = Path(next(iter(spec.submodule_search_locations))) / "arguments"
    changed = max((f.stat().st_mtime_ns for f in sources.rglob("*.py")), default=0)
    return f"{version}_{changed}_{SHAPES_VERSION}"


def _read_swift(kind: str) -> dict[str, Any]:
    from swift.arguments import RLHFArguments, SftArguments  # ~7 s: once per ms-swift install

    cls = RLHFArguments if kind == "grpo" else SftArguments
    hints = typing.get_type_hints(cls)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls)}


SHAPES_VERSION = 1   # raise when _shape changes: older tables are then rewritten
_SIMPLE = {bool: "bool", int: "int", float: "float", str: "str", dict: "dict", type(None): "none"}
_SIMPLE_TYPES = {name: hint for hint, name in _SIMPLE.items()}


def _shape(hint: Any) -> list:
    """A type as JSON: ``["union", [...]]``, ``["literal", [...]]``, ``["list", item or None]``,
    ``["enum", name]``, ``["other", name]`` or a simple name (``["int"]``)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return ["any"]
    if origin in (Union, types.UnionType):
        return ["union", [_shape(a) for a in args]]
    if origin is Literal and all(isinstance(a, (str, int, float, bool, type(None))) for a in args):
        return ["literal", list(args)]
    if origin in (list, tuple):
        return ["list", _shape(args[0]) if args else None]
    if origin is dict:
        return ["dict"]
    if hint in _SIMPLE:
        return [_SIMPLE[hint]]
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return ["enum", hint.__name__]
    return ["other", getattr(hint, "__name__", str(hint))]


@functools.cache
def _named(kind: str, name: str) -> type:
    """A stand-in class of that name: an enum (checked as text) or another class (checked as text)."""
    return enum.Enum(name, []) if kind == "enum" else type(name, (), {})


def _from_shape(shape: list) -> Any:
    tag, *rest = shape
    if tag == "union":
        return Union[tuple(_from_shape(s) for s in rest[0])]  # noqa: UP007  (a union of a runtime tuple)
    if tag == "literal":
        return Literal[tuple(rest[0])]
    if tag == "list":
        return list[_from_shape(rest[0])] if rest[0] is not None else list
    if tag in ("enum", "other"):
        return _named(tag, rest[0])
    if tag == "any":
        return Any
    return _SIMPLE_TYPES[tag]


def describe(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        named = [describe(a) for a in args if a is not type(None)]
        return " or ".join(named) + (" or null" if type(None) in args else "")
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (list, tuple):
        return f"a list of {describe(args[0])}" if args else "a list"
    if hint is dict or origin is dict:
        return "a mapping"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "text"}
    return names.get(hint, getattr(hint, "__name__", str(hint)))


def _matches(value: Any, hint: Any) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin in (Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if origin is Literal:
        return any(value == a and type(value) is type(a) for a in args)
    if origin in (list, tuple):
        items = value if isinstance(value, list) else [value]  # swift's lists take one value too (nargs)
        return all(_matches(v, args[0]) for v in items) if args else isinstance(value, list)
    if hint is dict or origin is dict:
        return isinstance(value, dict)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if hint is str or (isinstance(hint, type) and issubclass(hint, enum.Enum)):
        return isinstance(value, (str, int, float)) and not isinstance(value, bool)
    return not isinstance(value, (list, dict))  # other classes (paths, configs) arrive as text


def check_value(name: str, value: Any, hint: Any) -> str | None:
    """What ``value`` should have been, or None; ``null`` always passes (it means "the default")."""
    if value is None:
        return None
    if not _matches(value, hint):
        return f"expected {describe(hint)}, got {value!r}"
    rule = RANGES.get(name)
    numbers = value if isinstance(value, list) else [value]
    if rule and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers):
        check, expected = rule
        bad = [v for v in numbers if not check(v)]
        if bad:
            return f"expected {expected}, got {bad[0]!r}"
    return None
