"""What an output folder holds: one run, named by the settings that decide its results.

The first process of a run writes ``infer_config.json`` (the resolved config, the run's identity
and its id, the files its units write); every later process of the same run (other shards, a
restart) checks it and leaves it as it is. A folder made by another run (another model, dataset,
decoding or task options) is refused, or with ``force`` its results are removed and the folder
becomes this run's. Settings that do not change any unit's result (shards, concurrency, loop,
batch size, engine memory knobs, ``limit``/``sequences``, which only choose units) are not part of
the identity, so a restart with more workers or more sequences resumes. Shard markers live under
``.shards/<run id>/``, so markers of an earlier run never count for this one.
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

RUN_CONFIG = "infer_config.json"
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


def _has_results(out: Path, outputs: list[str]) -> bool:
    return (out / PARTS_DIR).is_dir() or (out / RESPONSES).exists() or any((out / rel).exists() for rel in outputs)


def remove_results(out: Path, outputs: list[str]) -> int:
    """Removes a run's files (its unit outputs, parts, merges, markers); returns how many unit files went."""
    out = Path(out).resolve()
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
    for name in (PARTS_DIR, SHARDS_DIR, CAPTION_DIR):
        shutil.rmtree(out / name, ignore_errors=True)
    for name in (RESPONSES, CAPTIONS, VIDEO_CAPTIONS, INSTANCE_CAPTIONS, RUN_CONFIG):
        (out / name).unlink(missing_ok=True)
    return removed


def claim(out: str | Path, record: dict, outputs: list[str], force: bool = False) -> str:
    """Makes ``out`` this run's folder (see the module docstring); returns what happened, for the log.

    ``record`` holds at least ``run_id`` and ``identity``; ``outputs`` are every unit file of the
    run (all shards), kept in the config so that a later ``force`` removes exactly them.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / RUN_CONFIG
    with folder_lock(out / SETUP_LOCK):
        existing = _read_record(path) if path.exists() else None
        if existing is not None and existing.get("run_id") == record["run_id"]:
            return "resuming"
        if existing is None and not path.exists() and not _has_results(out, outputs):
            atomic_write_text(path, json_text({**record, "outputs": outputs}, indent=1, default=str) + "\n")
            return "new run"
        if existing is None:
            why = f"{path} is missing or unreadable, but the folder holds results"
        else:
            why = (f"{path} was written by another run ({differences(existing.get('identity') or {}, record['identity'])})"
                   if existing.get("identity") else f"{path} has no run identity (written by an older version)")
        if not force:
            raise RunFolderError(f"{why}; refusing to mix results: choose another --out, or pass --force to "
                                 "remove that run's results and track again")
        old_outputs = [str(rel) for rel in (existing or {}).get("outputs") or []]
        removed = remove_results(out, sorted(set(old_outputs) | set(outputs)))
        atomic_write_text(path, json_text({**record, "outputs": outputs}, indent=1, default=str) + "\n")
        return f"--force: removed the previous run's results ({removed} unit files); {why}"
