"""The data-preparation driver: a config of jobs -> sharded ms-swift JSONL plus a dataset card.

Config (``configs/data/*.yaml``; every path comes from the config or a ``key=value`` override)::

    seed: 0
    out: data/prepared/vptracker
    shard_size: 100000
    workers: auto                      # processes building shards (the output does not depend on it)
    verify_frames: false               # decode every frame once; damaged ones are skipped and listed
    roots: {tnl2k: /data/TNL2K}        # a source without ``root`` uses roots.<dataset>
    jobs:
      <job>:
        task: vptracker_sot              # a registered task
        options: {scale: abs}            # task options (see the task's ``defaults``)
        sources:                         # a mapping, so that ``jobs.<job>.sources.tnl2k.root=...`` works
          tnl2k: {dataset: tnl2k, root: /data/TNL2K, split: train, ratio: 7, options: {}}
        samples: {train: 1000000, val: 10000}   # per output split: a count, or ``all`` (each unit once)

Writes ``<out>/<split>-<job>-NNNNN.jsonl`` and ``<out>/card.json`` (counts per job, task and
source, the resolved config, the seed, and the damaged frames found when ``verify_frames`` is on). Each (job, split) draws from its own seed derived from
the config seed, so adding a job does not change the rows of another; each shard draws from its
own generator, so the files are the same whatever the number of workers.
"""
from __future__ import annotations

import json
import os
import zlib
from pathlib import Path
from typing import Any

from vptracker.datasets import load
from vptracker.datasets.base import Sequence
from vptracker.datasets.frames import mark_damaged
from vptracker.tasks.base import ShardWriter, accepted_options, generate, get_task
from vptracker.tasks.lengths import LengthBudget


def _require(mapping: dict, key: str, where: str) -> Any:
    if not isinstance(mapping, dict) or key not in mapping or mapping[key] in (None, ""):
        raise ValueError(f"data config: {where} needs {key!r}")
    return mapping[key]


def job_seed(seed: int, job: str, split: str) -> int:
    return zlib.crc32(f"{seed}:{job}:{split}".encode()) ^ (int(seed) & 0xFFFFFFFF)


def _count(value: Any, where: str) -> int | None:
    if isinstance(value, str) and value.strip().lower() == "all":
        return None
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"data config: {where} must be a sample count or 'all', got {value!r}") from None
    if n < 0:
        raise ValueError(f"data config: {where} must be >= 0, got {n}")
    return n


class SourceCache:
    """Loads each (dataset, root, split, options) once even when several jobs use it."""

    def __init__(self, roots: dict | None = None, verify_frames: bool = False):
        self._loaded: dict[str, list[Sequence]] = {}
        self.roots = roots or {}
        self.verify_frames = verify_frames
        self.damaged: list[str] = []

    def get(self, spec: dict, where: str) -> list[Sequence]:
        dataset = _require(spec, "dataset", where)
        root = spec.get("root") or self.roots.get(dataset)
        if not root:
            raise ValueError(f"data config: {where} needs 'root' (or a top-level roots.{dataset})")
        options = dict(spec.get("options") or {})
        key = json.dumps([dataset, str(root), spec.get("split"), options], sort_keys=True, default=str)
        if key not in self._loaded:
            if not Path(root).exists():
                raise FileNotFoundError(f"data config: {where}.root {root} does not exist")
            # Rows name frames by absolute path, so training can run from any working directory.
            seqs = load(dataset, Path(root).expanduser().resolve(), split=spec.get("split"), **options)
            if self.verify_frames:
                for seq in seqs:
                    self.damaged += mark_damaged(seq)
            self._loaded[key] = seqs
        return self._loaded[key]


def _job_options(job: dict, shared: dict) -> dict:
    """A job's options under the config's ``task_options`` (e.g. ``task_options.frames=8`` for the
    frames-per-sample ablation), each applied only where the job's task accepts it."""
    options = dict(job.get("options") or {})
    accepted = accepted_options(job.get("task"))
    options.update({k: v for k, v in shared.items() if k in accepted})
    return options


def prepare(config: dict, progress: bool | None = None) -> dict:
    """Runs every job of ``config``; returns the card it writes to ``<out>/card.json``."""
    out = Path(_require(config, "out", "the top level"))
    seed = int(config.get("seed", 0))
    shard_size = int(config.get("shard_size", 100_000))
    workers = config.get("workers", "auto")
    workers = (os.cpu_count() or 1) if workers == "auto" else int(workers)
    jobs = _require(config, "jobs", "the top level")
    cache = SourceCache(config.get("roots"), bool(config.get("verify_frames", False)))
    card: dict[str, Any] = {"seed": seed, "config": config, "outputs": {}, "totals": {}}
    shared_options = dict(config.get("task_options") or {})
    for job_name, job in jobs.items():
        where = f"jobs.{job_name}"
        task = get_task(_require(job, "task", where), **_job_options(job, shared_options))
        sources = _require(job, "sources", where)
        indices, ratios = {}, {}
        for source_name, spec in sources.items():
            swhere = f"{where}.sources.{source_name}"
            try:
                indices[source_name] = task.index(cache.get(spec, swhere))
            except ValueError as err:
                raise ValueError(f"{swhere}: {err}") from None
            ratios[source_name] = float(spec.get("ratio", 1.0))
        for split, value in (_require(job, "samples", where) or {}).items():
            num = _count(value, f"{where}.samples.{split}")
            writer = ShardWriter(out, f"{split}-{job_name}", shard_size)
            budget = LengthBudget.from_config(config.get("length_budget"), task)  # see tasks/lengths.py
            if num is None:
                counts, files = writer.write(generate(task, indices, ratios, None, 0, budget=budget), progress)
            else:
                counts, files = writer.write_random(task, indices, ratios, num, job_seed(seed, job_name, split),
                                                    workers, progress, budget)
            card.setdefault("lengths", {}).setdefault(split, {})[job_name] = budget.finish(f"{where}.samples.{split}")
            card["outputs"].setdefault(split, {})[job_name] = {"task": task.name, "counts": counts,
                                                              "files": files, "rows": sum(counts.values())}
            per_task = card["totals"].setdefault(split, {})
            per_task[task.name] = per_task.get(task.name, 0) + sum(counts.values())
    card["damaged_frames"] = cache.damaged
    out.mkdir(parents=True, exist_ok=True)
    (out / "card.json").write_text(json.dumps(card, indent=2, sort_keys=True, default=str) + "\n")
    return card


def direct_config(dataset: str, root: str, task: str, num_samples: str, seed: int, out: str,
                  split: str | None = None, output_split: str = "train", options: dict | None = None,
                  dataset_options: dict | None = None, shard_size: int = 100_000) -> dict:
    """The one-job config behind ``vptracker prepare --dataset ... --task ...``."""
    source = {"dataset": dataset, "root": root, "split": split, "options": dataset_options or {}}
    return {"seed": seed, "out": out, "shard_size": shard_size,
            "jobs": {task: {"task": task, "options": options or {}, "sources": {dataset: source},
                            "samples": {output_split: num_samples}}}}
