"""Turns a resolved stage config into the exact commands that run it.

A stage is a short list of :class:`Command`: ``swift sft`` or ``swift rlhf --rlhf_type grpo``
for training, ``python -m vptracker.train.clip`` for the CLIP-style phase of mid-training, and
``swift export --merge_lora`` when the next stage needs full weights. Multi-GPU and multi-node runs
go through ms-swift's own launcher, which reads NPROC_PER_NODE, NNODES, NODE_RANK, MASTER_ADDR
and MASTER_PORT from the environment and starts torchrun; the CLIP phase uses torchrun directly
with the same variables.
"""
from __future__ import annotations

import glob
import json
import math
import os
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vptracker.config import ConfigError
from vptracker.models.attn import usable_attn_impl
from vptracker.tasks.prepare import STAGING, card_files
from vptracker.train.select import chosen_checkpoint, payload
from vptracker.train.stages import (
    RENDER_COLUMNS,
    RENDER_PLUGIN,
    StageConfig,
    fill_placeholders,
    render_templates,
    resolve_path,
)

LAUNCH_ENV = ("NPROC_PER_NODE", "NNODES", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT")
# Values whose relative paths are repository paths, resolved so runs work from any directory.
PATH_ARGS = {"deepspeed"}


@dataclass
class Command:
    role: str                   # "train", "clip" or "merge"
    argv: list[str]
    output_dir: Path
    env: dict[str, str] = field(default_factory=dict)  # launcher variables, shown by --dry-run
    payload: dict | None = None  # a JSON config the runner writes to payload_path before running
    payload_path: Path | None = None
    rank0_only: bool = False     # merges run once, on the first node, and the others wait for them
    notes: list[str] = field(default_factory=list)  # settings derived for this cluster shape, said aloud

    def shell(self) -> str:
        prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env.items())
        return (prefix + " " if prefix else "") + shlex.join(self.argv)


# The launcher variables that are counts or ranks, with their smallest valid value.
LAUNCH_INTS = {"NPROC_PER_NODE": 1, "NNODES": 1, "NODE_RANK": 0, "MASTER_PORT": 1}


