"""An ablation table at the paper's scale: the real datasets, presets and stage configs, on a cluster.

Per row: ``bash data_preparation.sh omnipt task_options.frames=N`` into ``<prepared>_f<N>`` (once per
frame count), one ``vptracker train --stage <stage> init=<previous prefix's weights>`` per stage
prefix not trained yet (rows share prefixes; a finished stage is skipped by the runner itself), then
the table's evaluations (``configs/sweeps/full.yaml``: ``vptracker infer`` runs and one ``vptracker
eval`` each). The cluster shape comes from the environment (NNODES, NPROC_PER_NODE, ...), as for
``train.sh``; the dry run prints each stage's memory plan verdict.
"""
from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

from vptracker.config import ConfigError, load_config
from vptracker.demo.mot import prefix_folder
from vptracker.plan.memory import Cluster
from vptracker.plan.run import plan_stage
from vptracker.sweep.grid import SweepRow
from vptracker.train.commands import final_weights
from vptracker.train.stages import CONFIG_DIR, REPO_ROOT, load_stage

FULL_CONFIG = CONFIG_DIR / "sweeps" / "full.yaml"


def full_config(overrides: list[str]) -> dict:
    return load_config(FULL_CONFIG, overrides)


def data_root(cfg: dict, row: SweepRow, default_frames: int) -> str:
    """The prepared OmniPT data a row trains on: the shipped root, or one per frame count (Table 7)."""
    base = str(cfg["prepared"])
    return f"{base}/omnipt" if row.frames == default_frames else f"{base}_f{row.frames}/omnipt"


def stage_overrides(cfg: dict, row: SweepRow, root: str, runs: Path) -> list[str]:
    models = cfg.get("models") or {}
    if row.preset not in models:
        raise ConfigError(f"{FULL_CONFIG}: models has no weights folder for preset {row.preset!r} "
                          f"(set full.models.{row.preset}=DIR)")
    return [f"model_preset={row.preset}", f"model={models[row.preset]}", f"data_root={root}"]


def row_commands(cfg: dict, row: SweepRow, name: str, seed: int, out: Path, default_frames: int,
                 planned: set) -> tuple[list[str], Path, list[tuple[str, list[str]]]]:
    """(shell commands, final weights, [(stage, overrides)] of the stages this row trains first)."""
    root = data_root(cfg, row, default_frames)
    commands: list[str] = []
    if root != f"{cfg['prepared']}/omnipt" and ("prepare", root) not in planned:
        planned.add(("prepare", root))
        commands.append(f"DATA_ROOT={shlex.quote(str(cfg['data_dir']))} OUT_ROOT={shlex.quote(root[:-7])} "
                        f"bash data_preparation.sh omnipt task_options.frames={row.frames}")
    group = out / "groups" / row.group(seed)
    stages: list[tuple[str, list[str]]] = []
    weights = None
    for i, stage in enumerate(row.stages):
        prefix = row.stages[: i + 1]
        overrides = stage_overrides(cfg, row, root, group) + [f"run_dir={group / 'runs' / prefix_folder(prefix)}",
                                                              f"swift.seed={42 + seed}"]
        if weights is not None:
            overrides.append(f"init={weights}")
        weights = final_weights(load_stage(stage, overrides))
        if (row.group(seed), prefix) not in planned:
            planned.add((row.group(seed), prefix))
            commands.append(f"{sys.executable} -m vptracker train --stage {stage} " + shlex.join(overrides))
            stages.append((stage, overrides))
    assert weights is not None
    folder = out / "rows" / row.key / f"seed{seed}"
    fill = {"model": str(weights), "out": str(folder), "frames": row.frames, "data": cfg["data_dir"]}
    for evaluation in cfg["tables"][name]:
        spec = cfg["evaluations"][evaluation]
        for infer in spec["infer"]:
            commands.append(f"{sys.executable} -m vptracker infer {infer.format(**fill)}")
        commands.append(f"{sys.executable} -m vptracker eval {spec['eval'].format(**fill)}")
    return commands, weights, stages


def summaries(cfg: dict, name: str, out: Path, row: SweepRow, seed: int) -> list[Path]:
    folder = out / "rows" / row.key / f"seed{seed}"
    return [folder / f"{evaluation}_eval" / "summary.json" for evaluation in cfg["tables"][name]]


def verdict(stages: list[tuple[str, list[str]]]) -> list[str]:
    """The memory plan of every stage to train, for the cluster shape in the environment."""
    lines = []
    cluster = Cluster.from_env()
    for stage, overrides in stages:
        plan = plan_stage(load_stage(stage, overrides), cluster)
        lines.append(f"#   {stage} ({' '.join(o for o in overrides if o.startswith('model_preset'))}): "
                     f"{'fits' if plan.fits else 'does NOT fit'} on {cluster}")
    return lines


def run_commands(commands: list[str], echo) -> None:
    for command in commands:
        echo(f"$ {command}")
        done = subprocess.run(command, shell=True, cwd=REPO_ROOT, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"sweep: command failed with status {done.returncode}: {command}; "
                               "rerun the sweep to resume")
