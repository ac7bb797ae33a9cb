"""Stage configs: load ``configs/stages/<name>.yaml``, apply a profile, a model preset and overrides.

Resolution order (later wins): the stage file and its ``defaults``, the profile
``configs/stages/_profile_<profile>.yaml`` (``gpu``, ``cpu``, ``tiny``), the model preset
``configs/models/<model_preset>.yaml`` (its ``swift:`` block over the stage's), then the
``key=value`` overrides. Shortcuts: ``model=DIR`` sets ``model.path``, ``lr=`` sets
``swift.learning_rate``, ``max_steps=``/``epochs=`` set ``swift.max_steps``/``num_train_epochs``.

The ``swift:`` block (and ``rollout:`` for GRPO) holds ms-swift's own argument names, checked
against ms-swift's argument dataclasses so a typo fails here, naming the file and the key.
"""
from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vptracker.config import _merge, apply_overrides, load_yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO_ROOT / "configs"
OMNIPT_STAGES = ("stage1_format_grpo", "stage2_midtrain", "stage3_sft", "stage4_iou_grpo")
KINDS = ("sft", "grpo", "midtrain")
TOP_KEYS = {"stage", "kind", "model_preset", "model", "profile", "data_root", "run_dir", "init", "merge_lora",
            "lr_decay_ratio", "plugins", "render_images", "dataset", "val_dataset", "global_batch_size", "swift", "rollout",
            "clip"}
MODEL_KEYS = {"path", "family", "model_type", "template", "box_scale", "target_modules"}
CLIP_KEYS = {"dataset", "train", "learning_rate", "warmup_ratio", "num_train_epochs", "max_steps",
             "per_device_train_batch_size", "gradient_accumulation_steps", "temperature", "max_caption_tokens",
             "max_pixels", "bf16", "deepspeed", "save_steps", "save_total_limit", "logging_steps",
             "dataloader_num_workers", "seed", "weight_decay", "report_to"}
SHORTCUTS = {"model": "model.path", "lr": "swift.learning_rate", "max_steps": "swift.max_steps",
             "epochs": "swift.num_train_epochs"}
# Keys the runner sets itself from the config's structure; a config that sets them would be ignored.
RUNNER_OWNED = {"model", "dataset", "val_dataset", "output_dir", "external_plugins", "resume_from_checkpoint",
                "add_version", "rlhf_type", "adapters", "model_type", "template"}


QWEN_FAMILIES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")
# Templates vptracker/swift_plugin.py wraps as vptracker_<template> to draw visual prompts and crops.
RENDER_TEMPLATES = QWEN_FAMILIES
RENDER_PLUGIN = "vptracker/swift_plugin.py"


class StageConfigError(ValueError):
    """A stage config that cannot run; the message names the file and the key."""


@dataclass
class StageConfig:
    name: str
    path: Path          # the stage YAML
    overrides: tuple[str, ...]
    data: dict

    def where(self, key: str) -> str:
        extra = f" (with overrides {list(self.overrides)})" if self.overrides else ""
        return f"{self.path}{extra}: key {key!r}"

    def error(self, key: str, message: str) -> StageConfigError:
        return StageConfigError(f"{self.where(key)}: {message}")

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    @property
    def kind(self) -> str:
        return self.data["kind"]

    @property
    def stage_dir(self) -> Path:
        return resolve_path(self.data["run_dir"]) / self.name

    @property
    def renders_images(self) -> bool:
        """Rows' visual prompts / crops are drawn at load time (``render_images``, ``auto`` by default)."""
        setting = self.data.get("render_images", "auto")
        return setting is True or (setting == "auto" and self.data["model"]["template"] in RENDER_TEMPLATES)

    @property
    def train_template(self) -> str:
        template = self.data["model"]["template"]
        return f"vptracker_{template}" if self.renders_images else template

    @property
    def start_model(self) -> str:
        """The weights this stage trains from: ``init`` (set by chaining) or the model's path."""
        return str(self.data.get("init") or self.data["model"]["path"])


def resolve_path(value: str | Path) -> Path:
    """Relative paths in configs are relative to the repository root, not the working directory."""
    path = Path(str(value)).expanduser()
    return path if path.is_absolute() else REPO_ROOT / path


