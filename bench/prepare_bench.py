"""Benchmark: 1,000,000 VPTracker pairs from a TNL2K-scale index, and OmniPT stage-3 MOT rows, streamed to sharded JSONL.

The index is generated in memory (2,000 sequences, 1.24 M frames, random-walk boxes with absent
stretches, TNL2K-like image sizes and language), so the benchmark measures the builder and the
writer, not a disk of images. Target (issue #3): at most 60 s wall on 2 cores and 2 GB peak RSS,
with memory that does not grow with the sample count. The last line printed is
``samples_per_s=<float> peak_rss_mb=<float>``.

    .venv/bin/python bench/prepare_bench.py [--samples 1000000] [--sequences 2000] [--frames 1240000]

OmniPT (``--omnipt``; ``--omnipt-only`` skips VPTracker's part): the stage-3 MOT job with its length
budget and the real Qwen tokenizer on a DanceTrack-layout set of 112x80 frames, one process each
(``bench/omnipt_rows.py``), timed for the code of ``--before`` (unpacked with ``git archive``: the
commit before rows were counted once and in batches) and for this checkout, in turn, in one
invocation, so that both see the same machine. It prints rows per CPU second (one core) for each,
checks that both wrote the same bytes, and compares the memory kept after ``--omnipt-rows`` and ten
times as many rows. The last line is ``omnipt_rows_per_cpu_s before=<f> after=<f>``.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vptracker.datasets.base import Sequence, Track
from vptracker.tasks import get_task
from vptracker.tasks.base import ShardWriter


def rss_mb(workers: int = 0) -> float:
    """Peak RSS of this process plus ``workers`` times the largest worker's: an upper bound, since
    the forked workers share the index pages with this process and those count twice here."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + workers * child) / 1024.0


def cpu_s() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def synthetic_index(n_sequences: int, n_frames: int, seed: int = 0) -> list[Sequence]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(200, 1040, n_sequences)
    lengths = np.maximum((lengths * n_frames / lengths.sum()).astype(int), 2)
    lengths[-1] += n_frames - lengths.sum()
    sizes = [(1280, 720), (1920, 1080), (640, 480), (960, 540)]
    seqs = []
    for i, n in enumerate(lengths.tolist()):
        width, height = sizes[i % len(sizes)]
        wh = rng.uniform(20, 200, 2)
        centre = np.cumsum(rng.normal(0, 4, (n, 2)), axis=0) + (width / 2, height / 2)
        boxes = np.column_stack([centre - wh / 2, np.tile(wh, (n, 1))])
        visible = rng.random(n) > 0.05
        boxes[~visible] = 0
        folder = f"/data/TNL2K/train/seq_{i:04d}/imgs"
        frames = [f"{folder}/{t:05d}.jpg" for t in range(1, n + 1)]
        seqs.append(Sequence(f"seq_{i:04d}", "tnl2k", frames, width, height, [Track(1, boxes, visible)],
                             language=f"the target object number {i} moving in the scene"))
    return seqs


REPO = Path(__file__).resolve().parents[1]
BEFORE = "44c9cb8"   # the last commit that tokenized each row's text twice, one string per call


