"""Submission files for benchmarks whose test annotations are scored elsewhere (docs/report.md).

* **DanceTrack** (test annotations are private; its CodaLab/CodaBench server scores them). The
  DanceTrack README: put one ``<seq>.txt`` per test video in a folder named ``tracker``, each line
  ``<frame>, <id>, <bb_left>, <bb_top>, <bb_width>, <bb_height>, <conf>, -1, -1, -1``, and upload
  ``tracker.zip`` holding that folder (the folder, not loose files; the name must be ``tracker``).
* **BenSMOT** has no test server: its test annotations ship with the dataset and SMOTer's own
  scripts score them. We write what those scripts read: TrackEval's MOTChallenge layout with
  SMOTer's names (``bensmoteval/BenSMOT-val/pred/data/<category>/<seq>.txt``, lines
  ``frame,id,x,y,w,h,-1,-1,-1,-1``; ``seqmaps/BenSMOT-val.txt`` with ``<category>/<seq>`` names)
  and the caption files of ``eval_vu.py`` (``pred_results/summary_results.json`` for video
  captions, ``caption_results.json`` for instance captions: ``{"preds": [...], "gts": [...]}``, one
  entry per sequence / per captioned ground-truth trajectory, in the same order).

Input is what ``vptracker infer`` writes and ``vptracker eval mot|smot`` reads: ``<results>/<seq>.txt``
(+ ``video_captions.json`` and ``instance_captions.json`` for BenSMOT). A sequence of the split without
a result file is an error naming every missing one; result files for other sequences are left out
and listed.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

from vptracker.datasets.base import DatasetFormatError
from vptracker.eval.captions import load_caption_file
from vptracker.eval.motfiles import MIN_COLUMNS, read_mot_lines, read_mot_rows

# DanceTrack's dancetrack/test_seqmap.txt (the 35 test videos whose annotations are not public).
DANCETRACK_TEST = tuple(f"dancetrack{n:04d}" for n in (
    3, 9, 11, 13, 17, 21, 22, 28, 31, 36, 38, 40, 42, 46, 48, 50, 54, 56, 59, 60, 64, 67, 70, 71, 76, 78, 84,
    85, 88, 89, 91, 92, 93, 95, 100))


def _rows(path: Path) -> list[list[float]]:
    return read_mot_lines(path, "MOTChallenge result file")


def _mot_line(row: list[float], conf: str) -> str:
    frame, ident, x, y, w, h = row[:MIN_COLUMNS]
    return f"{int(frame)},{int(ident)},{x:.2f},{y:.2f},{w:.2f},{h:.2f},{conf},-1,-1,-1\n"


def _check_results(results: Path, names: list[str]) -> list[str]:
    """Refuses a split with missing result files (all named); returns the files left out."""
    if not results.is_dir():
        raise DatasetFormatError(results, None, "a folder of <seq>.txt result files")
    missing = [n for n in names if not (results / f"{n}.txt").is_file()]
    if missing:
        shown = ", ".join(f"{n}.txt" for n in missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10
                                                              else "")
        raise DatasetFormatError(results, None, f"a result file for every sequence of the split; "
                                 f"{len(missing)} of {len(names)} missing: {shown}")
    wanted = {f"{n}.txt" for n in names}
    return sorted(p.name for p in results.glob("*.txt") if p.name not in wanted)


def read_seqmap(path: Path) -> list[str]:
    """A TrackEval seqmap (``name`` header, one sequence per line) or a split folder of sequences."""
    if path.is_dir():
        names = sorted(p.name for p in path.iterdir() if p.is_dir())
    else:
        lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        names = lines[1:] if lines and lines[0].lower() == "name" else lines
    if not names:
        raise DatasetFormatError(path, None, "a seqmap (a \"name\" line, then one sequence per line) or a folder "
                                 "of sequence folders")
    return names


def package_dancetrack(results: str | Path, out: str | Path, sequences: list[str] | None = None) -> dict:
    """``out/tracker/<seq>.txt`` and ``out/tracker.zip`` (``tracker/<seq>.txt``) for the server."""
    results, out = Path(results), Path(out)
    names = list(sequences or DANCETRACK_TEST)
    left_out = _check_results(results, names)
    folder = out / "tracker"
    folder.mkdir(parents=True, exist_ok=True)
    archive = out / "tracker.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in names:
            rows = _rows(results / f"{name}.txt")
            # a result without a confidence column gets 1 (TrackEval's MOTChallenge reading ignores it)
            text = "".join(_mot_line(r, f"{r[6]:g}" if len(r) > 6 else "1") for r in rows)
            (folder / f"{name}.txt").write_text(text, encoding="utf-8", newline="\n")
            zf.writestr(f"tracker/{name}.txt", text)
    return {"benchmark": "dancetrack", "archive": str(archive), "folder": str(folder), "sequences": names,
            "left_out": left_out}


def package_bensmot(results: str | Path, gt_root: str | Path, out: str | Path) -> dict:
    """SMOTer's evaluation layout for a BenSMOT split (``gt_root``: ``<category>/<seq>/...``)."""
    from vptracker.eval.smot import bensmot_sequences, captions_by_gt, track_assignment  # scipy: not at CLI start

    results, out = Path(results), Path(out)
    seqs = bensmot_sequences(Path(gt_root))
    left_out = _check_results(results, [s.name for s in seqs])
    video_preds = load_caption_file(results / "video_captions.json", many=False)
    inst_preds = load_caption_file(results / "instance_captions.json", many=False)
    no_caption = [s.name for s in seqs if s.caption is not None and s.name not in video_preds]
    if no_caption:
        raise DatasetFormatError(results / "video_captions.json", None,
                                 f"a caption for every sequence; {len(no_caption)} missing: {', '.join(no_caption[:10])}")
    data = out / "bensmoteval" / "BenSMOT-val" / "pred" / "data"
    video, instance, seqmap = {"preds": [], "gts": []}, {"preds": [], "gts": []}, ["name"]
    for seq in seqs:
        result = results / f"{seq.name}.txt"
        target = data / seq.scene / f"{seq.name}.txt"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("".join(_mot_line(r, "-1") for r in _rows(result)), encoding="utf-8", newline="\n")
        seqmap.append(f"{seq.scene}/{seq.name}")
        if seq.caption is not None:
            video["preds"].append(video_preds[seq.name])
            video["gts"].append(seq.caption)
        captions = [(t.id, t.caption) for t in seq.tracks if t.caption is not None]
        if captions:
            gt = read_mot_rows(Path(seq.folder) / "gt" / "gt.txt", "MOTChallenge gt.txt")
            by_gt = captions_by_gt(seq.name, track_assignment(gt, read_mot_rows(result)), inst_preds)
            for gid, caption in captions:
                instance["preds"].append(by_gt.get(gid, ""))  # a trajectory no track follows: empty
                instance["gts"].append(caption)
    (out / "seqmaps").mkdir(parents=True, exist_ok=True)
    (out / "seqmaps" / "BenSMOT-val.txt").write_text("\n".join(seqmap) + "\n")
    pred_results = out / "pred_results"
    pred_results.mkdir(parents=True, exist_ok=True)
    (pred_results / "summary_results.json").write_text(json.dumps(video))
    (pred_results / "caption_results.json").write_text(json.dumps(instance))
    return {"benchmark": "bensmot", "folder": str(out), "sequences": [s.name for s in seqs], "left_out": left_out,
            "video_captions": len(video["preds"]), "instance_captions": len(instance["preds"])}
