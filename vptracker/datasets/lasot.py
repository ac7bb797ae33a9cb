"""LaSOT reader: ``root/<cls>/<cls>-N/{img/%08d.jpg, groundtruth.txt, nlp.txt, full_occlusion.txt,
out_of_view.txt}``.

Visibility is ``full_occlusion == 0 and out_of_view == 0`` (pytracking's LaSOT reading); the two flag
files are one comma-separated line each, every flag 0 or 1. A split is chosen with a list file in
``root`` (``testing_set.txt``, ``test.txt``, ...) naming ``<cls>-N`` sequences; a listed name with
no folder is an error naming the list.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from vptracker.datasets.base import DatasetFormatError, Sequence, register
from vptracker.datasets.paths import subfolders
from vptracker.datasets.sot import check_listed, sot_sequence
from vptracker.datasets.textfiles import read_flags, read_name_list, read_text, read_xywh


def _flags(path: Path, n: int) -> np.ndarray:
    flags = read_flags(path, (0, 1))
    if len(flags) < n:
        raise DatasetFormatError(path, None, f"one flag per ground-truth line ({n}), found {len(flags)}")
    return flags[:n]


def _split_list(root: Path, split: str) -> Path:
    for name in (f"{split}ing_set.txt", f"{split}_set.txt", f"{split}.txt"):
        if (root / name).is_file():
            return root / name
    raise DatasetFormatError(root, None, f"a split list file {split}ing_set.txt naming <cls>-N sequences")


@register("lasot")
def load_lasot(root: Path, split: str | None = None, allow_missing: bool = False,
               annotation_only: bool = False) -> list[Sequence]:
    list_path = _split_list(root, split) if split is not None else None
    names = set(read_name_list(list_path)) if list_path is not None else None
    out = []
    for cls_dir in subfolders(root):
        for seq_dir in (p for p in subfolders(cls_dir) if (p / "groundtruth.txt").is_file()):
            if names is not None and seq_dir.name not in names:
                continue
            gt_path = seq_dir / "groundtruth.txt"
            boxes = read_xywh(gt_path)
            occlusion = _flags(seq_dir / "full_occlusion.txt", len(boxes))
            out_of_view = _flags(seq_dir / "out_of_view.txt", len(boxes))
            language = read_text(seq_dir / "nlp.txt") if (seq_dir / "nlp.txt").is_file() else None
            seq = sot_sequence(seq_dir.name, "lasot", seq_dir, seq_dir / "img", gt_path, language,
                               (occlusion == 0) & (out_of_view == 0), boxes, allow_missing,
                               annotation_only=annotation_only)
            seq.attributes.update(full_occlusion=occlusion, out_of_view=out_of_view)
            seq.meta["class"] = cls_dir.name
            out.append(seq)
    if names is not None:
        check_listed(list_path, names, out)
    if not out:
        raise DatasetFormatError(root, None, "<cls>/<cls>-N/groundtruth.txt sequence folders"
                                 + (f" listed for split {split!r}" if split else ""))
    return out
