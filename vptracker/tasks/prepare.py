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
    max_samples: null                  # caps every count above (smoke and scale runs; ``all`` stays all)

Writes ``<out>/<split>-<job>-NNNNN.jsonl`` and ``<out>/card.json`` (counts per job, task and
source, the resolved config, the seed, the damaged frames found when ``verify_frames`` is on, and
``contracts``: per tracking task, the :class:`~vptracker.tasks.contract.TaskContract` its rows were
written under; jobs that train one task under two contracts are refused before anything is read). Each (job, split) draws from its own seed derived from
the config seed, so adding a job does not change the rows of another; each shard draws from its
own generator, so the files are the same whatever the number of workers.

Every setting is checked before any dataset is read (:func:`check_config`: unknown keys, types,
registered tasks/datasets/options, roots that exist, an output folder that is empty or a previous
prepare output). Shards are written to ``<out>/.prepare-partial/`` and moved into place at the
end; the card is written last, and shards the new card does not list are removed, so a killed
run never leaves a card that disagrees with the files, and a smaller rerun leaves no old shards
for the stage configs' ``train-*.jsonl`` globs to pick up. While ``.prepare-partial`` exists the
folder is unfinished, and ``vptracker train`` refuses it.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import zlib
from pathlib import Path
from typing import Any

from vptracker.config import ConfigError
from vptracker.datasets import available, load
from vptracker.datasets.base import Sequence
from vptracker.datasets.frames import mark_damaged
from vptracker.tasks.base import ShardWriter, accepted_options, generate, get_task
from vptracker.tasks.contract import merge_contracts
from vptracker.tasks.lengths import LengthBudget

STAGING = ".prepare-partial"
CARD = "card.json"
SHARD = re.compile(r".+-\d{5}\.jsonl")
TOP_KEYS = {"seed", "out", "shard_size", "workers", "verify_frames", "roots", "jobs", "task_options",
            "length_budget", "max_samples"}
JOB_KEYS = {"task", "options", "sources", "samples"}
SOURCE_KEYS = {"dataset", "root", "split", "ratio", "options"}


def _require(mapping: dict, key: str, where: str) -> Any:
    if not isinstance(mapping, dict) or key not in mapping or mapping[key] in (None, ""):
        raise ConfigError(f"data config: {where} needs {key!r}")
    return mapping[key]


def job_seed(seed: int, job: str, split: str) -> int:
    return zlib.crc32(f"{seed}:{job}:{split}".encode()) ^ (int(seed) & 0xFFFFFFFF)


def _count(value: Any, where: str) -> int | None:
    if isinstance(value, str) and value.strip().lower() == "all":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"data config: {where}: expected a sample count >= 0 or 'all', got {value!r}")
    return value


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
            raise ConfigError(f"data config: {where} needs 'root' (or a top-level roots.{dataset})")
        options = dict(spec.get("options") or {})
        key = json.dumps([dataset, str(root), spec.get("split"), options], sort_keys=True, default=str)
        if key not in self._loaded:
            if not Path(root).expanduser().is_dir():
                raise ConfigError(f"data config: {where}.root: folder {root} does not exist")
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


def _expect(ok: bool, errors: list[str], where: str, expected: str, value: Any) -> bool:
    if not ok:
        errors.append(f"data config: {where}: expected {expected}, got {value!r}")
    return ok


