"""OTB and OTB99-Lang readers.

OTB: ``root/<Seq>/{img/%04d.jpg, groundtruth_rect.txt}`` (comma, tab or space separated; sequences
with two targets ship ``groundtruth_rect.1.txt`` / ``.2.txt`` and become ``<Seq>-1`` / ``<Seq>-2``).
When the release's ``cfg.json`` is present its ``startFrame`` says where the annotated range begins
(some OTB sequences do not start at frame 1); otherwise the annotation starts at the first image.
Extra images after the annotated range (``Football1`` has 81 images for 74 boxes) are left out.
OTB has no absent frames: every frame counts as visible.

OTB99-Lang: the same videos (``root/OTB_videos/<Seq>`` or ``root/<Seq>``) with one description per
sequence in ``root/OTB_query_{train,test}/<Seq>.txt``.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from vptracker.datasets.base import DatasetFormatError, Sequence, register
from vptracker.datasets.frames import list_frames
from vptracker.datasets.paths import subfolders
from vptracker.datasets.sot import sot_sequence
from vptracker.datasets.textfiles import json_int, read_json, read_text, read_xywh


def _gt_files(seq_dir: Path) -> list[tuple[str, Path]]:
    single = seq_dir / "groundtruth_rect.txt"
    if single.is_file():
        return [(seq_dir.name, single)]
    multi = sorted(seq_dir.glob("groundtruth_rect.*.txt"))
    return [(f"{seq_dir.name}-{p.name.split('.')[1]}", p) for p in multi]


def _first_frame(seq_dir: Path) -> int:
    """Index into the sorted images where the annotation begins (from ``cfg.json``'s startFrame)."""
    cfg = seq_dir / "cfg.json"
    if not cfg.is_file():
        return 0
    data = read_json(cfg)
    start = data.get("startFrame", 1) if isinstance(data, dict) else None
    if not json_int(start) or start < 0:
        raise DatasetFormatError(cfg, None, "a JSON object whose startFrame is an integer >= 0",
                                 "not an object" if not isinstance(data, dict) else start)
    _, numbers, _ = list_frames(seq_dir / "img", allow_missing=True)
    return max(numbers.index(start), 0) if start in numbers else 0


def read_otb_sequence(seq_dir: Path, dataset: str = "otb", language: str | None = None,
                      allow_missing: bool = False, annotation_only: bool = False) -> list[Sequence]:
    out = []
    # where the annotation starts needs the frame listing: later, when annotation-first
    first = partial(_first_frame, seq_dir) if annotation_only else _first_frame(seq_dir)
    for name, gt_path in _gt_files(seq_dir):
        boxes = read_xywh(gt_path)
        visible = np.ones(len(boxes), dtype=bool)
        seq = sot_sequence(name, dataset, seq_dir, seq_dir / "img", gt_path, language, visible, boxes,
                           allow_missing, first_frame=first, annotation_only=annotation_only)
        attrs = seq_dir / "attrs.txt"
        if attrs.is_file():
            seq.attributes["attributes"] = ",".join(a.strip() for a in read_text(attrs).split(",") if a.strip())
        out.append(seq)
    return out


@register("otb")
def load_otb(root: Path, split: str | None = None, allow_missing: bool = False,
             sequences: list[str] | None = None, annotation_only: bool = False) -> list[Sequence]:
    out = []
    for seq_dir in subfolders(root):
        if sequences is not None and seq_dir.name not in sequences:
            continue
        if _gt_files(seq_dir):
            out.extend(read_otb_sequence(seq_dir, allow_missing=allow_missing, annotation_only=annotation_only))
    if not out:
        raise DatasetFormatError(root, None, "<Seq>/groundtruth_rect.txt sequence folders")
    return out


@register("otb99_lang")
def load_otb99_lang(root: Path, split: str | None = "test", allow_missing: bool = False) -> list[Sequence]:
    split = split or "test"
    queries = root / f"OTB_query_{split}"
    if not queries.is_dir():
        raise DatasetFormatError(root, None, f"an OTB_query_{split}/ folder of <Seq>.txt descriptions")
    videos = root / "OTB_videos" if (root / "OTB_videos").is_dir() else root
    out = []
    for query in sorted(queries.glob("*.txt")):
        seq_dir = videos / query.stem
        if not seq_dir.is_dir():
            # Two-target sequences are listed as e.g. "Jogging-1"; their video folder is "Jogging".
            base = videos / query.stem.rsplit("-", 1)[0]
            if not base.is_dir():
                raise DatasetFormatError(query, None, f"a video folder {seq_dir}")
            seqs = [s for s in read_otb_sequence(base, "otb99_lang", read_text(query), allow_missing)
                    if s.name == query.stem]
        else:
            seqs = read_otb_sequence(seq_dir, "otb99_lang", read_text(query), allow_missing)
        out.extend(seqs)
    return out
