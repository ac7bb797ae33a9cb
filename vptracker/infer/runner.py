"""Running a task over a dataset: units of work, shards, resume, progress and result files.

The task (``vptracker.tasks.get_task(name)``, the one registry) says what its units are, how to
track one and which files it writes (:mod:`vptracker.infer.sides`, :mod:`vptracker.infer.units`); this module
runs them. A unit is finished when all its files exist (they are written atomically), so a
restarted run skips it. ``--shard i/n`` gives each worker a share of the units, longest first,
balanced by frame count. A unit is tracked under a file lock (``.locks/``), so two processes on one
output folder never track the same unit: the second skips it and says so.
"""
from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from vptracker.datasets.base import Sequence
from vptracker.infer.common import TaskOptions
from vptracker.infer.engine import Engine
from vptracker.infer.locks import LOCKS_DIR, release, try_lock
from vptracker.infer.loop import LoopStats, run_async, run_batched
from vptracker.infer.outputs import merge, safe_name, write_responses_part
from vptracker.infer.sides import tracking
from vptracker.infer.units import Unit
from vptracker.tasks import get_task
from vptracker.tasks.contract import apply_contract, contract_for


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"i/n"`` (0-based ``i``) -> ``(i, n)``; ``None`` -> the whole run ``(0, 1)``."""
    if text in (None, ""):
        return 0, 1
    try:
        i, n = (int(v) for v in str(text).split("/"))
    except ValueError:
        raise ValueError(f"shard {text!r}: expected i/n, e.g. 0/4") from None
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"shard {text!r}: expected 0 <= i < n")
    return i, n


def plan(units: list[Unit], shard: tuple[int, int] = (0, 1)) -> list[Unit]:
    """This shard's units, longest first; units go greedily to the least-loaded shard (LPT)."""
    index, count = shard
    order = sorted(units, key=lambda u: (-u.frames, u.key))
    loads = [0] * count
    mine = []
    for unit in order:
        target = min(range(count), key=lambda k: (loads[k], k))
        loads[target] += unit.frames
        if target == index:
            mine.append(unit)
    return mine


def is_finished(unit: Unit, out_dir: Path) -> bool:
    return all((out_dir / rel).is_file() for rel in unit.outputs)


@dataclass
class RunSummary:
    planned: int = 0
    skipped: int = 0                                   # finished before this run started
    finished: list[str] = field(default_factory=list)
    locked: list[str] = field(default_factory=list)    # being tracked by another process: left to it
    merged: bool = False
    stats: LoopStats = field(default_factory=LoopStats)


def unit_lock_path(out_dir: Path, unit: Unit) -> Path:
    return out_dir / LOCKS_DIR / f"{safe_name(unit.key)}.lock"


def run_task(task, engine: Engine, sequences: Iterable[Sequence], out_dir: str | Path,
             options: TaskOptions | dict | None = None, *, shard: tuple[int, int] | str | None = None,
             concurrency: int = 16, loop: str = "batched", progress: bool = True,
             merge_outputs: bool | None = None, model_dir: str | Path | None = None,
             adapter: str | Path | None = None) -> RunSummary:
    """Tracks every unfinished unit of this shard and writes its files as soon as it finishes.

    ``task`` is a task name or a :class:`vptracker.tasks.Task`; with ``model_dir`` the checkpoint's
    contract (``vptracker_contract.json``) fills the options it fixes (see :func:`resolve_options`).
    """
    definition = get_task(task) if isinstance(task, str) else task
    side = tracking(definition)
    options = _resolve_options(options, engine, definition, model_dir, adapter)
    shard = shard if isinstance(shard, tuple) else parse_shard(shard)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    all_units = side.units(list(sequences))
    _check_unique_outputs(all_units, definition.name)
    units = plan(all_units, shard)
    todo = [u for u in units if not is_finished(u, out_dir)]
    summary = RunSummary(planned=len(units), skipped=len(units) - len(todo))
    by_tracker: dict[int, Unit] = {}
    held: dict[str, int] = {}   # unit key -> lock descriptor

    def trackers():
        for unit in todo:  # built lazily: only `concurrency` sequences hold state at a time
            fd = try_lock(unit_lock_path(out_dir, unit))
            if fd is None:      # another process is tracking it
                summary.locked.append(unit.key)
                continue
            if is_finished(unit, out_dir):   # another process finished it since we looked
                release(fd)
                summary.skipped += 1
                continue
            held[unit.key] = fd
            tracker = side.tracker(unit, options)
            by_tracker[id(tracker)] = unit
            yield tracker

    bar = _progress_bar(len(units), summary.skipped, progress)

    def on_finish(tracker) -> None:
        unit = by_tracker.pop(id(tracker))
        write_responses_part(out_dir, unit.key, tracker.responses, definition.name)
        side.write(tracker, unit, out_dir)   # outputs last: their existence marks the unit done
        release(held.pop(unit.key, None))
        summary.finished.append(unit.key)
        if bar is not None:
            bar.update(1)

    def on_step(stats: LoopStats) -> None:
        if bar is not None:
            bar.set_postfix(fps=f"{stats.frames_per_s:.2f}", batch=stats.batch_sizes[-1] if stats.batch_sizes else 0)

    runner = run_async if loop == "async" else run_batched
    if loop not in ("batched", "async"):
        raise ValueError(f"loop {loop!r}: expected 'batched' or 'async'")
    try:
        summary.stats = runner(engine, trackers(), concurrency=concurrency, on_finish=on_finish, on_step=on_step)
    finally:
        for fd in held.values():
            release(fd)
        if bar is not None:
            bar.close()
    # the last process to finish merges: with units left to another, that is the other one
    if (merge_outputs if merge_outputs is not None else shard[1] == 1) and all(is_finished(u, out_dir) for u in units):
        merge(out_dir)
        summary.merged = True
    return summary


