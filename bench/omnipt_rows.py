"""One timed OmniPT prepare job in its own process, for ``bench/prepare_bench.py --omnipt``.

``write-data`` writes a DanceTrack-layout set (112x80 frames, the first of each sequence a real JPEG
and the others links to it; people walking, some entering or leaving); ``run`` imports ``vptracker``
from ``--code`` (this checkout, or an older commit unpacked beside it), builds ``--rows`` rows of the
stage-3 MOT job (``omnipt_mot``, 16 frames, ``length_budget: {max_length: 16384, policy:
fewer_frames}``, the real Qwen tokenizer) on one process and prints one JSON line: rows, CPU seconds
of the build, resident memory before and after it, and the sha256 of the shards (equal digests:
equal rows).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path

SIZE = (112, 80)


def write_data(root: Path, sequences: int, frames: int, people: int, seed: int = 0) -> None:
    from PIL import Image

    rng = random.Random(seed)
    names = []
    for s in range(sequences):
        name = f"dancetrack{s + 1:04d}"
        names.append(name)
        seq = root / "train" / name
        (seq / "img1").mkdir(parents=True)
        Image.new("RGB", SIZE, (90, 90, 90)).save(seq / "img1" / "00000001.jpg")
        for f in range(2, frames + 1):
            os.symlink("00000001.jpg", seq / "img1" / f"{f:08d}.jpg")
        (seq / "seqinfo.ini").write_text(f"[Sequence]\nname={name}\nimDir=img1\nframeRate=20\nseqLength={frames}\n"
                                         f"imWidth={SIZE[0]}\nimHeight={SIZE[1]}\nimExt=.jpg\n")
        lines = []
        for tid in range(1, people + 1):
            first = rng.randint(1, frames // 3) if tid % 3 == 0 else 1
            last = rng.randint(2 * frames // 3, frames) if tid % 4 == 0 else frames
            x, y = rng.uniform(0, SIZE[0] - 20), rng.uniform(0, SIZE[1] - 30)
            w, h = rng.uniform(8, 30), rng.uniform(15, 40)
            for f in range(first, last + 1):
                x, y = x + rng.uniform(-1.5, 1.5), y + rng.uniform(-0.8, 0.8)
                lines.append(f"{f},{tid},{x:.2f},{y:.2f},{w:.2f},{h:.2f},1,1,1\n")
        (seq / "gt").mkdir()
        (seq / "gt" / "gt.txt").write_text("".join(lines))
    (root / "train_seqmap.txt").write_text("name\n" + "".join(n + "\n" for n in names))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def rss_mb() -> float:
    """The resident memory now (Linux), which, unlike the peak, shows what the rows built keep."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run(code: Path, data: Path, rows: int) -> dict:
    sys.path.insert(0, str(code))
    warnings.simplefilter("ignore")
    from vptracker.datasets import load
    from vptracker.tasks import get_task
    from vptracker.tasks.base import ShardWriter
    from vptracker.tasks.lengths import LengthBudget, image_tokens

    task = get_task("omnipt_mot", frames=16)
    index = task.index(load("dancetrack", data.resolve(), split="train"))
    budget = LengthBudget.from_config({"max_length": 16384, "policy": "fewer_frames"}, task)
    counted_with = budget.counted_with   # loads the tokenizer
    image_tokens(*SIZE, budget.family, budget.max_pixels)   # imports qwen-vl-utils: once per process, not per row
    rss_before = rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        cpu, wall = time.process_time(), time.perf_counter()
        counts, files = ShardWriter(Path(tmp), "train-mot", 100_000).write_random(
            task, {"dancetrack": index}, {"dancetrack": 1.0}, rows, seed=0, workers=1, progress=False, budget=budget)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        rss_after = rss_mb()
        sha = hashlib.sha256()
        for name in files:
            sha.update(Path(tmp, name).read_bytes())
    return {"code": str(code), "rows": sum(counts.values()), "cpu_s": cpu, "wall_s": wall,
            "rows_per_cpu_s": rows / cpu, "rss_before_mb": rss_before, "rss_after_mb": rss_after,
            "rss_peak_mb": peak_rss_mb(),
            "sha256": sha.hexdigest(), "counted_with": counted_with, "max_tokens": budget.summary()["max"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    data = sub.add_parser("write-data")
    data.add_argument("root", type=Path)
    data.add_argument("--sequences", type=int, default=20)
    data.add_argument("--frames", type=int, default=600)
    data.add_argument("--people", type=int, default=10)
    timed = sub.add_parser("run")
    timed.add_argument("--code", type=Path, required=True, help="folder holding the vptracker package to time")
    timed.add_argument("--data", type=Path, required=True)
    timed.add_argument("--rows", type=int, default=20_000)
    args = parser.parse_args(argv)
    if args.command == "write-data":
        write_data(args.root, args.sequences, args.frames, args.people)
    else:
        print(json.dumps(run(args.code, args.data, args.rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
