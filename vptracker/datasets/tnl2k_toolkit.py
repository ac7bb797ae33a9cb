"""TNL2K's evaluation toolkit folder as a dataset: ``gt_rect/<seq>.txt``, ``absent/<seq>.txt``
(1 = absent) and ``att/<seq>_attribute.txt`` (17 flags, one per line, CRLF).

This is the layout ``vptracker eval sot --protocol tnl2k`` scores against. It holds annotations
only, so the sequences are annotation-first (frame count = ground-truth length, image size 0);
``images`` (the TNL2K test folder, ``<seq>/imgs``) gives them frames, listed on first use, and
their ``language.txt``. A sequence without an absent file takes the TNL2K rule of
:mod:`vptracker.datasets.sot` (absent = a ``0,0,0,0`` row).
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

from vptracker.datasets.base import DatasetFormatError, Sequence, register
from vptracker.datasets.frames import LazyFrames, no_frames
from vptracker.datasets.sot import (
    read_absent,
    read_attribute_flags,
    read_language,
    sot_sequence,
    toolkit_sequences,
    visibility_from_absent,
)
from vptracker.datasets.textfiles import read_xywh


@register("tnl2k_toolkit")
def load_tnl2k_toolkit(root: Path, split: str | None = None, images: str | Path | None = None,
                       allow_missing: bool = False, annotation_only: bool = True) -> list[Sequence]:
    if split not in (None, "test"):
        raise DatasetFormatError(root, None, f"the toolkit folder (TNL2K's test split), not split {split!r}")
    names = toolkit_sequences(root)
    if not names:
        raise DatasetFormatError(root / "gt_rect", None, "<seq>.txt ground-truth files")
    out = []
    for name in names:
        gt_path = root / "gt_rect" / f"{name}.txt"
        boxes = read_xywh(gt_path)
        absent_path = root / "absent" / f"{name}.txt"
        visible = (visibility_from_absent(read_absent(absent_path), len(boxes), absent_path)
                   if absent_path.is_file() else None)
        seq_dir = Path(images) / name if images is not None else root
        language = read_language(seq_dir / "language.txt", True) if images is not None else None
        seq = sot_sequence(name, "tnl2k", seq_dir, seq_dir / "imgs", gt_path, language, visible, boxes,
                           allow_missing, annotation_only=annotation_only or images is None)
        if images is None:
            seq.frames = LazyFrames(len(boxes), partial(no_frames, root, "the toolkit folder holds none; "
                                                        "load it with images=<the TNL2K test folder>"))
        read_attribute_flags(seq, root / "att" / f"{name}_attribute.txt")
        out.append(seq)
    return out
