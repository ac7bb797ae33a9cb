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
import math
import types
import typing
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
    """ms-swift's argument types for ``sft`` or ``grpo`` (imports ms-swift, a few seconds once)."""
    from swift.arguments import RLHFArguments, SftArguments

    cls = RLHFArguments if kind == "grpo" else SftArguments
    hints = typing.get_type_hints(cls)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls)}


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