def launcher_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The cluster shape from the environment, checked (a typo there would fail minutes later in torchrun)."""
    environ = os.environ if environ is None else environ
    env = {k: str(environ[k]).strip() for k in LAUNCH_ENV if str(environ.get(k) or "").strip()}
    for key, low in LAUNCH_INTS.items():
        if key in env and not (env[key].isdigit() and int(env[key]) >= low):
            raise ConfigError(f"environment variable {key}={env[key]!r}: expected an integer >= {low}")
    if int(env.get("NODE_RANK", 0)) >= int(env.get("NNODES", 1)):
        raise ConfigError(f"environment variable NODE_RANK={env['NODE_RANK']}: expected < NNODES={env.get('NNODES', 1)}")
    return env


def visible_gpus() -> int:
    """GPUs this process may use (CUDA_VISIBLE_DEVICES is honoured by torch itself)."""
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def single_node_env(env: Mapping[str, str], gpus: int) -> tuple[dict[str, str], list[str]]:
    """Without NPROC_PER_NODE (and NNODES), one process per visible GPU, as a user would expect.

    ms-swift alone would start one process that spreads the model over every GPU (device_map),
    which DeepSpeed refuses and which trains at a fraction of data-parallel speed.
    """
    out = dict(env)
    if "NPROC_PER_NODE" in out or "NNODES" in out or gpus <= 1:
        return out, []
    out["NPROC_PER_NODE"] = str(gpus)
    return out, [f"NPROC_PER_NODE is not set: one process per visible GPU (NPROC_PER_NODE={gpus})"]


def world_size(env: Mapping[str, str]) -> int:
    return int(env.get("NPROC_PER_NODE", 1)) * int(env.get("NNODES", 1))


def swift_executable() -> str:
    beside = Path(sys.executable).parent / "swift"
    return str(beside) if beside.exists() else "swift"


def render_value(value: Any) -> list[str]:
    """One ms-swift argument value as argv items (lists become several items, dicts JSON)."""
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, (list, tuple)):
        return [item for v in value for item in render_value(v)]
    if isinstance(value, dict):
        return [json.dumps(value, separators=(",", ":"))]
    return [str(value)]


def render_args(args: Mapping[str, Any]) -> list[str]:
    argv: list[str] = []
    for key, value in args.items():
        if value is None:  # null in a config means "ms-swift's default"
            continue
        if key in PATH_ARGS and isinstance(value, str):
            value = str(resolve_path(value))
        argv += [f"--{key}", *render_value(value)]
    return argv


def expand_datasets(cfg: StageConfig, key: str, entries: list | None, must_exist: bool) -> list[str]:
    """JSONL files from files, folders (their ``*.jsonl``, sorted) and globs; ``{data_root}`` filled."""
    files: list[str] = []
    for entry in entries or []:
        path = resolve_path(fill_placeholders(entry, cfg, key))
        if path.is_dir():
            found = sorted(str(p) for p in path.glob("*.jsonl"))
            if not found and must_exist:
                raise cfg.error(key, f"folder {path} holds no *.jsonl (run `vptracker prepare` first)")
            files += found
        elif any(c in str(path) for c in "*?["):
            found = sorted(glob.glob(str(path)))
            if not found and must_exist and key != "val_dataset":  # validation data is optional
                raise cfg.error(key, f"no file matches {path} (run `bash data_preparation.sh` or set {key}=...)")
            files += found if (found or must_exist) else [str(path)]
        elif path.is_file() or not must_exist:
            files.append(str(path))
        else:
            raise cfg.error(key, f"{path} does not exist (run `vptracker prepare` or set {key}=...)")
    if must_exist:
        _check_prepared(cfg, key, files)
    return files


def _check_prepared(cfg: StageConfig, key: str, files: list[str]) -> None:
    """Refuses shards of an unfinished ``vptracker prepare`` and shards its card does not list."""
    listed: dict[Path, set[str] | None] = {}
    for name in files:
        folder = Path(name).parent
        if folder not in listed:
            if (folder / STAGING).exists():
                raise cfg.error(key, f"{folder} holds an unfinished `vptracker prepare` ({folder / STAGING}); "
                                     "rerun it before training")
            listed[folder] = card_files(folder / "card.json")
        if listed[folder] is not None and Path(name).name not in listed[folder]:
            raise cfg.error(key, f"{name} is not listed in {folder / 'card.json'} (left by an earlier prepare?); "
                                 "remove it or rerun `vptracker prepare`")


def _first_rendered_row(path: str) -> tuple[int, str] | None:
    """(line, column) of the first row of ``path`` that sets a :data:`RENDER_COLUMNS` column, or None.
    A substring test skips the other rows unparsed: 3.8 s for a million 566-byte rows on this 2-core machine."""
    keys = [(col, f'"{col}"'.encode()) for col in RENDER_COLUMNS]
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, 1):
            if not any(key in line for _, key in keys):
                continue
            try:
                row = json.loads(line)
            except ValueError:
                continue   # swift reports the malformed line itself when it loads the file
            for col, _ in keys:
                if isinstance(row, dict) and row.get(col):
                    return number, col
    return None


def _job_of(path: str) -> str:
    """The prepare job that wrote ``path``: from its folder's card.json, else from ``<split>-<job>-NNNNN.jsonl``."""
    try:
        card = json.loads((Path(path).parent / "card.json").read_text())
        for split in card["outputs"].values():
            for job, entry in split.items():
                if Path(path).name in entry.get("files", []):
                    return job
    except (OSError, ValueError, KeyError, AttributeError):
        pass
    parts = Path(path).stem.split("-")
    return "-".join(parts[1:-1]) if len(parts) >= 3 else Path(path).stem


