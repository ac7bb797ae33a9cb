"""MOT / RMOT / SMOT tracking scores through TrackEval (HOTA, CLEAR, Identity): not a re-implementation.

Loading and preprocessing are TrackEval's ``MotChallenge2DBox``; this module only points it at a
MOTChallenge layout (``<seq>/gt/gt.txt``, ``<seq>/seqinfo.ini``; results ``<seq>.txt``) and
reads its numbers back. ``benchmark`` picks TrackEval's preprocessing: ``MOT15`` keeps every
ground-truth row whatever its class column; the others keep gt rows with flag != 0 and class 1 and
drop tracker boxes matched to distractor classes {2, 7, 8, 12} (``MOT20`` also 6). DanceTrack's
own evaluation runs the MOT17 preprocessing.

Sequence names are handed to TrackEval as a dict (``SEQ_INFO``), never through a seqmap CSV, so
names with commas (Refer-KITTI expressions) survive.
"""
from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

import numpy as np

from vptracker.datasets.base import DatasetFormatError
from vptracker.datasets.mot import read_seqinfo
from vptracker.eval.motfiles import clean_mot_file, read_mot_rows
from vptracker.registry import Registry

# benchmark -> the TrackEval benchmark whose preprocessing it runs (one line per benchmark).
MOT_BENCHMARKS: Registry[str] = Registry("MOT benchmark")
MOT_BENCHMARKS.add("MOT15", "MOT15")
MOT_BENCHMARKS.add("MOT16", "MOT16")
MOT_BENCHMARKS.add("MOT17", "MOT17")
MOT_BENCHMARKS.add("MOT20", "MOT20")
MOT_BENCHMARKS.add("DanceTrack", "MOT17")  # DanceTrack's own evaluation runs the MOT17 preprocessing
# Fields reported per sequence and COMBINED: HOTA family averaged over TrackEval's 19 alphas.
MOT_FIELDS = ("HOTA", "DetA", "AssA", "MOTA", "MOTP", "IDF1", "IDSW")


def sequence_length(seq_dir: Path) -> int:
    """``seqLength`` from ``seqinfo.ini`` (the dataset reader's parser); without one, the last frame
    of ``gt/gt.txt``."""
    ini = seq_dir / "seqinfo.ini"
    if ini.is_file():
        return read_seqinfo(ini, need_size=False)["length"]
    rows = read_mot_rows(seq_dir / "gt" / "gt.txt", "MOTChallenge gt.txt")
    if not len(rows):
        raise DatasetFormatError(seq_dir / "gt" / "gt.txt", None, "ground-truth rows, or a seqinfo.ini with seqLength")
    return int(rows[:, 0].max())


def find_sequences(gt_root: str | Path) -> dict[str, int]:
    """``{seq: length}`` for every ``<gt_root>/<seq>/gt/gt.txt``."""
    gt_root = Path(gt_root)
    seqs = {p.parent.parent.name: sequence_length(p.parent.parent) for p in sorted(gt_root.glob("*/gt/gt.txt"))}
    if not seqs:
        raise DatasetFormatError(gt_root, None, "MOTChallenge sequences <seq>/gt/gt.txt (with seqinfo.ini)")
    return seqs


def _metric_row(res: dict) -> dict[str, float]:
    hota, clear, ident = res["HOTA"], res["CLEAR"], res["Identity"]
    return {"HOTA": 100 * float(np.mean(hota["HOTA"])), "DetA": 100 * float(np.mean(hota["DetA"])),
            "AssA": 100 * float(np.mean(hota["AssA"])), "MOTA": 100 * float(clear["MOTA"]),
            "MOTP": 100 * float(clear["MOTP"]), "IDF1": 100 * float(ident["IDF1"]),
            "IDSW": int(clear["IDSW"]), "FP": int(clear["CLR_FP"]), "FN": int(clear["CLR_FN"]),
            "GT_Dets": int(clear["CLR_TP"] + clear["CLR_FN"])}


