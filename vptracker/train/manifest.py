"""The manifest each stage writes next to its checkpoints: what ran, on what, from which code and data.

``<run_dir>/<stage>/manifest.json`` holds the resolved config, the commands, package versions, the
git commit (and whether the tree had uncommitted changes), the data card of every dataset folder
(the ``card.json`` that ``vptracker prepare`` writes) with row counts, the cluster shape, where the
stage resumed from, whether ``trust_remote_code`` was allowed (and what the check of the model
folder found), and its status. Chaining reads ``status`` and ``output`` to skip finished stages.

The task contracts of the data cards (:mod:`vptracker.tasks.contract`) are gathered here too; the
runner writes them as ``vptracker_contract.json`` into the stage folder, swift's output folder
(next to its ``args.json``, so every ``checkpoint-N`` finds it in its parent) and the final weights.
"""
from __future__ import annotations

import datetime as _dt
import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from vptracker.tasks.contract import merge_contracts, read_card_contracts
from vptracker.train.stages import REPO_ROOT

PACKAGES = ("vptracker", "torch", "ms-swift", "transformers", "trl", "peft", "accelerate", "datasets",
            "deepspeed", "vllm", "flash-attn", "qwen-vl-utils")
MANIFEST = "manifest.json"


def package_versions() -> dict[str, str | None]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_state(root: Path = REPO_ROOT) -> dict[str, Any]:
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def data_cards(files: list[str]) -> list[dict[str, Any]]:
    """Per dataset file: its row count and the data card found beside it, if any."""
    cards = []
    for name in files:
        path = Path(name)
        entry: dict[str, Any] = {"path": str(path)}
        if path.is_file():
            with open(path, "rb") as fh:
                entry["rows"] = sum(1 for line in fh if line.strip())
        card = path.parent / "card.json"
        if card.is_file():
            try:
                entry["card"] = json.loads(card.read_text())
            except json.JSONDecodeError as err:
                entry["card_error"] = f"{card}: {err}"
        cards.append(entry)
    return cards


def stage_contracts(data: list[dict[str, Any]], stage: str) -> tuple[dict, list[str]]:
    """``({task: TaskContract}, card paths)`` over the data cards of a stage; one task trained under
    two contracts is an error naming the stage."""
    contracts: dict = {}
    sources: list[str] = []
    for entry in data:
        card = entry.get("card")
        if not isinstance(card, dict):
            continue
        where = str(Path(entry["path"]).parent / "card.json")
        found = read_card_contracts(card, where)
        if found:
            merge_contracts(contracts, found, f"stage {stage}: {where}")
            if where not in sources:
                sources.append(where)
    return contracts, sources


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def read_manifest(stage_dir: Path) -> dict | None:
    path = Path(stage_dir) / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None


def write_manifest(stage_dir: Path, manifest: dict) -> Path:
    stage_dir = Path(stage_dir)
    stage_dir.mkdir(parents=True, exist_ok=True)
    path = stage_dir / MANIFEST
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, default=str))
    tmp.replace(path)  # readers never see half a manifest
    return path


def new_manifest(stage: str, config_path: Path, overrides, resolved: dict, commands: list[dict],
                 datasets: list[str], launcher: dict, model_check: dict | None = None) -> dict:
    return {
        "stage": stage,
        "status": "running",
        "started": now(),
        "config_file": str(config_path),
        "overrides": list(overrides),
        "resolved_config": resolved,
        "commands": commands,
        "packages": package_versions(),
        "python": platform.python_version(),
        "host": platform.node(),
        "git": git_state(),
        "data": data_cards(datasets),
        "launcher": launcher,
        # ms-swift loads with trust_remote_code=True whatever we say; this records whether the user
        # allowed custom code and what the check of the starting model folder found.
        "trust_remote_code": resolved.get("trust_remote_code") is True,
        "model_check": model_check,
        "resumed_from": {},
    }