def check_render_columns(cfg: StageConfig, key: str, files: list[str]) -> None:
    """Refuses rows whose visual prompt, crops or pixel cap the stage's template would ignore.

    Only ``vptracker/models/swift_plugin.py`` applies those columns, and only for the templates it wraps
    (the Qwen-VL families) with ``render_images`` auto or true. Any other stage would train on the
    uncropped, unmarked frames without a word from swift, so it stops here, before anything runs,
    naming the file, line, job and family.
    """
    if cfg.renders_images:
        return
    model = cfg["model"]
    why = ("render_images is false" if cfg.get("render_images") is False else
           f"vptracker/models/swift_plugin.py draws them for templates {render_templates()} only")
    for name in files:
        hit = _first_rendered_row(name) if Path(name).is_file() else None
        if hit:
            line, column = hit
            raise cfg.error(key, f"{name}:{line}: job {_job_of(name)!r} writes rows with a {column!r} column, which "
                                 f"family {model.get('family')} (template {model.get('template')}) would ignore: "
                                 f"{why}, and swift would train on the frames without it. Leave that job out of "
                                 f"this family's data (or prepare it without {column})")


def count_rows(files: list[str]) -> int | None:
    """Rows in JSONL files, or None when any is missing (dry runs before data preparation)."""
    total = 0
    for name in files:
        if not Path(name).is_file():
            return None
        with open(name, "rb") as fh:
            total += sum(1 for line in fh if line.strip())
    return total


def _batch_args(cfg: StageConfig, swift: dict, env: Mapping[str, str]) -> None:
    """Derives gradient accumulation from ``global_batch_size`` for this cluster shape."""
    gbs = cfg.get("global_batch_size")
    if gbs is None:
        return
    per_step = int(swift.get("per_device_train_batch_size") or 1) * world_size(env)
    if gbs % per_step:
        raise cfg.error("global_batch_size", f"{gbs} is not a multiple of per_device_train_batch_size x "
                                             f"processes = {per_step} for this cluster shape")
    swift["gradient_accumulation_steps"] = gbs // per_step


def _check_generation_batch(cfg: StageConfig, swift: dict, rollout: dict, env: Mapping[str, str],
                            notes: list[str]) -> None:
    """ms-swift's GRPO rule, checked before a model loads: each generation batch holds whole groups.

    When the user gave no cluster shape (no NPROC_PER_NODE), no ``global_batch_size`` and no
    accumulation override, the accumulation steps grow to the next multiple that holds whole
    groups, with a note, instead of failing the recipe's own check on a single-process run.
    """
    if rollout.get("generation_batch_size") or rollout.get("steps_per_generation"):
        return  # swift checks its own explicit settings
    per_step = int(swift.get("per_device_train_batch_size") or 1) * world_size(env)
    accumulation = int(swift.get("gradient_accumulation_steps") or 1)
    batch = per_step * accumulation
    groups = int(rollout.get("num_generations") or 8)
    chosen = any(item.split("=", 1)[0].strip() == "swift.gradient_accumulation_steps" for item in cfg.overrides)
    if batch % groups and "NPROC_PER_NODE" not in env and cfg.get("global_batch_size") is None and not chosen:
        steps = math.lcm(batch, groups) // per_step
        swift["gradient_accumulation_steps"] = steps
        notes.append(f"NPROC_PER_NODE is not set: gradient_accumulation_steps {accumulation} -> {steps} so that each "
                     f"generation batch ({per_step * steps}) holds whole groups of num_generations={groups}")
        return
    if batch % groups:
        raise cfg.error("rollout.num_generations", f"{groups} does not divide the generation batch per_device_"
                                                   f"train_batch_size x processes x gradient_accumulation_steps = {batch} "
                                                   "for this cluster shape")


