"""Stage configs: load ``configs/stages/<name>.yaml``, apply a model preset, a profile and overrides.

Resolution order (later wins): the stage file and its ``defaults``, the model preset
``configs/models/<model_preset>.yaml`` (its ``swift:`` block over the stage's), the profile
``configs/stages/_profile_<profile>.yaml`` (``gpu``, ``cpu``, ``tiny``), then the ``key=value``
overrides. Shortcuts: ``model=DIR`` sets ``model.path``, ``lr=`` sets
``swift.learning_rate``, ``max_steps=``/``epochs=`` set ``swift.max_steps``/``num_train_epochs``.

The ``swift:`` block (and ``rollout:`` for GRPO) holds ms-swift's own argument names, checked
against ms-swift's argument dataclasses so a typo or a wrong type fails here, naming the file and
the key (:mod:`vptracker.train.settings`); every problem is reported at once, one line each.
The model a stage starts from is checked before anything loads it (:func:`check_model`): a folder
whose configs name custom code is refused unless ``trust_remote_code: true`` (``--trust-remote-code``).
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vptracker.config import (  # noqa: F401  (CONFIG_DIR, REPO_ROOT, resolve_path: imported from here too)
    CONFIG_DIR,
    REPO_ROOT,
    ConfigError,
    _merge,
    apply_overrides,
    load_yaml,
    parse_override,
    resolve_path,
)
from vptracker.models.families import FAMILIES, family_names, family_of_model_type
from vptracker.models.folder import ModelDirError, check_model_dir
from vptracker.train.settings import CLIP_TYPES, MODEL_TYPES, TOP_TYPES, check_value, swift_types

OMNIPT_STAGES = ("stage1_format_grpo", "stage2_midtrain", "stage3_sft", "stage4_iou_grpo")
KINDS = ("sft", "grpo", "midtrain")
TOP_KEYS = set(TOP_TYPES) | {"model", "swift", "rollout", "clip"}
MODEL_KEYS = set(MODEL_TYPES)
CLIP_KEYS = set(CLIP_TYPES)
# DeepSpeed configs ms-swift ships under these names (anything else must be a JSON file).
SWIFT_DEEPSPEED = {"zero0", "zero1", "zero2", "zero3", "zero2_offload", "zero3_offload"}
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
# the stages' short names (s1 ... s4), in run folders and tables of the demo and the sweeps
SHORT = {"stage1_format_grpo": "s1", "stage2_midtrain": "s2", "stage3_sft": "s3", "stage4_iou_grpo": "s4"}
SHORTCUTS = {"model": "model.path", "lr": "swift.learning_rate", "max_steps": "swift.max_steps",
             "epochs": "swift.num_train_epochs"}
# Keys the runner sets itself from the config's structure; a config that sets them would be ignored.
RUNNER_OWNED = {"model", "dataset", "val_dataset", "output_dir", "external_plugins", "resume_from_checkpoint",
                "add_version", "rlhf_type", "adapters", "model_type", "template"}


RENDER_PLUGIN = "vptracker/models/swift_plugin.py"
# Row columns only that plugin applies (swift's own templates ignore them): the drawing, crops and pixel cap.
RENDER_COLUMNS = ("visual_prompt", "crops", "max_pixels")


class StageConfigError(ConfigError):
    """A stage config that cannot run; the message names the file and the key."""


@dataclass
class StageConfig:
    name: str
    path: Path          # the stage YAML
    overrides: tuple[str, ...]
    data: dict
    notes: list[str] = field(default_factory=list)   # settings derived while resolving, said aloud by the runner

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
        return setting is True or (setting == "auto" and self.data["model"]["template"] in render_templates())

    @property
    def train_template(self) -> str:
        template = self.data["model"]["template"]
        return f"vptracker_{template}" if self.renders_images else template

    @property
    def start_model(self) -> str:
        """The weights this stage trains from: ``init`` (set by chaining) or the model's path."""
        return str(self.data.get("init") or self.data["model"]["path"])


def render_templates() -> tuple[str, ...]:
    """Templates vptracker/models/swift_plugin.py wraps as vptracker_<template> to draw visual prompts and crops."""
    return tuple(t for f in FAMILIES.values() if f.render_plugin for t in f.templates)


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


def _top_value(base: dict, parsed: list[tuple[list[str], Any]], key: str) -> Any:
    """A top-level value as the overrides will leave it (the last override of ``key`` wins)."""
    value = base.get(key)
    for parts, item in parsed:
        if parts == [key]:
            value = item
    return value


