"""Running a task over a dataset: units of work, shards, resume, progress and result files.

A *unit* is what one tracker handles and what one set of result files holds: a sequence for SOT,
MOT, RMOT (one expression over one video) and captions, a (scene, description) pair over all its
views for CRMOT. A unit is finished when all its files exist (they are written atomically), so a
restarted run skips it. ``--shard i/n`` gives each worker a share of the units, longest first,
balanced by frame count. A unit is tracked under a file lock (``.locks/``), so two processes on one
output folder never track the same unit: the second skips it and says so.
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from vptracker.datasets.base import Sequence
from vptracker.infer.caption import CaptionTracker
from vptracker.infer.common import TaskOptions
from vptracker.infer.engine import Engine
from vptracker.infer.locks import LOCKS_DIR, release, try_lock
from vptracker.infer.loop import LoopStats, run_async, run_batched
from vptracker.infer.multi import OmniMOT, OmniReferring
from vptracker.infer.outputs import (
    CAPTION_DIR,
    atomic_write_text,
    crmot_text,
    json_text,
    merge,
    mot_text,
    path_part,
    safe_name,
    sot_text,
    write_responses_part,
)
from vptracker.infer.sot import OmniSOT, VPTrackerSOT


@dataclass
class Unit:
    key: str
    sequences: list[Sequence]
    outputs: list[str]                 # paths relative to the output directory
    language: str | None = None

    @property
    def frames(self) -> int:
        return sum(len(s.frames) for s in self.sequences)


@dataclass
class Task:
    name: str
    units: Callable[[list[Sequence]], list[Unit]]
    tracker: Callable[[Unit, TaskOptions], object]
    write: Callable[[object, Unit, Path], None]
    special_tokens: tuple[str, ...] = ()
    # the box scale the training builders (vptracker/tasks) write answers in unless told otherwise
    default_scale: str = "norm1000"


def _per_sequence(suffix: str) -> Callable[[list[Sequence]], list[Unit]]:
    def units(sequences):
        return [Unit(s.name, [s], [f"{path_part(s.name)}{suffix}"]) for s in sequences]
    return units


def _rmot_units(sequences):
    out = []
    for s in sequences:
        video = str(s.scene or s.name)
        expression = str(s.expression or s.name)
        rel = f"{path_part(video)}/predict.txt" if expression == video else \
            f"{path_part(video)}/{path_part(expression)}/predict.txt"
        out.append(Unit(s.name, [s], [rel], s.language))
    return out


def _crmot_units(sequences):
    groups: dict[tuple[str, str], list[Sequence]] = {}
    for s in sequences:
        if not s.language:
            raise ValueError(f"{s.dataset}/{s.name}: CRMOT needs a description (Sequence.language)")
        scene = str(s.scene or s.name)
        groups.setdefault((scene, s.language.strip()), []).append(s)
    units = []
    for (scene, description), views in sorted(groups.items()):
        views = sorted(views, key=lambda v: str(v.view or v.name))
        key = f"{scene}_{description}"
        units.append(Unit(key, views, [f"{path_part(key)}/{path_part(str(v.view or v.name))}.txt" for v in views],
                          description))
    return units


def _write_sot(tracker, unit: Unit, out_dir: Path) -> None:
    atomic_write_text(out_dir / unit.outputs[0], sot_text(tracker.result()))


def _write_mot(tracker, unit: Unit, out_dir: Path) -> None:
    atomic_write_text(out_dir / unit.outputs[0], mot_text(tracker.rows(0)))


def _write_rmot(tracker, unit: Unit, out_dir: Path) -> None:
    atomic_write_text(out_dir / unit.outputs[0], mot_text(tracker.rows(0, image_index=True)))


def _write_crmot(tracker, unit: Unit, out_dir: Path) -> None:
    for v, rel in enumerate(unit.outputs):
        atomic_write_text(out_dir / rel, crmot_text(tracker.rows(v)))


def _write_caption(tracker, unit: Unit, out_dir: Path) -> None:
    atomic_write_text(out_dir / unit.outputs[0], json_text(tracker.result(), indent=1) + "\n")


TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    TASKS[task.name] = task
    return task


def _vp_tokens():
    from vptracker.prompts import VPTRACKER_SPECIAL_TOKENS
    return tuple(VPTRACKER_SPECIAL_TOKENS)


register_task(Task("vptracker_sot", _per_sequence(".txt"), lambda u, o: VPTrackerSOT(u.sequences[0], o), _write_sot,
                   _vp_tokens(), default_scale="abs"))
register_task(Task("omnipt_sot", _per_sequence(".txt"), lambda u, o: OmniSOT(u.sequences[0], o), _write_sot))
register_task(Task("omnipt_mot", _per_sequence(".txt"), lambda u, o: OmniMOT(u.sequences[0], o), _write_mot))
register_task(Task("omnipt_rmot", _rmot_units, lambda u, o: OmniReferring(u.key, u.sequences, u.language, o),
                   _write_rmot))
register_task(Task("omnipt_crmot", _crmot_units, lambda u, o: OmniReferring(u.key, u.sequences, u.language, o),
                   _write_crmot))
register_task(Task("omnipt_caption", lambda seqs: [Unit(s.name, [s], [f"{CAPTION_DIR}/{path_part(s.name)}.json"])
                                                   for s in seqs],
                   lambda u, o: CaptionTracker(u.sequences[0], o), _write_caption))


def images_per_request(task: str, options: TaskOptions) -> int:
    """The most images one request of ``task`` carries (vLLM reserves memory for that many)."""
    if task == "vptracker_sot":
        return 2
    if task == "omnipt_caption":
        return int(options.caption_frames)
    if task == "omnipt_crmot":  # at least two frames per view; CRTrack has up to 4 views
        return max(int(options.frames_per_sample), 8)
    return int(options.frames_per_sample)


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; expected one of {', '.join(sorted(TASKS))}")
    return TASKS[name]


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


def run_task(task: str | Task, engine: Engine, sequences: Iterable[Sequence], out_dir: str | Path,
             options: TaskOptions | dict | None = None, *, shard: tuple[int, int] | str | None = None,
             concurrency: int = 16, loop: str = "batched", progress: bool = True,
             merge_outputs: bool | None = None) -> RunSummary:
    """Tracks every unfinished unit of this shard and writes its files as soon as it finishes."""
    task = get_task(task) if isinstance(task, str) else task
    options = _resolve_options(options, engine)
    if options.box_scale is None:
        options = replace(options, box_scale=task.default_scale)
    shard = shard if isinstance(shard, tuple) else parse_shard(shard)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    all_units = task.units(list(sequences))
    _check_unique_outputs(all_units, task.name)
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
            tracker = task.tracker(unit, options)
            by_tracker[id(tracker)] = unit
            yield tracker

    bar = _progress_bar(len(units), summary.skipped, progress)

    def on_finish(tracker) -> None:
        unit = by_tracker.pop(id(tracker))
        write_responses_part(out_dir, unit.key, tracker.responses, task.name)
        task.write(tracker, unit, out_dir)   # outputs last: their existence marks the unit done
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


def _resolve_options(options: TaskOptions | dict | None, engine) -> TaskOptions:
    """Box geometry must be the engine's: family and pixel limits come from it unless set."""
    if isinstance(options, TaskOptions):
        resolved = options
    else:
        data = dict(options or {})
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