def available_stages(config_dir: Path = CONFIG_DIR) -> list[str]:
    return sorted(p.stem for p in (config_dir / "stages").glob("*.yaml") if not p.stem.startswith("_"))


def stage_overrides(overrides: Iterable[str], stage: str, known: Sequence[str]) -> list[str]:
    """Overrides for ``stage``: plain ones, plus ``<stage>.key=value`` ones with the prefix removed."""
    out = []
    for item in overrides:
        head = item.split("=", 1)[0].split(".", 1)[0]
        if head in known:
            if head == stage and "." in item.split("=", 1)[0]:
                out.append(item[len(head) + 1:])
            continue
        out.append(item)
    return out


def _expand_shortcuts(overrides: Iterable[str]) -> list[str]:
    out = []
    for item in overrides:
        if "=" not in item:
            raise StageConfigError(f"override {item!r}: expected key=value")
        key, value = item.split("=", 1)
        out.append(f"{SHORTCUTS.get(key.strip(), key.strip())}={value}")
    return out


def _stage_file(stage: str | Path, config_dir: Path) -> Path:
    path = Path(stage)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise StageConfigError(f"stage config {path} does not exist")
        return path
    path = config_dir / "stages" / f"{stage}.yaml"
    if not path.is_file():
        raise StageConfigError(f"unknown stage {stage!r}: no {path}; available: {available_stages(config_dir)}")
    return path


def load_stage(stage: str | Path, overrides: Iterable[str] = (), config_dir: Path = CONFIG_DIR) -> StageConfig:
    """Resolves one stage config; raises :class:`StageConfigError` naming the file and key."""
    path = _stage_file(stage, config_dir)
    overrides = tuple(_expand_shortcuts(overrides))
    try:
        base = load_yaml(path)
        probe = apply_overrides(base, overrides)
    except ValueError as err:
        raise StageConfigError(str(err)) from None
    merged = base
    profile = probe.get("profile") or "gpu"
    profile_file = config_dir / "stages" / f"_profile_{profile}.yaml"
    if not profile_file.is_file():
        known = sorted(p.stem[len("_profile_"):] for p in (config_dir / "stages").glob("_profile_*.yaml"))
        raise StageConfigError(f"{path}: key 'profile': unknown profile {profile!r}; available: {known}")
    profile_data = load_yaml(profile_file)
    # A profile covers every kind of stage; its rollout/clip blocks reach only the stages that use them.
    if probe.get("kind") != "grpo":
        profile_data.pop("rollout", None)
    if probe.get("kind") != "midtrain":
        profile_data.pop("clip", None)
    merged = _merge(merged, profile_data)
    preset_name = probe.get("model_preset")
    if preset_name:
        preset_file = config_dir / "models" / f"{preset_name}.yaml"
        if not preset_file.is_file():
            known = sorted(p.stem for p in (config_dir / "models").glob("*.yaml"))
            raise StageConfigError(f"{path}: key 'model_preset': unknown preset {preset_name!r}; available: {known}")
        preset = load_yaml(preset_file)
        merged["swift"] = _merge(merged.get("swift") or {}, preset.pop("swift", None) or {})
        # A preset's rollout/clip settings (e.g. the 72B's vLLM tensor parallelism) reach the stages that use them.
        for block, kind in (("rollout", "grpo"), ("clip", "midtrain")):
            if (extra := preset.pop(block, None)) and probe.get("kind") == kind:
                merged[block] = _merge(merged.get(block) or {}, extra)
        merged["model"] = _merge(preset, merged.get("model") or {})
    cfg = StageConfig(path.stem, path, overrides, apply_overrides(merged, overrides))
    cfg.name = str(cfg.data.get("stage") or path.stem)
    validate(cfg)
    return cfg


@functools.cache
def swift_fields(kind: str) -> frozenset[str]:
    """ms-swift's argument names for ``sft`` or ``grpo`` (imports ms-swift, a few seconds once)."""
    from swift.arguments import RLHFArguments, SftArguments

    cls = RLHFArguments if kind == "grpo" else SftArguments
    return frozenset(f.name for f in dataclasses.fields(cls))