def _named_file(path: Path, key: str, name: Any, folder: Path, pattern: str) -> Path:
    if not isinstance(name, str) or not name:
        raise StageConfigError(f"{path}: key {key!r}: expected a name, got {name!r}")
    found = folder / pattern.format(name)
    if not found.is_file():
        known = sorted(p.stem[len(pattern.split("{}")[0]):] for p in folder.glob(pattern.format("*")))
        raise StageConfigError(f"{path}: key {key!r}: unknown {key.replace('_', ' ')} {name!r}; available: {known}")
    return found


def load_stage(stage: str | Path, overrides: Iterable[str] = (), config_dir: Path = CONFIG_DIR) -> StageConfig:
    """Resolves one stage config; raises :class:`StageConfigError` naming the file and key.

    Order (later wins): the stage file, the model preset, the profile, the overrides. The profile
    comes after the preset because it says what this machine can do (``profile=cpu`` turns off the
    72B preset's ZeRO-3 and bf16); the overrides are parsed once and applied once, last.
    """
    path = _stage_file(stage, config_dir)
    overrides = tuple(_expand_shortcuts(overrides))
    try:
        base = load_yaml(path)
        parsed = [parse_override(item) for item in overrides]
    except ValueError as err:
        raise StageConfigError(f"{path}: {err}") from None
    merged = base
    kind = _top_value(base, parsed, "kind")
    preset_name = _top_value(base, parsed, "model_preset")
    if preset_name:
        preset = load_yaml(_named_file(path, "model_preset", preset_name, config_dir / "models", "{}.yaml"))
        merged = dict(merged)
        merged["swift"] = _merge(merged.get("swift") or {}, preset.pop("swift", None) or {})
        # A preset's rollout/clip settings (e.g. the 72B's vLLM tensor parallelism) reach the stages that use them.
        for block, block_kind in (("rollout", "grpo"), ("clip", "midtrain")):
            if (extra := preset.pop(block, None)) and kind == block_kind:
                merged[block] = _merge(merged.get(block) or {}, extra)
        merged["model"] = _merge(preset, merged.get("model") or {})
    profile = _top_value(base, parsed, "profile") or "gpu"
    profile_data = load_yaml(_named_file(path, "profile", profile, config_dir / "stages", "_profile_{}.yaml"))
    # A profile covers every kind of stage; its rollout/clip blocks reach only the stages that use them.
    if kind != "grpo":
        profile_data.pop("rollout", None)
    if kind != "midtrain":
        profile_data.pop("clip", None)
    merged = _merge(merged, profile_data)
    data = apply_overrides(merged, parsed)
    model = data.get("model")
    if isinstance(model, dict) and model.get("family") in FAMILIES and "target_modules" not in model:
        model["target_modules"] = FAMILIES[model["family"]].lora_targets
    cfg = StageConfig(path.stem, path, overrides, data)
    cfg.name = str(cfg.data.get("stage") or path.stem)
    explicit = set(base.get("model") or {}) | {p[1] for p, _ in parsed if len(p) == 2 and p[0] == "model"}
    _match_checkpoint(cfg, explicit)
    validate(cfg)
    return cfg


def _match_checkpoint(cfg: StageConfig, explicit: set[str]) -> None:
    """swift's model type and template for the folder the stage starts from, read from its config.json.

    A preset names the published checkpoint (InternVL2.5 as remote code: ``internvl_chat`` /
    ``internvl2_5``); the same family converted to transformers' classes (``model_type: internvl``)
    loads in swift as ``internvl`` / ``internvl_hf``. The family registry maps one to the other, so
    a folder of the preset's family runs with the names its config.json calls for (said in a note),
    unless the stage file or an override set them; a folder of another family is refused here,
    before swift loads it. Folders not on disk (hub ids, weights a chain has not written yet) and
    model types the registry does not know are left to the preset.
    """
    model = cfg.data.get("model")
    if not isinstance(model, dict) or model.get("family") not in FAMILIES:
        return
    key = "init" if cfg.data.get("init") else "model.path"
    config_path = Path(str(cfg.data.get("init") or model.get("path") or "")).expanduser() / "config.json"
    try:
        model_type = json.loads(config_path.read_text()).get("model_type")   # data only: no code runs
    except (OSError, ValueError, AttributeError):
        return
    try:
        found = family_of_model_type(str(model_type))
    except ValueError:
        return
    family = FAMILIES[model["family"]]
    if found != family.name:
        raise cfg.error(key, f"{config_path} says model_type {model_type!r} (family {found}), but the stage's "
                             f"model is family {family.name} (model_preset={cfg.data.get('model_preset')!r}); "
                             f"use a preset of family {found}")
    wanted = family.swift_names(model_type)
    current = (model.get("model_type"), model.get("template"))
    if current != wanted and not explicit & {"model_type", "template"}:
        model["model_type"], model["template"] = wanted
        cfg.notes.append(f"{config_path} says model_type {model_type!r}: swift model_type {wanted[0]}, template "
                         f"{wanted[1]} (the preset names {current[0]} / {current[1]})")


