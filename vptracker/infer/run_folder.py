"""What an output folder holds: one run per task, named by the settings that decide its results.

The first process of a run writes ``infer_config.<task>.json`` (the resolved config, the run's
identity and its id, the files its units write); every later process of the same run (other
shards, a restart) checks it and leaves it as it is. A folder where another run of the task
(another model, dataset, decoding or task options) or a run of another task that writes the same
files left results is refused, or with ``force`` those results are removed and the folder becomes
this run's. Runs of different tasks whose files differ share a folder: SMOT writes its tracks
(``omnipt_mot``) and then its captions (``omnipt_caption``) into one. Settings that do not change
any unit's result (shards, concurrency, loop, batch size, engine memory knobs, ``limit`` and
``sequences``, which only choose units) are not part of the identity, so a restart with more
workers or more sequences resumes. Shard markers live under ``.shards/<run id>/``, so markers of an
earlier run never count for this one.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from vptracker.infer.locks import folder_lock
from vptracker.infer.outputs import (
    CAPTION_DIR,
    CAPTIONS,
    INSTANCE_CAPTIONS,
    PARTS_DIR,
    RESPONSES,
    VIDEO_CAPTIONS,
    atomic_write_text,
    json_text,
)

RUN_CONFIG = "infer_config.{task}.json"
LEGACY_CONFIG = "infer_config.json"   # written by every shard before runs had an identity
SHARDS_DIR = ".shards"
SETUP_LOCK = ".locks/run.lock"
# Config keys that decide what a unit's files hold (plus family, options and decoding, resolved).
IDENTITY_KEYS = ("task", "model", "adapter", "backend", "dataset", "root", "split", "dataset_options", "max_frames",
                 "torch_dtype", "trust_remote_code")
_PATH_KEYS = ("model", "adapter", "root")


class RunFolderError(ValueError):
    """An output folder that holds another run's results."""


def run_identity(cfg: dict, family: str, options: dict, decoding: dict) -> dict:
    identity = {key: cfg.get(key) for key in IDENTITY_KEYS}
    for key in _PATH_KEYS:
        if identity[key]:
            identity[key] = str(Path(identity[key]).resolve())
    identity["trust_remote_code"] = bool(identity["trust_remote_code"])
    identity.update(family=family, options=dict(sorted(options.items())), decoding=dict(decoding))
    return identity


def run_id(identity: dict) -> str:
    text = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def shard_marker(out: Path, rid: str, shard: tuple[int, int]) -> Path:
    return Path(out) / SHARDS_DIR / rid / f"{shard[0]}-of-{shard[1]}.done"


def _flat(value, prefix: str = "") -> dict:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out.update(_flat(item, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: value}


def differences(old: dict, new: dict) -> str:
    """``key: old -> new`` for every identity setting that differs (one line)."""
    a, b = _flat(old), _flat(new)
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    shown = "; ".join(f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in keys[:6])
    return shown + (f"; and {len(keys) - 6} more" if len(keys) > 6 else "")


def _read_record(path: Path) -> dict | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) else None


def run_config_path(out: str | Path, task: str) -> Path:
    return Path(out) / RUN_CONFIG.format(task=task)


def _remove_files(out: Path, outputs: list[str]) -> int:
    removed = 0
    for rel in outputs:
        path = (out / rel).resolve()
        if out not in path.parents:   # a recorded name that would leave the folder is never followed
            continue
        if path.is_file():
            path.unlink()
            removed += 1
            parent = path.parent
            while parent != out and parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent
    return removed


def remove_run(out: str | Path, task: str | None, outputs: list[str], run_ids: list[str] = ()) -> int:
    """Removes a run's files: its unit outputs, answer parts, shard markers, config, and the merged
    files (rebuilt from the parts that remain when the next run ends). Returns how many unit files went.

    ``task`` None is a run of an older version: its parts lie directly in ``.responses/``.
    """
    out = Path(out).resolve()
    removed = _remove_files(out, outputs)
    if task is None:
        for part in (out / PARTS_DIR).glob("*.jsonl"):
            part.unlink()
        (out / LEGACY_CONFIG).unlink(missing_ok=True)
        shutil.rmtree(out / SHARDS_DIR, ignore_errors=True)   # old markers were not keyed by run
    else:
        shutil.rmtree(out / PARTS_DIR / task, ignore_errors=True)
        run_config_path(out, task).unlink(missing_ok=True)
        for rid in run_ids:
            shutil.rmtree(out / SHARDS_DIR / rid, ignore_errors=True)
    if task in (None, "omnipt_caption"):
        shutil.rmtree(out / CAPTION_DIR, ignore_errors=True)
    for name in (RESPONSES, CAPTIONS, VIDEO_CAPTIONS, INSTANCE_CAPTIONS):
        (out / name).unlink(missing_ok=True)
    return removed


def _others(out: Path, task: str, outputs: list[str]) -> list[tuple[str | None, dict | None, str]]:
    """Runs of other tasks (and of older versions) whose files would mix with ours: (task, record, why)."""
    mine = set(outputs)
    found = []
    for path in sorted(out.glob(RUN_CONFIG.format(task="*"))):
        other = path.name[len("infer_config."):-len(".json")]
        if other == task:
            continue
        record = _read_record(path)
        if record is None or mine & {str(rel) for rel in record.get("outputs") or []}:
            found.append((other, record, f"{path.name} is a run of {other} that writes the same files"))
    legacy = out / LEGACY_CONFIG
    if legacy.exists() or any((out / PARTS_DIR).glob("*.jsonl")):
        found.append((None, _read_record(legacy), f"{out} holds results of an older version (no run identity)"))
    return found


def claim(out: str | Path, record: dict, outputs: list[str], force: bool = False) -> str:
    """Makes ``out`` this run's folder (see the module docstring); returns what happened, for the log.

    ``record`` holds at least ``task``, ``run_id`` and ``identity``; ``outputs`` are every unit file
    of the run (all shards), kept in the config so that a later ``force`` removes exactly them.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    task = record["task"]
    path = run_config_path(out, task)
    with folder_lock(out / SETUP_LOCK):
        existing = _read_record(path) if path.exists() else None
        if existing is not None and existing.get("run_id") == record["run_id"]:
            return "resuming"
        reasons = _others(out, task, outputs)
        if existing is not None:
            changed = differences(existing.get("identity") or {}, record["identity"])
            reasons.insert(0, (task, existing, f"{path.name} was written by another run of {task} ({changed})"))
        elif path.exists():
            reasons.insert(0, (task, None, f"{path.name} is unreadable"))
        elif (out / PARTS_DIR / task).is_dir() or any((out / rel).exists() for rel in outputs):
            reasons.insert(0, (task, None, f"{out} holds {task} results that no run config describes"))
        if reasons and not force:
            raise RunFolderError(f"{'; '.join(why for _, _, why in reasons)}; refusing to mix results: choose "
                                 "another --out, or pass --force to remove those results and track again")
        removed = 0
        for other, rec, _ in reasons:
            rec = rec or {}
            recorded = [str(rel) for rel in rec.get("outputs") or []]
            removed += remove_run(out, other, sorted(set(recorded) | set(outputs)),
                                  [rec["run_id"]] if rec.get("run_id") else [])
        atomic_write_text(path, json_text({**record, "outputs": outputs}, indent=1, default=str) + "\n")
        if not reasons:
            return "new run"
        return f"--force: removed earlier results ({removed} unit files): {'; '.join(why for _, _, why in reasons)}"