def validate(cfg: StageConfig) -> None:
    data = cfg.data
    for key in data:
        if key not in TOP_KEYS:
            raise cfg.error(key, f"unknown key; expected one of {sorted(TOP_KEYS)}")
    if data.get("kind") not in KINDS:
        raise cfg.error("kind", f"expected one of {KINDS}, got {data.get('kind')!r}")
    model = data.get("model")
    if not isinstance(model, dict):
        raise cfg.error("model", "expected a mapping (set model_preset, or model.path/model_type/template)")
    for key in model:
        if key not in MODEL_KEYS:
            raise cfg.error(f"model.{key}", f"unknown key; expected one of {sorted(MODEL_KEYS)}")
    for key in ("path", "model_type", "template"):
        if not model.get(key):
            raise cfg.error(f"model.{key}", "missing: ms-swift needs the model, its model_type and its template")
    for key in ("swift", "rollout", "clip"):
        if not isinstance(data.get(key) or {}, dict):
            raise cfg.error(key, f"expected a mapping, got {type(data.get(key)).__name__}")
    if not data.get("run_dir"):
        raise cfg.error("run_dir", "missing: where checkpoints and manifests go")
    datasets = data.get("dataset")
    if not isinstance(datasets, list) or not datasets:
        raise cfg.error("dataset", "expected a non-empty list of JSONL files, folders or globs")
    swift_kind = "grpo" if cfg.kind == "grpo" else "sft"
    known = swift_fields(swift_kind)
    for key in data.get("swift") or {}:
        if key in RUNNER_OWNED:
            raise cfg.error(f"swift.{key}", "set by the stage runner; use the top-level config keys instead")
        if key not in known:
            raise cfg.error(f"swift.{key}", f"not an ms-swift {'rlhf' if swift_kind == 'grpo' else 'sft'} argument")
    if cfg.kind == "grpo":
        rollout = data.get("rollout") or {}
        for key in rollout:
            if key not in known:
                raise cfg.error(f"rollout.{key}", "not an ms-swift rlhf (GRPO) argument")
        if not rollout.get("reward_funcs"):
            raise cfg.error("rollout.reward_funcs", "a GRPO stage needs at least one reward function")
    elif data.get("rollout"):
        raise cfg.error("rollout", f"only GRPO stages take rollout arguments (kind is {cfg.kind!r})")
    if cfg.kind == "midtrain":
        clip = data.get("clip") or {}
        for key in clip:
            if key not in CLIP_KEYS:
                raise cfg.error(f"clip.{key}", f"unknown key; expected one of {sorted(CLIP_KEYS)}")
        if not clip.get("dataset"):
            raise cfg.error("clip.dataset", "the CLIP-style phase needs image-caption data")
        if model.get("family") not in QWEN_FAMILIES:  # the <CLS> trainer reads Qwen-VL backbones
            raise cfg.error("model.family", f"the CLIP-style phase supports {QWEN_FAMILIES}, not "
                                            f"{model.get('family')!r}")
    if data.get("render_images", "auto") not in ("auto", True, False):
        raise cfg.error("render_images", f"expected auto, true or false, got {data.get('render_images')!r}")
    if data.get("render_images") is True and model["template"] not in RENDER_TEMPLATES:
        raise cfg.error("render_images", f"vptracker/swift_plugin.py renders for templates {RENDER_TEMPLATES}, "
                                         f"not {model['template']!r}; set render_images=auto or false")
    gbs = data.get("global_batch_size")
    if gbs is not None and (not isinstance(gbs, int) or gbs <= 0):
        raise cfg.error("global_batch_size", f"expected a positive integer, got {gbs!r}")


def fill_placeholders(value: str, cfg: StageConfig, key: str) -> str:
    """Fills ``{data_root}`` in dataset paths."""
    try:
        return str(value).format(data_root=cfg.data.get("data_root") or "")
    except (KeyError, IndexError, ValueError) as err:
        raise cfg.error(key, f"bad placeholder in {value!r} ({err}); only {{data_root}} is known") from None
