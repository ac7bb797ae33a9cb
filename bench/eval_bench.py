"""Benchmark: score the full TNL2K test set (700 sequences, 516,038 frames) with one tracker's results.

The "tracker" is the ground truth perturbed (jitter, lost frames, zero-size answers), written as
``<seq>.txt`` files. Timed: ``evaluate_sot`` from files to scores (loading ground truth, absent
flags, attributes and results included; plotting excluded). Compared: a straightforward per-frame
Python loop over the same files, which must agree to 1e-6.

Last line: ``seconds=<float> loop_seconds=<float>``.

    python bench/eval_bench.py [--annos ../shared/data/tnl2k/test_annos.tar.gz] [--protocol tnl2k]
"""
from __future__ import annotations

import argparse
import math
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vptracker.eval.sot_eval import evaluate_sot

DEFAULT_ANNOS = REPO.parent / "shared" / "data" / "tnl2k" / "test_annos.tar.gz"


def write_tracker(annos: Path, out: Path, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    for gt_file in sorted((annos / "gt_rect").glob("*.txt")):
        gt = np.loadtxt(gt_file, delimiter=",", ndmin=2)
        n = len(gt)
        size = np.maximum(gt[:, 2:], 1.0)
        pred = gt.copy()
        pred[:, :2] += rng.normal(0, 0.15, (n, 2)) * size
        pred[:, 2:] = size * rng.lognormal(0, 0.15, (n, 2))
        lost = rng.random(n) < 0.05
        pred[lost, :2] += 10 * size[lost]
        pred[rng.random(n) < 0.02, 2] = 0.0
        np.savetxt(out / gt_file.name, pred, fmt="%.2f", delimiter=",")


def _read_rows(path: Path) -> list[list[float]]:
    rows = []
    for line in path.read_text().splitlines():
        parts = line.replace(",", " ").replace("\t", " ").split()
        if parts:
            rows.append([float(p) for p in parts])
    return rows


def loop_tnl2k(annos: Path, results: Path) -> dict[str, float]:
    """The TNL2K toolkit's reading, one frame and one threshold at a time."""
    thr_o = [k * 0.05 if k < 10 else 1 - (20 - k) * 0.05 for k in range(21)]
    succ_sum, prec_sum, nprec_sum, n_seq = [0.0] * 21, [0.0] * 51, [0.0] * 51, 0
    for gt_file in sorted((annos / "gt_rect").glob("*.txt")):
        gt = _read_rows(gt_file)
        absent = [int(r[0]) for r in _read_rows(annos / "absent" / gt_file.name)][:len(gt)]
        pred = _read_rows(results / gt_file.name)[:len(gt)]
        n = len(gt)
        for i in range(1, n):
            r = pred[i]
            if (any(math.isnan(v) for v in r) or r[2] <= 0 or r[3] <= 0) and not any(math.isnan(v) for v in gt[i]):
                pred[i] = pred[i - 1]
        pred[0] = gt[0]
        succ, prec, nprec = [0] * 21, [0] * 51, [0] * 51
        for i in range(n):
            if absent[i]:
                continue
            g, p = gt[i], pred[i]
            if g[0] > 0 and g[1] > 0 and g[2] > 0 and g[3] > 0:
                ix = max(0.0, min(p[0] + p[2] - 1, g[0] + g[2] - 1) - max(p[0], g[0]) + 1)
                iy = max(0.0, min(p[1] + p[3] - 1, g[1] + g[3] - 1) - max(p[1], g[1]) + 1)
                o = ix * iy / (p[2] * p[3] + g[2] * g[3] - ix * iy)
                dx = p[0] + (p[2] - 1) / 2 - (g[0] + (g[2] - 1) / 2)
                dy = p[1] + (p[3] - 1) / 2 - (g[1] + (g[3] - 1) / 2)
                c = math.hypot(dx, dy)
                nc = math.hypot(dx / g[2], dy / g[3])
            else:
                o, c, nc = -1.0, -1.0, -1.0
            for j in range(21):
                succ[j] += o > thr_o[j]
            for j in range(51):
                prec[j] += c <= j
                nprec[j] += nc <= j / 100
        for j in range(21):
            succ_sum[j] += succ[j] / n
        for j in range(51):
            prec_sum[j] += prec[j] / n
            nprec_sum[j] += nprec[j] / n
        n_seq += 1
    return {"auc": 100 * sum(succ_sum) / 21 / n_seq, "precision": 100 * prec_sum[20] / n_seq,
            "norm_precision": 100 * nprec_sum[20] / n_seq}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annos", type=Path, default=DEFAULT_ANNOS, help="test_annos.tar.gz or its extracted annos/")
    parser.add_argument("--protocol", default="tnl2k", help="protocol timed (the loop checks tnl2k)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs; the best is reported")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        annos = args.annos
        if annos.is_file():
            with tarfile.open(annos) as tar:
                tar.extractall(tmp, filter="data")
            annos = Path(tmp) / "annos"
        results = Path(tmp) / "tracker"
        write_tracker(annos, results)
        times = []
        for _ in range(max(1, args.repeats)):
            start = time.perf_counter()
            ours = evaluate_sot(annos, results, args.protocol)
            times.append(time.perf_counter() - start)
        print(f"sequences={ours['num_sequences']} frames={ours['num_frames']} protocol={args.protocol}")
        print(f"ours: AUC={ours['auc']:.6f} P={ours['precision']:.6f} P_norm={ours['norm_precision']:.6f} "
              f"runs={[round(t, 3) for t in times]}")
        start = time.perf_counter()
        loop = loop_tnl2k(annos, results)
        loop_seconds = time.perf_counter() - start
        print(f"loop: AUC={loop['auc']:.6f} P={loop['precision']:.6f} P_norm={loop['norm_precision']:.6f}")
        if args.protocol == "tnl2k":
            worst = max(abs(ours[k] - loop[k]) for k in loop)
            print(f"max |ours - loop| = {worst:.3g}")
            if worst > 1e-6:
                print("MISMATCH between the vectorised scores and the per-frame loop", file=sys.stderr)
                return 1
    print(f"seconds={min(times):.3f} loop_seconds={loop_seconds:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
