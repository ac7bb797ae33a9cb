"""Task builders: the registry, mixing sources by ratio, and streaming rows to sharded JSONL.

A task turns :class:`~vptracker.datasets.Sequence` objects into ms-swift rows
(``{"messages": [...], "images": [...], ...}``). It does so in two steps so that a million samples
cost one pass over the annotations, not one per sample: :meth:`Task.index` builds a compact,
per-source index once, then :meth:`Task.sample` draws one row from it (random tasks) or
:meth:`Task.enumerate` walks it once (tasks with a natural list of units, e.g. one caption per
video). Rows are written as they are produced; nothing keeps them in memory.

Determinism: the source of every sample is fixed up front by exact ratio counts and a seeded
permutation, and each shard's rows are drawn from a generator seeded by ``(seed, shard)``, so the
same seed and shard size write the same bytes however many worker processes build the shards.
"""
from __future__ import annotations

import itertools
import random
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import msgspec
import numpy as np

from vptracker.datasets.base import Sequence
from vptracker.registry import Registry
from vptracker.tasks.options import NoOptions, defaults_of, make_options
from vptracker.tasks.solutions import check_solution

# Filled when the package is imported: Python runs vptracker/tasks/__init__.py, which imports every task
# module, before any of its modules (this one included), so a lookup below sees every task.
_TASKS: Registry[type[Task]] = Registry("task")


def register_task(*names: str):
    """Registers a task class under ``names``; a name already taken is an error, not an overwrite."""
    def deco(cls):
        _TASKS.register(*names)(cls)
        cls.name = names[0]
        if cls.trackable and "serves" not in vars(cls):   # a trackable task's rows train itself
            cls.serves = cls.name
        return cls
    return deco


def tasks() -> list[str]:
    return sorted(_TASKS)


def trackable_tasks() -> list[str]:
    """The tasks that have a tracking side (``vptracker infer --task``)."""
    return sorted(name for name, cls in _TASKS.items() if cls.trackable)


def accepted_options(name: str) -> dict[str, Any]:
    """The options (with defaults) the task ``name`` accepts; empty for an unknown name."""
    return dict(_TASKS[name].defaults) if name in _TASKS else {}


def get_task(name: str, **options) -> Task:
    """THE task lookup, for training (the builder) and inference (``.contract()``)."""
    return _TASKS.get(name)(**options)


class Task:
    """Base class: ``Options`` (a dataclass, :mod:`vptracker.tasks.options`) declares every option a
    task accepts with its type and default; ``defaults`` lists them. The values are converted and
    checked when the task is made (``self.opts``, also set as attributes), so builders use them as is.

    A trackable task sets ``trackable = True`` (its tracking side is registered in
    :mod:`vptracker.infer.sides`); a training-only task (pretexts, grounding, GRPO variants) does not. A task
    whose rows train a tracking task (``serves``: itself, or e.g. ``omnipt_sot`` for
    ``omnipt_sot_grpo``) defines ``resolve_contract()``, what its rows and that tracking loop agree on.
    """

    name = ""
    Options: ClassVar[type] = NoOptions
    defaults: ClassVar[dict[str, Any]] = {}
    trackable: ClassVar[bool] = False
    serves: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.defaults = defaults_of(cls.Options)

    def __init__(self, **options):
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            raise ValueError(f"task {self.name}: unknown option(s) {unknown}; accepted: {sorted(self.defaults)}")
        self.opts = make_options(self.Options, options, self.name)
        self.options = {key: getattr(self.opts, key) for key in self.defaults}
        for key, value in self.options.items():
            setattr(self, key, value)
        self.validate()

    def validate(self) -> None:
        """Checks option values; raises ``ValueError`` naming the option."""

    def contract(self):
        """The :class:`~vptracker.tasks.contract.TaskContract` of the tracking task these rows train
        (``serves``) under this task's options, or None when they train none."""
        return None if self.serves is None else self.resolve_contract()

    def index(self, sequences: list[Sequence]) -> Any:
        """A compact index of one source's sequences; raises ``ValueError`` if nothing is usable."""
        return sequences

    def sample(self, index: Any, rng: random.Random) -> dict | list[dict] | None:
        """One random row from the index (or a list of rows drawn together, such as the per-query
        GRPO rows of one MOT dialogue), or ``None`` to ask for another draw."""
        raise ValueError(f"task {self.name} writes each unit once; use num_samples: all")

    def enumerate(self, index: Any) -> Iterator[dict]:
        """Every natural row of the index once (used when the sample count is ``all``)."""
        raise ValueError(f"task {self.name} draws random samples; give it a sample count")