def run_trackeval(gt_folder: str | Path, tracker_dir: str | Path, seq_info: dict[str, int],
                  benchmark: str = "MOT17", gt_loc_format: str = "{gt_folder}/{seq}/gt/gt.txt") -> dict:
    """TrackEval's MotChallenge2DBox + HOTA/CLEAR/Identity over ``tracker_dir/<seq>.txt``.

    Returns ``{"per_sequence": {seq: row}, "COMBINED": row}`` with rows of :data:`MOT_FIELDS`
    (percent; IDSW a count). A missing result file raises with its path. Every file is checked
    (:mod:`vptracker.eval.motfiles`) and handed to TrackEval as a clean copy.
    """
    import trackeval

    trackeval_benchmark = MOT_BENCHMARKS.get(benchmark)
    tracker_dir = Path(tracker_dir)
    for seq in seq_info:
        if not (tracker_dir / f"{seq}.txt").is_file():
            raise DatasetFormatError(tracker_dir / f"{seq}.txt", None, "a MOTChallenge result file for the sequence")
    with tempfile.TemporaryDirectory() as out_tmp:
        staged = Path(out_tmp) / "staged"
        for seq in seq_info:
            clean_mot_file(gt_loc_format.format(gt_folder=gt_folder, seq=seq), staged / "gt" / seq / "gt" / "gt.txt",
                           "MOTChallenge gt.txt")
            clean_mot_file(tracker_dir / f"{seq}.txt", staged / "trackers" / "tracker" / f"{seq}.txt",
                           "MOTChallenge result file")
        dataset_config = {
            "GT_FOLDER": str(staged / "gt"), "TRACKERS_FOLDER": str(staged / "trackers"),
            "TRACKERS_TO_EVAL": ["tracker"], "TRACKER_SUB_FOLDER": "", "OUTPUT_FOLDER": out_tmp,
            "BENCHMARK": trackeval_benchmark, "SPLIT_TO_EVAL": "all",
            "SKIP_SPLIT_FOL": True, "SEQ_INFO": dict(seq_info), "GT_LOC_FORMAT": "{gt_folder}/{seq}/gt/gt.txt",
            "PRINT_CONFIG": False, "DO_PREPROC": True,
        }
        eval_config = {"USE_PARALLEL": False, "BREAK_ON_ERROR": True, "LOG_ON_ERROR": None,
                       "PRINT_RESULTS": False, "PRINT_CONFIG": False, "TIME_PROGRESS": False,
                       "DISPLAY_LESS_PROGRESS": True, "OUTPUT_SUMMARY": False, "OUTPUT_DETAILED": False,
                       "PLOT_CURVES": False, "OUTPUT_EMPTY_CLASSES": False}
        quiet = {"PRINT_CONFIG": False}
        metrics = [trackeval.metrics.HOTA(quiet), trackeval.metrics.CLEAR(quiet), trackeval.metrics.Identity(quiet)]
        evaluator = trackeval.Evaluator(eval_config)
        # TrackEval prints progress lines unconditionally; keep our command's output readable.
        with contextlib.redirect_stdout(io.StringIO()):
            dataset = trackeval.datasets.MotChallenge2DBox(dataset_config)
            output, _ = evaluator.evaluate([dataset], metrics)
    res = output["MotChallenge2DBox"]["tracker"]
    per_seq = {seq: _metric_row(res[seq]["pedestrian"]) for seq in seq_info}
    return {"per_sequence": per_seq, "COMBINED": _metric_row(res["COMBINED_SEQ"]["pedestrian"])}


def evaluate_mot(gt_root: str | Path, results_dir: str | Path, benchmark: str = "MOT17",
                 sequences: list[str] | None = None) -> dict:
    """Scores ``<results_dir>/<seq>.txt`` against ``<gt_root>/<seq>/gt/gt.txt`` (all or ``sequences``)."""
    seq_info = find_sequences(gt_root)
    if sequences:
        unknown = [s for s in sequences if s not in seq_info]
        if unknown:
            raise DatasetFormatError(Path(gt_root) / unknown[0], None, "a sequence folder with gt/gt.txt")
        seq_info = {s: seq_info[s] for s in sequences}
    out = run_trackeval(gt_root, results_dir, seq_info, benchmark)
    out["benchmark"] = benchmark
    return out


def format_mot_table(result: dict, fields: tuple[str, ...] = MOT_FIELDS) -> str:
    rows = {**result["per_sequence"], "COMBINED": result["COMBINED"]}
    width = max(12, max(len(s) for s in rows) + 2)
    head = f"{'sequence':<{width}}" + "".join(f"{f:>8}" for f in fields)
    lines = [head, "-" * len(head)]
    for seq, row in rows.items():
        cells = "".join(f"{row[f]:>8d}" if isinstance(row[f], int) else f"{row[f]:>8.2f}" for f in fields)
        lines.append(f"{seq:<{width}}{cells}")
    return "\n".join(lines)