def _is_int(value: Any, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def check_config(config: dict) -> None:
    """Checks every setting before anything is read or written; raises :class:`ConfigError` with
    one line per problem (key, what was expected, what was given)."""
    errors: list[str] = []
    for key in config:
        if key not in TOP_KEYS:
            errors.append(f"data config: unknown key {key!r}; expected one of {sorted(TOP_KEYS)}")
    _expect(isinstance(config.get("out"), str) and config["out"] != "", errors, "out", "an output folder",
            config.get("out"))
    _expect(_is_int(config.get("seed", 0), 0), errors, "seed", "an integer >= 0", config.get("seed"))
    _expect(_is_int(config.get("shard_size", 1), 1), errors, "shard_size", "an integer >= 1",
            config.get("shard_size"))
    workers = config.get("workers", "auto")
    _expect(workers == "auto" or _is_int(workers, 1), errors, "workers", "'auto' or an integer >= 1", workers)
    _expect(isinstance(config.get("verify_frames", False), bool), errors, "verify_frames", "true or false",
            config.get("verify_frames"))
    cap = config.get("max_samples")
    _expect(cap is None or _is_int(cap, 1), errors, "max_samples", "null or an integer >= 1", cap)
    roots = config.get("roots") or {}
    if _expect(isinstance(roots, dict), errors, "roots", "a mapping of dataset -> folder", roots):
        for name, root in roots.items():
            _expect(isinstance(root, str) and root != "", errors, f"roots.{name}", "a folder", root)
    shared = config.get("task_options") or {}
    _expect(isinstance(shared, dict), errors, "task_options", "a mapping of option -> value", shared)
    jobs = config.get("jobs")
    if _expect(isinstance(jobs, dict) and bool(jobs), errors, "jobs", "a non-empty mapping of jobs", jobs):
        for job_name, job in jobs.items():
            _check_job(job_name, job, roots if isinstance(roots, dict) else {},
                       shared if isinstance(shared, dict) else {}, errors)
    if errors:
        raise ConfigError("\n".join(errors))
    job_contracts(config)


def job_contracts(config: dict) -> dict:
    """``{tracking task: contract}`` over every job (the card's ``contracts``); two jobs training one
    task under different contracts (e.g. two box scales) are a :class:`ConfigError`."""
    contracts: dict = {}
    shared = config.get("task_options") or {}
    for job_name, job in config["jobs"].items():
        contract = get_task(job["task"], **_job_options(job, shared)).contract()
        if contract is not None:
            merge_contracts(contracts, {contract.task: contract}, f"data config: jobs.{job_name}")
    return contracts


def _check_job(job_name: str, job: Any, roots: dict, shared: dict, errors: list[str]) -> None:
    where = f"jobs.{job_name}"
    if not _expect(isinstance(job, dict), errors, where, "a mapping with task, sources and samples", job):
        return
    for key in job:
        if key not in JOB_KEYS:
            errors.append(f"data config: {where}: unknown key {key!r}; expected one of {sorted(JOB_KEYS)}")
    options = job.get("options") or {}
    if _expect(isinstance(options, dict), errors, f"{where}.options", "a mapping", options):
        try:
            get_task(job.get("task"), **_job_options(job, shared))
        except (KeyError, ValueError, TypeError) as err:
            errors.append(f"data config: {where}: {err.args[0] if err.args else err}")
    sources = job.get("sources")
    if _expect(isinstance(sources, dict) and bool(sources), errors, f"{where}.sources", "a non-empty mapping",
               sources):
        for name, spec in sources.items():
            _check_source(f"{where}.sources.{name}", spec, roots, errors)
    samples = job.get("samples")
    if _expect(isinstance(samples, dict) and bool(samples), errors, f"{where}.samples",
               "a mapping of output split -> count or 'all'", samples):
        for split, value in samples.items():
            try:
                _count(value, f"{where}.samples.{split}")
            except ConfigError as err:
                errors.append(str(err))


def _check_source(where: str, spec: Any, roots: dict, errors: list[str]) -> None:
    if not _expect(isinstance(spec, dict), errors, where, "a mapping with dataset and root", spec):
        return
    for key in spec:
        if key not in SOURCE_KEYS:
            errors.append(f"data config: {where}: unknown key {key!r}; expected one of {sorted(SOURCE_KEYS)}")
    dataset = spec.get("dataset")
    if not _expect(dataset in available(), errors, f"{where}.dataset", f"one of {available()}", dataset):
        return
    ratio = spec.get("ratio", 1.0)
    _expect(isinstance(ratio, (int, float)) and not isinstance(ratio, bool) and 0 < ratio < float("inf"), errors,
            f"{where}.ratio", "a number > 0", ratio)
    _expect(isinstance(spec.get("options") or {}, dict), errors, f"{where}.options", "a mapping", spec.get("options"))
    root = spec.get("root") or roots.get(dataset)
    if not root:
        errors.append(f"data config: {where} needs 'root' (or a top-level roots.{dataset})")
    elif not Path(str(root)).expanduser().is_dir():
        key = f"{where}.root" if spec.get("root") else f"roots.{dataset}"
        errors.append(f"data config: {key}: folder {root} does not exist")


def card_files(card_path: Path) -> set[str] | None:
    """The shard names a prepare card lists, or None when there is no such card."""
    try:
        card = json.loads(Path(card_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    outputs = card.get("outputs") if isinstance(card, dict) else None
    if not isinstance(outputs, dict):
        return None
    return {name for split in outputs.values() for job in split.values() for name in job.get("files", [])}


def check_out(out: Path) -> None:
    """The output folder must be new, empty, or a previous prepare output (card, shards, staging)."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"data config: out: {out} exists and is not a folder")
    if not out.exists():
        return
    entries = sorted(p.name for p in out.iterdir())
    foreign = [name for name in entries if name not in (CARD, STAGING) and not SHARD.fullmatch(name)]
    if foreign:
        raise ConfigError(f"data config: out: {out} is not empty and not a previous `vptracker prepare` output "
                          f"(it holds {foreign[:3]}); choose an empty or new folder")
    shards = [name for name in entries if SHARD.fullmatch(name)]
    if shards and CARD not in entries and STAGING not in entries:
        raise ConfigError(f"data config: out: {out} holds shards ({shards[0]} ...) but no {CARD}; they were not "
                          "written by `vptracker prepare`: choose an empty or new folder")


def _commit(out: Path, staging: Path, card: dict) -> list[str]:
    """Moves the new shards into ``out``, removes the ones the new card does not list, writes the card
    last; returns the removed names. Until the end, ``out/.prepare-partial`` marks the folder unfinished."""
    new = {name for split in card["outputs"].values() for job in split.values() for name in job["files"]}
    (staging / CARD).write_text(json.dumps(card, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    (out / CARD).unlink(missing_ok=True)
    removed = sorted(p.name for p in out.iterdir() if SHARD.fullmatch(p.name) and p.name not in new)
    for name in removed:
        (out / name).unlink()
    for name in sorted(new):
        os.replace(staging / name, out / name)
    os.replace(staging / CARD, out / CARD)
    shutil.rmtree(staging)
    return removed


def prepare(config: dict, progress: bool | None = None) -> dict:
    """Runs every job of ``config``; returns the card it writes to ``<out>/card.json``."""
    check_config(config)
    out = Path(config["out"])
    check_out(out)
    seed = int(config.get("seed", 0))
    shard_size = int(config.get("shard_size", 100_000))
    workers = config.get("workers", "auto")
    workers = (os.cpu_count() or 1) if workers == "auto" else int(workers)
    jobs = config["jobs"]
    staging = out / STAGING
    if staging.exists():  # left by a killed run: nothing in it was ever listed by a card
        shutil.rmtree(staging)
    cache = SourceCache(config.get("roots"), bool(config.get("verify_frames", False)))
    card: dict[str, Any] = {"seed": seed, "config": config, "outputs": {}, "totals": {},
                            "contracts": {task: c.to_dict() for task, c in sorted(job_contracts(config).items())}}
    shared_options = dict(config.get("task_options") or {})
    for job_name, job in jobs.items():
        where = f"jobs.{job_name}"
        task = get_task(job["task"], **_job_options(job, shared_options))
        indices, ratios = {}, {}
        for source_name, spec in job["sources"].items():
            swhere = f"{where}.sources.{source_name}"
            sequences = cache.get(spec, swhere)  # a reader's DatasetFormatError names its own file and line
            try:
                indices[source_name] = task.index(sequences)
            except ValueError as err:  # e.g. no sequence long enough for the task's frames
                raise ConfigError(f"data config: {swhere}: {err}") from None
            ratios[source_name] = float(spec.get("ratio", 1.0))
        for split, value in job["samples"].items():
            num = _count(value, f"{where}.samples.{split}")
            if num is not None and config.get("max_samples") is not None:
                num = min(num, int(config["max_samples"]))
            writer = ShardWriter(staging, f"{split}-{job_name}", shard_size)
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
    staging.mkdir(parents=True, exist_ok=True)  # a config whose jobs wrote nothing still gets a card
    removed = _commit(out, staging, card)
    if removed:
        print(f"prepare: removed {len(removed)} shard(s) of an earlier run that the new card does not list "
              f"({', '.join(removed[:3])}{' ...' if len(removed) > 3 else ''})")
    return card


def direct_config(dataset: str, root: str, task: str, num_samples: str, seed: int, out: str,
                  split: str | None = None, output_split: str = "train", options: dict | None = None,
                  dataset_options: dict | None = None, shard_size: int = 100_000) -> dict:
    """The one-job config behind ``vptracker prepare --dataset ... --task ...``."""
    source = {"dataset": dataset, "root": root, "split": split, "options": dataset_options or {}}
    return {"seed": seed, "out": out, "shard_size": shard_size,
            "jobs": {task: {"task": task, "options": options or {}, "sources": {dataset: source},
                            "samples": {output_split: num_samples}}}}