def swift_fields(kind: str) -> frozenset[str]:
    """ms-swift's argument names for ``sft`` or ``grpo``."""
    return frozenset(swift_types(kind))


def _check_types(cfg: StageConfig, errors: list[str]) -> None:
    data = cfg.data
    swift_kind = "grpo" if cfg.kind == "grpo" else "sft"
    known = swift_types(swift_kind)
    blocks = [("", data, TOP_TYPES), ("model.", data.get("model") or {}, MODEL_TYPES),
              ("swift.", data.get("swift") or {}, known), ("rollout.", data.get("rollout") or {}, known),
              ("clip.", data.get("clip") or {}, CLIP_TYPES)]
    for prefix, block, types in blocks:
        for key, value in block.items():
            if key in types and (problem := check_value(key, value, types[key])):
                errors.append(f"{cfg.where(prefix + key)}: {problem}")
    for key, value in [("swift.deepspeed", (data.get("swift") or {}).get("deepspeed")),
                       ("clip.deepspeed", (data.get("clip") or {}).get("deepspeed"))]:
        if isinstance(value, str) and value not in SWIFT_DEEPSPEED and not resolve_path(value).is_file():
            errors.append(f"{cfg.where(key)}: expected an existing DeepSpeed JSON file or one of "
                          f"{sorted(SWIFT_DEEPSPEED)}, got {value!r} ({resolve_path(value)} does not exist)")
    for entry in data.get("plugins") or []:
        if isinstance(entry, str) and not resolve_path(entry).is_file():
            errors.append(f"{cfg.where('plugins')}: plugin file {resolve_path(entry)} does not exist")


