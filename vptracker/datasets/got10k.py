"""GOT-10k reader: ``root/<split>/<seq>/{00000001.jpg..., groundtruth.txt, absence.label,
cover.label, meta_info.ini}`` with ``root/<split>/list.txt`` naming the sequences (when present).

As got10k-toolkit reads it: ``cover.label`` holds the visible ratio of each frame in 0..8 (0 = fully
occluded or absent) and ``absence.label`` 0/1 flags; a frame is visible when its cover is > 0,
the rule the toolkit scores by (``covers > 0``). ``meta_info.ini``'s ``resolution: (W, H)`` is the
image size (the toolkit clips boxes to it before the IoU) and is read without opening an image;
without the file the size comes from the first frame, or stays 0 when annotation-first. The test
split ships only the first box (the rest is on the evaluation server): its sequences have one row.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from vptracker.datasets.base import DatasetFormatError, Sequence, register
from vptracker.datasets.frames import split_dir
from vptracker.datasets.paths import subfolders
from vptracker.datasets.sot import check_listed, sot_sequence
from vptracker.datasets.textfiles import _lines, read_flags, read_name_list, read_xywh

_RESOLUTION = re.compile(r"^\s*resolution\s*:\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)\s*$")


def read_resolution(path: Path) -> tuple[int, int] | None:
    """``(W, H)`` from ``meta_info.ini``'s ``resolution: (W, H)`` line; None without the file."""
    if not path.is_file():
        return None
    for lineno, line in enumerate(_lines(path), start=1):
        if line.strip().startswith("resolution"):
            m = _RESOLUTION.match(line)
            if m is None:
                raise DatasetFormatError(path, lineno, "resolution: (W, H) with two integers", line)
            return int(m.group(1)), int(m.group(2))
    raise DatasetFormatError(path, None, "a 'resolution: (W, H)' line")


def _labels(path: Path, n: int, allowed: tuple[int, ...]) -> np.ndarray:
    values = read_flags(path, allowed, path.stem + " labels")
    if len(values) != n:
        raise DatasetFormatError(path, None, f"one label per ground-truth line ({n}), found {len(values)}")
    return values


@register("got10k")
def load_got10k(root: Path, split: str | None = None, allow_missing: bool = False,
                annotation_only: bool = False) -> list[Sequence]:
    base = split_dir(root, split)
    listed = base / "list.txt"
    names = set(read_name_list(listed)) if listed.is_file() else None
    out = []
    for seq_dir in (p for p in subfolders(base) if (p / "groundtruth.txt").is_file()):
        if names is not None and seq_dir.name not in names:
            continue
        gt_path = seq_dir / "groundtruth.txt"
        boxes = read_xywh(gt_path)
        cover = absence = None
        if (seq_dir / "cover.label").is_file():
            cover = _labels(seq_dir / "cover.label", len(boxes), tuple(range(9)))
        if (seq_dir / "absence.label").is_file():
            absence = _labels(seq_dir / "absence.label", len(boxes), (0, 1))
        visible = cover > 0 if cover is not None else (absence == 0 if absence is not None else None)
        seq = sot_sequence(seq_dir.name, "got10k", seq_dir, seq_dir, gt_path, None, visible, boxes,
                           allow_missing, annotation_only=annotation_only)
        resolution = read_resolution(seq_dir / "meta_info.ini")
        if resolution is not None:
            seq.width, seq.height = resolution
        if cover is not None:
            seq.attributes["cover"] = cover
        if absence is not None:
            seq.attributes["absence"] = absence
        out.append(seq)
    if names is not None:
        check_listed(listed, names, out)
    if not out:
        raise DatasetFormatError(base, None, "<seq>/groundtruth.txt sequence folders")
    return out