def chat(user: str, assistant: str | None) -> list[dict]:
    messages = [{"role": "user", "content": user}]
    if assistant is not None:
        messages.append({"role": "assistant", "content": assistant})
    return messages


def ratio_counts(ratios: dict[str, float], total: int) -> dict[str, int]:
    """Exact per-source counts for ``total`` samples (largest remainder; ties by source order)."""
    names = list(ratios)
    weights = np.asarray([float(ratios[n]) for n in names])
    if (weights < 0).any() or weights.sum() <= 0:
        raise ValueError(f"source ratios must be non-negative and not all zero, got {ratios}")
    raw = weights / weights.sum() * total
    counts = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - counts), kind="stable")[: total - counts.sum()]:
        counts[i] += 1
    return dict(zip(names, counts.tolist()))


MAX_FAILED_DRAWS = 1000
DEFAULT_SHARD_SIZE = 100_000


def source_order(indices: dict[str, Any], ratios: dict[str, float], num_samples: int, seed: int) -> tuple[list[str], np.ndarray]:
    """The source of every sample: exact ratio counts in a seeded random order."""
    counts = ratio_counts({s: ratios.get(s, 1.0) for s in indices}, num_samples)
    names = list(indices)
    order = np.repeat(np.arange(len(names), dtype=np.int16), [counts[n] for n in names])
    np.random.default_rng(seed).shuffle(order)
    return names, order


def shard_rng(seed: int, shard: int) -> random.Random:
    """Each shard draws from its own generator, so shards can be built in any order or in parallel."""
    return random.Random(f"{seed}:{shard}")


def draw(task: Task, indices: dict[str, Any], names: list[str], codes: np.ndarray,
         rng: random.Random, budget=None) -> Iterator[tuple[str, dict]]:
    """Rows for the source ``codes``; ``budget`` (a :class:`~vptracker.tasks.lengths.LengthBudget`)
    counts each and applies its policy to rows over ``max_length``."""
    for code in codes.tolist():
        source = names[code]
        for _ in range(MAX_FAILED_DRAWS):
            row = task.sample(indices[source], rng)
            if row is not None:
                break
        else:
            raise ValueError(f"task {task.name}: {MAX_FAILED_DRAWS} draws from source {source!r} "
                             "produced no sample; its sequences do not fit the task's options")
        if budget is not None:
            row = budget.apply(task, row, lambda smaller, index=indices[source]: smaller.sample(index, rng))
        for one in (row if isinstance(row, list) else [row]):
            yield source, one


def generate(task: Task, indices: dict[str, Any], ratios: dict[str, float], num_samples: int | None,
             seed: int, shard_size: int = DEFAULT_SHARD_SIZE, budget=None) -> Iterator[tuple[str, dict]]:
    """``(source, row)`` pairs: ``num_samples`` random draws mixed by ratio, or every unit once.

    The rows equal those :meth:`ShardWriter.write_random` writes with the same ``shard_size``.
    """
    if num_samples is None:
        for source, index in indices.items():
            if budget is not None and "frames" in task.options and hasattr(task, "row"):  # captions: row(unit)
                for unit in index:
                    yield source, budget.apply(task, task.row(unit), lambda smaller, unit=unit: smaller.row(unit))
                continue
            for row in task.enumerate(index):
                yield source, row if budget is None else budget.apply(task, row, None)
        return
    names, order = source_order(indices, ratios, num_samples, seed)
    for shard, start in enumerate(range(0, num_samples, shard_size)):
        yield from draw(task, indices, names, order[start:start + shard_size], shard_rng(seed, shard), budget)


def check_grpo_row(row: dict, path: Path, line: int) -> None:
    """Refuses a GRPO row whose ``solution`` the rewards could not score, naming file and line
    (ms-swift does not catch reward errors: one such row would end a training run)."""
    try:
        check_solution(row["solution"], row.get("reward_matching") or "order")
    except ValueError as err:
        raise ValueError(f"{path}:{line}: {err}") from None