def validate(cfg: StageConfig) -> None:
    """Checks every key, type, range and repository path; one line per problem, all at once."""
    data = cfg.data
    errors: list[str] = []

    def fail(key: str, message: str) -> None:
        errors.append(f"{cfg.where(key)}: {message}")

    for key in data:
        if key not in TOP_KEYS:
            fail(key, f"unknown key; expected one of {sorted(TOP_KEYS)}")
    if data.get("kind") not in KINDS:
        raise cfg.error("kind", f"expected one of {KINDS}, got {data.get('kind')!r}")
    model = data.get("model")
    if not isinstance(model, dict):
        raise cfg.error("model", "expected a mapping (set model_preset, or model.path/model_type/template)")
    for key in model:
        if key not in MODEL_KEYS:
            fail(f"model.{key}", f"unknown key; expected one of {sorted(MODEL_KEYS)}")
    for key in ("path", "model_type", "template"):
        if not model.get(key):
            fail(f"model.{key}", "missing: ms-swift needs the model, its model_type and its template")
    for key in ("swift", "rollout", "clip"):
        if not isinstance(data.get(key) or {}, dict):
            raise cfg.error(key, f"expected a mapping, got {type(data.get(key)).__name__}")
    if not data.get("run_dir"):
        fail("run_dir", "missing: where checkpoints and manifests go")
    datasets = data.get("dataset")
    if not isinstance(datasets, list) or not datasets:
        fail("dataset", "expected a non-empty list of JSONL files, folders or globs")
    swift_kind = "grpo" if cfg.kind == "grpo" else "sft"
    known = swift_fields(swift_kind)
    for key in data.get("swift") or {}:
        if key in RUNNER_OWNED:
            fail(f"swift.{key}", "set by the stage runner; use the top-level config keys instead")
        elif key not in known:
            fail(f"swift.{key}", f"not an ms-swift {'rlhf' if swift_kind == 'grpo' else 'sft'} argument")
    if cfg.kind == "grpo":
        rollout = data.get("rollout") or {}
        for key in rollout:
            if key not in known:
                fail(f"rollout.{key}", "not an ms-swift rlhf (GRPO) argument")
        if not rollout.get("reward_funcs"):
            fail("rollout.reward_funcs", "a GRPO stage needs at least one reward function")
    elif data.get("rollout"):
        fail("rollout", f"only GRPO stages take rollout arguments (kind is {cfg.kind!r})")
    if cfg.kind == "midtrain":
        clip = data.get("clip") or {}
        for key in clip:
            if key not in CLIP_KEYS:
                fail(f"clip.{key}", f"unknown key; expected one of {sorted(CLIP_KEYS)}")
        if not clip.get("dataset"):
            fail("clip.dataset", "the CLIP-style phase needs image-caption data")
        if model.get("family") not in family_names(clip_phase=True):  # the <CLS> trainer reads Qwen-VL backbones
            others = [s for s in OMNIPT_STAGES if s != cfg.name]
            fail("model.family", f"stage {cfg.name} cannot run for this model: it opens with the CLIP-style phase "
                                 f"(vptracker/train/clip.py reads a Qwen-VL vision tower and merger), and the "
                                 f"CLIP-style phase supports {family_names(clip_phase=True)}, not "
                                 f"{model.get('family')!r}; run the other stages without it "
                                 f"(stages=[{','.join(others)}])")
    family = model.get("family")
    if family is not None and family not in FAMILIES:
        fail("model.family", f"unknown model family {family!r}; expected one of {sorted(FAMILIES)}")
    elif family is not None and model.get("template") and model["template"] not in FAMILIES[family].templates:
        fail("model.template", f"family {family} runs with swift templates {FAMILIES[family].templates}, "
                               f"not {model['template']!r}")
    if data.get("render_images", "auto") not in ("auto", True, False):
        fail("render_images", f"expected auto, true or false, got {data.get('render_images')!r}")
    elif data.get("render_images") is True and model.get("template") not in render_templates():
        fail("render_images", f"vptracker/models/swift_plugin.py renders for templates {render_templates()}, "
                              f"not {model.get('template')!r}; set render_images=auto or false")
    _check_types(cfg, errors)
    if errors:
        raise StageConfigError("\n".join(dict.fromkeys(errors)))


def model_source(value: str) -> str:
    """``local`` (an existing folder), ``hub`` (an ``org/name`` id) or ``missing`` (a path that is not there)."""
    if Path(value).expanduser().exists():
        return "local"
    return "hub" if HUB_ID.fullmatch(value) else "missing"


def check_model(cfg: StageConfig, must_exist: bool) -> dict:
    """Checks the weights the stage starts from before anything loads them; returns what it found.

    ms-swift 4.6 loads every model, config and processor with ``trust_remote_code=True`` and has no
    argument to turn it off, so the folder is checked here: one whose configs name custom code
    (``auto_map``) is refused unless ``trust_remote_code: true``. A hub id cannot be checked before
    ms-swift downloads it, so real runs need a local folder (or that consent).
    """
    key = "init" if cfg.get("init") else "model.path"
    value = cfg.start_model
    trust = cfg.get("trust_remote_code") is True
    source = model_source(value)
    if source == "local":
        try:
            config = check_model_dir(Path(value).expanduser(), trust_remote_code=trust)
        except ModelDirError as err:
            raise cfg.error(key, str(err)) from None
        return {"path": value, "source": source, "auto_map": bool(config.get("auto_map")), "trust_remote_code": trust}
    if must_exist and source == "missing":
        raise cfg.error(key, f"model folder {value} does not exist")
    if must_exist and not trust:
        raise cfg.error(key, f"{value!r} is not a local folder (read as a hub id): download it (e.g. `huggingface-cli download {value} "
                             "--local-dir DIR`) and set model=DIR so that its config can be checked for custom code "
                             "before anything runs, or pass --trust-remote-code to let ms-swift fetch and run it")
    return {"path": value, "source": source, "auto_map": None, "trust_remote_code": trust}


def fill_placeholders(value: str, cfg: StageConfig, key: str) -> str:
    """Fills ``{data_root}`` in dataset paths."""
    try:
        return str(value).format(data_root=cfg.data.get("data_root") or "")
    except (KeyError, IndexError, ValueError) as err:
        raise cfg.error(key, f"bad placeholder in {value!r} ({err}); only {{data_root}} is known") from None