def _schedule_args(cfg: StageConfig, swift: dict, rollout: dict, files: list[str], env) -> None:
    """warmup_stable_decay needs its decay length in steps: ``lr_decay_ratio`` of the run's steps."""
    if swift.get("lr_scheduler_type") != "warmup_stable_decay":
        return
    kwargs = dict(swift.get("lr_scheduler_kwargs") or {})
    if "num_decay_steps" in kwargs:
        return
    steps = swift.get("max_steps")
    if not steps or steps < 0:
        rows = count_rows(files)
        if rows is None:  # a dry run before the data exists: say how it will be computed
            kwargs["num_decay_steps"] = f"{cfg.get('lr_decay_ratio', 0.1)} x steps (computed from the data)"
            swift["lr_scheduler_kwargs"] = kwargs
            return
        samples = int(swift.get("per_device_train_batch_size") or 1) * int(
            swift.get("gradient_accumulation_steps") or 1) * world_size(env)
        if cfg.kind == "grpo":  # a GRPO batch counts completions: num_generations per prompt
            samples = max(1, samples // int(rollout.get("num_generations") or 1))
        steps = math.ceil(rows / samples) * math.ceil(float(swift.get("num_train_epochs") or 1))
    kwargs["num_decay_steps"] = max(1, round(float(cfg.get("lr_decay_ratio", 0.1)) * steps))
    swift["lr_scheduler_kwargs"] = kwargs


def _plugins(cfg: StageConfig, must_exist: bool) -> list[str]:
    out = []
    entries = list(cfg.get("plugins") or [])
    if cfg.renders_images and RENDER_PLUGIN not in entries:
        entries.append(RENDER_PLUGIN)
    for entry in entries:
        path = resolve_path(entry)
        if must_exist and not path.is_file():
            raise cfg.error("plugins", f"plugin file {path} does not exist")
        out.append(str(path))
    return out


def train_command(cfg: StageConfig, model: str, output_dir: Path, datasets: list[str], env: dict,
                  must_exist: bool) -> Command:
    model_cfg = cfg["model"]
    swift = dict(cfg.get("swift") or {})
    if must_exist:  # a real run on this machine: flash attention only where flash_attn is installed
        swift["attn_impl"] = usable_attn_impl(swift.get("attn_impl"))
    rollout = dict(cfg.get("rollout") or {}) if cfg.kind == "grpo" else {}
    if swift.get("tuner_type", "lora") == "lora" and "target_modules" not in swift and model_cfg.get("target_modules"):
        swift["target_modules"] = model_cfg["target_modules"]
    _batch_args(cfg, swift, env)
    notes: list[str] = list(cfg.notes)
    if cfg.kind == "grpo":
        _check_generation_batch(cfg, swift, rollout, env, notes)
    _schedule_args(cfg, swift, rollout, datasets, env)
    head = [swift_executable(), "rlhf", "--rlhf_type", "grpo"] if cfg.kind == "grpo" else [swift_executable(), "sft"]
    if cfg.renders_images and cfg.kind != "grpo":  # the plugin's template reads the row's extra columns
        swift.setdefault("remove_unused_columns", False)
    argv = head + ["--model", model, "--model_type", model_cfg["model_type"], "--template", cfg.train_template,
                   "--check_model", "false", "--dataset", *datasets]
    val = expand_datasets(cfg, "val_dataset", cfg.get("val_dataset"), must_exist)
    if must_exist:
        check_render_columns(cfg, "val_dataset", val)
    if val:
        argv += ["--val_dataset", *val]
    plugins = _plugins(cfg, must_exist)
    if plugins:
        argv += ["--external_plugins", *plugins]
    argv += ["--output_dir", str(output_dir), "--add_version", "false"]
    argv += render_args(swift) + render_args(rollout)
    return Command("train", argv, output_dir, env=dict(env), notes=notes)


def merge_command(cfg: StageConfig, train_dir: Path, merged_dir: Path, env: dict) -> Command:
    model_cfg = cfg["model"]

    argv = [swift_executable(), "export", "--adapters", str(chosen_checkpoint(cfg, train_dir)), "--merge_lora", "true",
            "--model_type", model_cfg["model_type"], "--template", model_cfg["template"],
            "--output_dir", str(merged_dir)]
    dtype = (cfg.get("swift") or {}).get("torch_dtype")
    if dtype:
        argv += ["--torch_dtype", str(dtype)]
    return Command("merge", argv, merged_dir, env={}, rank0_only=True)


def clip_command(cfg: StageConfig, model: str, output_dir: Path, env: dict, must_exist: bool) -> Command:
    clip = dict(cfg.get("clip") or {})
    payload = {
        "model": model,
        "family": cfg["model"].get("family"),
        "dataset": expand_datasets(cfg, "clip.dataset", clip.pop("dataset"), must_exist),
        "output_dir": str(output_dir),
        "torch_dtype": (cfg.get("swift") or {}).get("torch_dtype") or "float32",
        "trust_remote_code": cfg.get("trust_remote_code") is True,
        **{k: (str(resolve_path(v)) if k in PATH_ARGS and v else v) for k, v in clip.items()},
    }
    payload_path = output_dir / "clip_config.json"
    if "NPROC_PER_NODE" in env or "NNODES" in env:
        launch = [sys.executable, "-m", "torch.distributed.run"]
        for key in LAUNCH_ENV:
            if key in env:
                launch += [f"--{key.lower()}", env[key]]
    else:
        launch = [sys.executable]
    argv = launch + ["-m", "vptracker.train.clip", "--config", str(payload_path)]
    return Command("clip", argv, output_dir, env=dict(env), payload=payload, payload_path=payload_path)


def select_command(cfg: StageConfig, model: str, train_dir: Path) -> Command | None:
    """Scores every saved checkpoint on the stage's validation split (``select:``; vptracker/train/select.py)."""
    spec = payload(cfg, model, train_dir)
    if spec is None:
        return None
    path = cfg.stage_dir / "select" / "select_config.json"
    argv = [sys.executable, "-m", "vptracker.train.select", "--config", str(path)]
    note = f"scores each checkpoint's {spec['metric']} on {spec['dataset']} {spec.get('split') or ''}".rstrip()
    return Command("select", argv, Path(spec["out"]), payload=spec, payload_path=path, rank0_only=True,
                   notes=[f"{note}; continues from the {spec['rule']} checkpoint"])


def final_weights(cfg: StageConfig) -> Path:
    """Where a finished stage's weights are: merged LoRA weights, or the last full checkpoint."""
    train_dir = cfg.stage_dir / ("sft" if cfg.kind == "midtrain" else "train")
    lora = (cfg.get("swift") or {}).get("tuner_type", "lora") == "lora"
    if lora and cfg.get("merge_lora", True):
        return cfg.stage_dir / "merged"

    return chosen_checkpoint(cfg, train_dir)


def plan_stage(cfg: StageConfig, env: dict | None = None, must_exist: bool = False) -> list[Command]:
    """The commands that run ``cfg``; ``must_exist`` checks data and plugin files (real runs)."""
    env = launcher_env() if env is None else dict(env)
    stage_dir = cfg.stage_dir
    model = cfg.start_model
    commands = []
    if cfg.kind == "midtrain":
        clip = clip_command(cfg, model, stage_dir / "clip", env, must_exist)
        commands.append(clip)
        model = str(stage_dir / "clip" / "final")
    train_dir = stage_dir / ("sft" if cfg.kind == "midtrain" else "train")
    datasets = expand_datasets(cfg, "dataset", cfg["dataset"], must_exist)
    if must_exist:
        check_render_columns(cfg, "dataset", datasets)
    commands.append(train_command(cfg, model, train_dir, datasets, env, must_exist))
    if (scoring := select_command(cfg, model, train_dir)) is not None:
        commands.append(scoring)
    if final_weights(cfg) == stage_dir / "merged":
        commands.append(merge_command(cfg, train_dir, stage_dir / "merged", env))
    return commands