def _omnipt_run(code: Path, data: Path, rows: int) -> dict:
    out = subprocess.run([sys.executable, str(REPO / "bench" / "omnipt_rows.py"), "run", "--code", str(code),
                          "--data", str(data), "--rows", str(rows)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def omnipt(rows: int, before: str, repeats: int) -> None:
    """Before and after, in turn, on the same data (see the module docstring)."""
    from omnipt_rows import write_data

    with tempfile.TemporaryDirectory() as tmp:
        data, old = Path(tmp, "DanceTrack"), Path(tmp, "before")
        write_data(data, sequences=20, frames=600, people=10)
        old.mkdir()
        archive = subprocess.run(["git", "-C", str(REPO), "archive", before, "vptracker"], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
        runs = {"before": [], "after": []}
        for _ in range(repeats):
            runs["before"].append(_omnipt_run(old, data, rows))
            runs["after"].append(_omnipt_run(REPO, data, rows))
        many = _omnipt_run(REPO, data, rows * 10)
    best = {name: max(r["rows_per_cpu_s"] for r in got) for name, got in runs.items()}
    same = {r["sha256"] for got in runs.values() for r in got}
    print(f"omnipt stage-3 MOT rows (16 frames, length budget, counted with {many['counted_with']}), one process:")
    print("| code | rows | rows per CPU s (each run) | kept RSS after the rows (MB) |")
    print("|---|---|---|---|")
    for name, got in runs.items():
        label = f"before ({before})" if name == "before" else "after (this checkout)"
        speeds = ", ".join(f"{r['rows_per_cpu_s']:.0f}" for r in got)
        print(f"| {label} | {rows} | {speeds} | "
              f"{got[-1]['rss_after_mb'] - got[-1]['rss_before_mb']:+.1f} |")
    print(f"| after (this checkout) | {many['rows']} | {many['rows_per_cpu_s']:.0f} | "
          f"{many['rss_after_mb'] - many['rss_before_mb']:+.1f} |")
    print(f"same shards before and after: {'yes' if len(same) == 1 else 'NO'} (sha256 {min(same)[:16]}...); "
          f"speed-up {best['after'] / best['before']:.1f}x (best runs; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores)")
    print(f"omnipt_rows_per_cpu_s before={best['before']:.1f} after={best['after']:.1f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--sequences", type=int, default=2_000)
    parser.add_argument("--frames", type=int, default=1_240_000)
    parser.add_argument("--workers", type=int, default=2, help="processes building shards (2 cores here)")
    parser.add_argument("--out", default=None, help="output folder (default: a temporary one, removed)")
    parser.add_argument("--omnipt", action="store_true", help="also time OmniPT stage-3 MOT rows, before and after")
    parser.add_argument("--omnipt-only", action="store_true", help="only the OmniPT part")
    parser.add_argument("--omnipt-rows", type=int, default=3_000, help="rows per timed OmniPT run")
    parser.add_argument("--before", default=BEFORE, help="the commit whose code the OmniPT 'before' runs time")
    parser.add_argument("--repeats", type=int, default=2, help="before/after pairs of OmniPT runs")
    args = parser.parse_args(argv)
    if args.omnipt or args.omnipt_only:
        omnipt(args.omnipt_rows, args.before, args.repeats)
        if args.omnipt_only:
            return 0

    t0 = time.perf_counter()
    seqs = synthetic_index(args.sequences, args.frames)
    task = get_task("vptracker_sot")
    index = task.index(seqs)
    t_index = time.perf_counter() - t0
    rss_index = rss_mb()
    print(f"index: {len(seqs)} sequences, {sum(len(s) for s in seqs)} frames in {t_index:.1f} s, "
          f"rss {rss_index:.0f} MB", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or tmp)
        t1 = time.perf_counter()
        counts, files = ShardWriter(out, "train-vptracker_sot", 100_000).write_random(
            task, {"tnl2k": index}, {"tnl2k": 1.0}, args.samples, seed=0, workers=args.workers, progress=False)
        t_build = time.perf_counter() - t1
        size = sum((out / f).stat().st_size for f in files)
    wall = time.perf_counter() - t0
    peak = rss_mb(args.workers if args.workers > 1 else 0)
    load = os.getloadavg()[0]
    print(f"built {sum(counts.values())} rows in {len(files)} shards ({size / 2**20:.0f} MB) in {t_build:.1f} s; "
          f"total wall {wall:.1f} s, cpu {cpu_s():.1f} s (load average {load:.1f} on {os.cpu_count()} cores); "
          f"largest worker rss {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} MB", flush=True)
    print(f"samples_per_s={args.samples / wall:.1f} peak_rss_mb={peak:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
