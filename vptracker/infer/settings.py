"""The typed inference config: every key `vptracker infer` reads (``configs/infer/base.yaml``), its
type and its choices, checked once before anything is loaded.

An unknown key, a value of the wrong type or outside its choices is a :class:`ConfigError` with one
line per problem naming the key, where it was set (the YAML file or the command line) and, for an
unknown key, the nearest known one; the CLI prints them and exits 2. ``engine_kwargs`` and
``dataset_options`` are passed on as they are (swift's engine and the dataset reader check them).
"""
from __future__ import annotations

import typing
from collections.abc import Callable
from dataclasses import fields

from vptracker.boxes import GRAMMARS, SCALES
from vptracker.config import ConfigError, nearest
from vptracker.datasets import available
from vptracker.infer.common import TaskOptions
from vptracker.models.families import FAMILIES
from vptracker.tasks import trackable_tasks
from vptracker.tasks.options import convert_value, describe_type

# key -> (type, check or None, what the check expects); None in a value always means "the default"
_POSITIVE = (lambda v: v >= 1, ">= 1")
SETTINGS: dict[str, tuple[typing.Any, tuple[Callable, str] | None]] = {
    "task": (str, None), "model": (str | None, None), "adapter": (str | None, None),
    "family": (str | None, None), "backend": (str, None), "dataset": (str | None, None),
    "root": (str | None, None), "split": (str | None, None), "dataset_options": (dict, None),
    "sequences": (list[str] | None, None), "limit": (int | None, _POSITIVE),
    "max_frames": (int | None, _POSITIVE), "out": (str | None, None), "shard": (str | None, None),
    "concurrency": (int, _POSITIVE), "loop": (str, None), "max_batch_size": (int | None, _POSITIVE),
    "max_tokens": (int, _POSITIVE), "temperature": (float, (lambda v: v >= 0, ">= 0")),
    "top_p": (float, (lambda v: 0 < v <= 1, "in (0, 1]")), "top_k": (int, (lambda v: v >= 0, ">= 0 (0: off)")),
    "repetition_penalty": (float, (lambda v: v > 0, "> 0")), "torch_dtype": (str | None, None),
    "engine_kwargs": (dict, None), "trust_remote_code": (bool | None, None), "progress": (bool, None),
    "cpu_threads": (int | None, _POSITIVE), "options": (dict, None),
}
# options.* keys that are not TaskOptions fields: resolved by the command (max_visual_tokens -> max_pixels)
CONFIG_ONLY_OPTIONS = {"max_visual_tokens": int}
TEXT_KEYS = ("model", "adapter", "root", "split", "out", "shard", "torch_dtype")   # paths may look like numbers


def choices() -> dict[str, tuple]:
    """The closed sets some keys choose from (read from the registries that define them)."""
    return {"task": tuple(trackable_tasks()), "dataset": tuple(available()), "family": tuple(sorted(FAMILIES)),
            "backend": ("transformers", "vllm"), "loop": ("batched", "async"),
            "options.box_scale": ("family", *SCALES), "options.grammar": tuple(GRAMMARS),
            "options.family": tuple(sorted(FAMILIES))}


def option_types() -> dict[str, typing.Any]:
    hints = typing.get_type_hints(TaskOptions)
    return {**{f.name: hints[f.name] for f in fields(TaskOptions)}, **CONFIG_ONLY_OPTIONS}


def check_settings(cfg: dict, source_of: Callable[[str], str]) -> dict:
    """``cfg`` with every value converted to its type; all problems at once as one :class:`ConfigError`
    (one line each). ``source_of(dotted_key)`` says where a key was set."""
    problems: list[str] = []
    out = dict(cfg)
    closed = choices()

    def check(key: str, value, kind, rule) -> typing.Any:
        if value is None:
            return None
        if key.split(".")[-1] in TEXT_KEYS and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if kind is dict or typing.get_origin(kind) is dict:
            if not isinstance(value, dict):
                problems.append(f"{source_of(key)}: {key}={value!r}: expected a mapping")
            return value
        if key == "sequences" and isinstance(value, (str, int)):
            value = [value]
        if key == "sequences" and isinstance(value, list):
            value = [str(v) for v in value]
        try:
            value = convert_value(value, kind)
        except (TypeError, ValueError):
            problems.append(f"{source_of(key)}: {key}={value!r}: expected {describe_type(kind)}")
            return value
        if key in closed and value not in closed[key]:
            problems.append(f"{source_of(key)}: {key}={value!r}: expected one of {', '.join(closed[key])}"
                            f"{nearest(value, closed[key])}")
        elif rule is not None and value is not None and not rule[0](value):
            problems.append(f"{source_of(key)}: {key}={value!r}: expected {rule[1]}")
        return value

    for key, value in cfg.items():
        if key not in SETTINGS:
            problems.append(f"{source_of(key)}: unknown key {key!r}{nearest(key, SETTINGS)}; "
                            "known: see configs/infer/base.yaml")
            continue
        kind, rule = SETTINGS[key]
        out[key] = check(key, value, kind, rule)
    if isinstance(out.get("options"), dict):
        types = option_types()
        options = {}
        for key, value in out["options"].items():
            if key not in types:
                problems.append(f"{source_of('options.' + key)}: unknown task option {key!r}"
                                f"{nearest(key, types)}; known: {', '.join(sorted(types))}")
                continue
            options[key] = check(f"options.{key}", value, types[key], _OPTION_RULES.get(key))
        out["options"] = options
    if problems:
        raise ConfigError("\n".join(problems))
    return out


_OPTION_RULES = {
    "frames_per_sample": (lambda v: v >= 2, ">= 2 (one prior frame and one new one)"),
    "caption_frames": _POSITIVE, "max_objects": _POSITIVE, "max_answer_tokens": _POSITIVE,
    "max_visual_tokens": _POSITIVE, "min_pixels": _POSITIVE, "max_pixels": _POSITIVE,
    "line_width": _POSITIVE, "vp_scale": (lambda v: v > 0, "> 0"), "template_scale": (lambda v: v > 0, "> 0"),
    "match_iou": (lambda v: 0 <= v <= 1, "between 0 and 1"),
}