def _check_unique_outputs(units: list[Unit], task: str) -> None:
    """Two units writing one file would make the second look finished: refuse, naming both."""
    owner: dict[str, str] = {}
    for unit in units:
        for rel in unit.outputs:
            if rel in owner:
                raise ValueError(f"{task}: units {owner[rel]!r} and {unit.key!r} would both write {rel}; "
                                 "sequence names must be unique (one view per sequence is a CRMOT input)")
            owner[rel] = unit.key


def resolve_options(task, options: dict | None, model_dir=None, adapter=None) -> tuple[dict, object]:
    """The task options of a run as a dict, and the contract they follow.

    The checkpoint's contract (``vptracker_contract.json`` in ``model_dir`` / ``adapter`` or their
    parent) fills every option it fixes that ``options`` leaves unset (None); a set one that
    disagrees is a :class:`~vptracker.config.ConfigError`. Without a contract the inference
    defaults stay (one log line says so) and the contract is the task's with its default options;
    ``box_scale`` left unset becomes that contract's scale (what the builders write by default)."""
    definition = get_task(task) if isinstance(task, str) else task
    out = dict(options or {})
    contract = None
    if model_dir is not None or adapter is not None:
        contract, path = contract_for(definition.name, model_dir, adapter)
        if contract is not None:
            out = apply_contract(out, contract, path)
    contract = contract or definition.contract()
    if out.get("box_scale") is None:
        out["box_scale"] = contract.box_scale
    return out, contract


def _resolve_options(options: TaskOptions | dict | None, engine, task, model_dir=None, adapter=None) -> TaskOptions:
    """Box geometry must be the engine's: family and pixel limits come from it unless set."""
    if isinstance(options, TaskOptions):
        resolved = options
        if model_dir is not None or adapter is not None:
            resolved = TaskOptions.from_dict(resolve_options(task, _set_fields(options), model_dir, adapter)[0])
        elif resolved.box_scale is None:
            resolved = replace(resolved, box_scale=task.contract().box_scale)
    else:
        data = resolve_options(task, options, model_dir, adapter)[0]
        for key in ("family", "min_pixels", "max_pixels"):
            if data.get(key) is None and getattr(engine, key, None) is not None:
                data[key] = getattr(engine, key)
        resolved = TaskOptions.from_dict(data)
    for key in ("family", "min_pixels", "max_pixels"):
        ours, theirs = getattr(resolved, key), getattr(engine, key, None)
        if theirs is not None and ours != theirs:
            raise ValueError(f"task option {key}={ours!r} differs from the engine's {theirs!r}: boxes would be "
                             "mapped with a different geometry than the model sees")
    return resolved


def _set_fields(options: TaskOptions) -> dict:
    """The fields of ``options`` that differ from the defaults (what the caller set)."""
    from dataclasses import asdict

    default = asdict(TaskOptions())
    return {k: v for k, v in asdict(options).items() if v != default[k]}


def _progress_bar(total: int, done: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=done, unit="seq", desc="sequences", dynamic_ncols=True, file=sys.stderr)


def track_sot(engine: Engine, sequences: Iterable[Sequence], out_dir: str | Path, *, task: str = "vptracker_sot",
              options: TaskOptions | dict | None = None, **kwargs) -> RunSummary:
    """Python API for SOT: writes ``out_dir/<seq>.txt`` and ``out_dir/responses.jsonl``."""
    if task not in ("vptracker_sot", "omnipt_sot"):
        raise ValueError(f"track_sot runs an SOT task, not {task!r}")
    return run_task(task, engine, sequences, out_dir, options, **kwargs)
