"""Task builders: the registry, mixing sources by ratio, and streaming rows to sharded JSONL.

A task turns :class:`~vptracker.datasets.Sequence` objects into ms-swift rows
(``{"messages": [...], "images": [...], ...}``). It does so in two steps so that a million samples
cost one pass over the annotations, not one per sample: :meth:`Task.index` builds a compact,
per-source index once, then :meth:`Task.sample` draws one row from it (random tasks) or
:meth:`Task.enumerate` walks it once (tasks with a natural list of units, e.g. one caption per
video). Rows are written as they are produced; nothing keeps them in memory.

Determinism: the source of every sample is fixed up front by exact ratio counts and a seeded
permutation, and each row is drawn from one ``random.Random(seed)``, so the same seed writes the
same bytes.
"""
from __future__ import annotations

import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import msgspec
import numpy as np

from vptracker.datasets.base import Sequence

_TASKS: dict[str, type["Task"]] = {}


def register_task(*names: str):
    def deco(cls):
        for name in names:
            _TASKS[name] = cls
        cls.name = names[0]
        return cls
    return deco


def tasks() -> list[str]:
    import vptracker.tasks  # noqa: F401  (importing the package registers every task)
    return sorted(_TASKS)


def get_task(name: str, **options) -> "Task":
    import vptracker.tasks  # noqa: F401
    if name not in _TASKS:
        raise KeyError(f"unknown task {name!r}; registered: {', '.join(sorted(_TASKS))}")
    return _TASKS[name](**options)


class Task:
    """Base class: ``defaults`` lists every option a task accepts, with its default value."""

    name = ""
    defaults: dict[str, Any] = {}

    def __init__(self, **options):
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            raise ValueError(f"task {self.name}: unknown option(s) {unknown}; accepted: {sorted(self.defaults)}")
        self.options = {**self.defaults, **options}
        for key, value in self.options.items():
            setattr(self, key, value)
        self.validate()

    def validate(self) -> None:
        """Checks option values; raises ``ValueError`` naming the option."""

    def index(self, sequences: list[Sequence]) -> Any:
        """A compact index of one source's sequences; raises ``ValueError`` if nothing is usable."""
        return sequences

    def sample(self, index: Any, rng: random.Random) -> dict | None:
        """One random row from the index, or ``None`` to ask for another draw."""
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


def generate(task: Task, indices: dict[str, Any], ratios: dict[str, float], num_samples: int | None,
             seed: int) -> Iterator[tuple[str, dict]]:
    """``(source, row)`` pairs: ``num_samples`` random draws mixed by ratio, or every unit once."""
    if num_samples is None:
        for source, index in indices.items():
            for row in task.enumerate(index):
                yield source, row
        return
    counts = ratio_counts({s: ratios.get(s, 1.0) for s in indices}, num_samples)
    names = list(indices)
    order = np.repeat(np.arange(len(names), dtype=np.int16), [counts[n] for n in names])
    np.random.default_rng(seed).shuffle(order)
    rng = random.Random(seed)
    for code in order.tolist():
        source = names[code]
        for _ in range(MAX_FAILED_DRAWS):
            row = task.sample(indices[source], rng)
            if row is not None:
                break
        else:
            raise ValueError(f"task {task.name}: {MAX_FAILED_DRAWS} draws from source {source!r} "
                             "produced no sample; its sequences do not fit the task's options")
        yield source, row


@dataclass
class ShardWriter:
    """Writes rows to ``<out>/<prefix>-00000.jsonl``, ``-00001``... with ``shard_size`` rows each."""

    out: Path
    prefix: str
    shard_size: int = 100_000

    def write(self, rows: Iterable[tuple[str, dict]], total: int | None = None,
              progress: bool | None = None) -> tuple[dict[str, int], list[str]]:
        """Streams ``rows``; returns the count per source and the shard file names."""
        from tqdm import tqdm

        self.out.mkdir(parents=True, exist_ok=True)
        encode = msgspec.json.Encoder().encode
        counts: dict[str, int] = {}
        files: list[str] = []
        handle = None
        n = 0
        show = sys.stderr.isatty() if progress is None else progress
        bar = tqdm(total=total, desc=self.prefix, unit="rows", disable=not show, mininterval=1.0)
        try:
            buffer: list[bytes] = []
            for source, row in rows:
                if n % self.shard_size == 0:
                    if handle is not None:
                        handle.write(b"".join(buffer))
                        buffer.clear()
                        handle.close()
                    files.append(f"{self.prefix}-{len(files):05d}.jsonl")
                    handle = open(self.out / files[-1], "wb")
                buffer.append(encode(row) + b"\n")
                if len(buffer) >= 4096:
                    handle.write(b"".join(buffer))
                    buffer.clear()
                counts[source] = counts.get(source, 0) + 1
                n += 1
                if n % 4096 == 0:
                    bar.update(4096)
            if handle is not None:
                handle.write(b"".join(buffer))
            bar.update(n % 4096)
        finally:
            if handle is not None:
                handle.close()
            bar.close()
        return counts, files