def write_jsonl(path: Path, rows: Iterable[tuple[str, dict]], limit: int | None = None) -> dict[str, int]:
    """Writes up to ``limit`` rows to ``path``, buffered; returns the count per source."""
    encode = msgspec.json.Encoder().encode
    counts: dict[str, int] = {}
    with open(path, "wb") as handle:
        buffer: list[bytes] = []
        for line, (source, row) in enumerate(itertools.islice(rows, limit), 1):
            if "solution" in row:
                check_grpo_row(row, path, line)
            buffer.append(encode(row) + b"\n")
            counts[source] = counts.get(source, 0) + 1
            if len(buffer) >= 4096:
                handle.write(b"".join(buffer))
                buffer.clear()
        handle.write(b"".join(buffer))
    return counts


# Shared with forked workers (copy-on-write) instead of pickling a million-frame index per shard.
_WORK: dict[str, Any] = {}


def _write_shard(shard: int) -> tuple[str, dict[str, int], Any]:
    w = _WORK
    start = shard * w["shard_size"]
    codes = w["order"][start:start + w["shard_size"]]
    budget = w["budget"].fresh() if w.get("budget") is not None else None  # counts return to the parent
    rows = draw(w["task"], w["indices"], w["names"], codes, shard_rng(w["seed"], shard), budget)
    name = f"{w['prefix']}-{shard:05d}.jsonl"
    return name, write_jsonl(w["out"] / name, rows), budget


def _merge(counts: dict[str, int], more: dict[str, int]) -> None:
    for source, n in more.items():
        counts[source] = counts.get(source, 0) + n


def _progress(total: int | None, desc: str, unit: str, progress: bool | None):
    from tqdm import tqdm

    show = sys.stderr.isatty() if progress is None else progress
    return tqdm(total=total, desc=desc, unit=unit, disable=not show)


@dataclass
class ShardWriter:
    """Writes rows to ``<out>/<prefix>-00000.jsonl``, ``-00001``... with ``shard_size`` rows each."""

    out: Path
    prefix: str
    shard_size: int = DEFAULT_SHARD_SIZE

    def write_random(self, task: Task, indices: dict[str, Any], ratios: dict[str, float], num_samples: int,
                     seed: int, workers: int = 1, progress: bool | None = None,
                     budget=None) -> tuple[dict[str, int], list[str]]:
        """``num_samples`` random rows, one shard per job, on ``workers`` forked processes;
        ``budget`` gathers every shard's length counts."""
        import multiprocessing

        self.out.mkdir(parents=True, exist_ok=True)
        names, order = source_order(indices, ratios, num_samples, seed)
        _WORK.update(task=task, indices=indices, names=names, order=order, seed=seed, out=self.out,
                     prefix=self.prefix, shard_size=self.shard_size, budget=budget)
        shards = range((num_samples + self.shard_size - 1) // self.shard_size)
        counts: dict[str, int] = {}
        files: list[str] = []
        try:
            with _progress(len(shards), self.prefix, "shard", progress) as bar:
                if workers > 1 and len(shards) > 1:
                    with multiprocessing.get_context("fork").Pool(min(workers, len(shards))) as pool:
                        results = pool.imap(_write_shard, shards)
                        for name, shard_counts, shard_budget in results:
                            files.append(name)
                            _merge(counts, shard_counts)
                            if budget is not None:
                                budget.merge(shard_budget)
                            bar.update(1)
                else:
                    for shard in shards:
                        name, shard_counts, shard_budget = _write_shard(shard)
                        files.append(name)
                        _merge(counts, shard_counts)
                        if budget is not None:
                            budget.merge(shard_budget)
                        bar.update(1)
        finally:
            _WORK.clear()
        return counts, files

    def write(self, rows: Iterable[tuple[str, dict]], progress: bool | None = None) -> tuple[dict[str, int], list[str]]:
        """Streams ``rows`` (e.g. every unit of an enumerating task) into consecutive shards."""
        self.out.mkdir(parents=True, exist_ok=True)
        rows = iter(rows)
        counts: dict[str, int] = {}
        files: list[str] = []
        with _progress(None, self.prefix, "shard", progress) as bar:
            while True:
                name = f"{self.prefix}-{len(files):05d}.jsonl"
                shard_counts = write_jsonl(self.out / name, rows, self.shard_size)
                if not shard_counts and files:
                    (self.out / name).unlink()
                    break
                files.append(name)
                _merge(counts, shard_counts)
                bar.update(1)
                if sum(shard_counts.values()) < self.shard_size:
                    break
        return counts, files
