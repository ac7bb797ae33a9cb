"""Single-object readers for the vision-language SOT benchmarks: TNL2K and TNLLT.

Both keep one folder per sequence with ``imgs/``, ``groundtruth.txt`` (x,y,w,h) and
``language.txt``. Visibility comes from the absent flags when the release has them (TNL2K's
evaluation toolkit ``absent/<seq>.txt``, TNLLT's ``absent_label.txt``; 1 = absent) and otherwise
from the box itself by one rule for training and evaluation: a frame is absent when its row is
``0,0,0,0`` (how TNL2K writes absent frames: the toolkit's absent flags are exactly those rows,
65,253 of 65,253 in the test set; "w, h > 0" would also drop the 12 present zero-area frames the
toolkit scores). Every number is checked (finite, width and height >= 0,
flags 0 or 1). Quirks the toolkit tolerates on purpose, and so do we: absent frames written as
``0,0,0,0``; an absent list longer than the ground truth (one TNL2K test sequence has 929 gt lines
and 930 absent lines) is cut to the gt length; a frame flagged present with a zero-area box (12 in
the TNL2K test set) stays present, as the toolkit scores it, and the tasks skip it as unusable.
Also CRLF files and frame names with varying zero-padding and png/jpg.

``annotation_only=True`` (what ``vptracker eval`` asks for) reads annotation files only: frame
paths are listed on first use (:class:`~vptracker.datasets.frames.LazyFrames`, the count is the
annotation length), the image size is left 0 and ``language.txt`` may be missing. The TNL2K
evaluation toolkit's folder (``gt_rect/``, ``absent/``, ``att/``; no images) is the reader
``tnl2k_toolkit``.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from vptracker.datasets.base import DatasetFormatError, Sequence, Track, register
from vptracker.datasets.frames import LazyFrames, fit_frames, image_size, list_frames, split_dir
from vptracker.datasets.paths import subfolders
from vptracker.datasets.shipped_splits import SPLITS_DIR, shipped_split
from vptracker.datasets.textfiles import read_flags, read_name_list, read_text, read_xywh

# Names of the 17 per-sequence attribute flags of TNL2K's toolkit (``att/<seq>_attribute.txt``) and
# of TNLLT's ``attributes.txt``, in the paper's Table 2 order.
TNL2K_ATTRIBUTES = ("CM", "ROT", "DEF", "FOC", "IV", "OV", "POC", "VC", "SV", "BC", "MB", "ARC", "LR", "FM",
                    "AS", "TC", "MS")


def attribute_names(flags: np.ndarray) -> list[str]:
    """TNL2K's names for its 17 flags; ``att1``.. for files of another length."""
    if len(flags) == len(TNL2K_ATTRIBUTES):
        return list(TNL2K_ATTRIBUTES)
    return [f"att{i + 1}" for i in range(len(flags))]


def read_language(path: Path, annotation_only: bool) -> str | None:
    """The description; scoring needs none, so an annotation-only read accepts a missing file."""
    if annotation_only and not path.is_file():
        return None
    return read_text(path)


def visibility_from_absent(absent: np.ndarray, n: int, path: Path) -> np.ndarray:
    """``absent`` (1 = absent, as :func:`read_absent` reads it) cut to ``n`` rows; a shorter list is an error."""
    if len(absent) < n:
        raise DatasetFormatError(path, None, f"one absent flag per ground-truth line ({n}), found {len(absent)}")
    bad = ~np.isin(absent[:n], (0, 1))
    if bad.any():
        raise DatasetFormatError(path, int(np.argmax(bad)) + 1, "absent flags 0 or 1", str(absent[:n][bad][0]))
    return absent[:n] == 0


def read_absent(path: Path) -> np.ndarray:
    return read_flags(path, (0, 1), "absent flags")


def visibility_from_boxes(boxes: np.ndarray) -> np.ndarray:
    """Visible unless the row is ``0,0,0,0`` (the rule for releases without absent flags, see above)."""
    return ~(boxes == 0).all(axis=1)


def sot_sequence(name: str, dataset: str, seq_dir: Path, img_dir: Path, gt_path: Path, language: str | None,
                 visible: np.ndarray | None = None, boxes: np.ndarray | None = None,
                 allow_missing: bool = False, first_frame: int | Callable[[], int] = 0,
                 annotation_only: bool = False) -> Sequence:
    """One SOT sequence: frames cut to the ground-truth length, image size from the first header.

    ``annotation_only``: no folder listed and no image opened (frames listed on first use, size 0).
    ``first_frame`` may be a function, called only when the frames are listed.
    """
    if boxes is None:
        boxes = read_xywh(gt_path)
    if len(boxes) == 0:
        raise DatasetFormatError(gt_path, None, "at least one x,y,w,h line")
    if visible is None:
        visible = visibility_from_boxes(boxes)
    if annotation_only:
        def listing() -> list[str]:
            start = first_frame() if callable(first_frame) else first_frame
            paths = list_frames(img_dir, allow_missing=allow_missing)[0][start:]
            return fit_frames(seq_dir, paths, len(boxes), gt_path)
        return Sequence(name=name, dataset=dataset, frames=LazyFrames(len(boxes), listing), width=0, height=0,
                        tracks=[Track(1, boxes, visible)], language=language, meta={"annotation_only": True})
    if callable(first_frame):
        first_frame = first_frame()
    frames, numbers, missing = list_frames(img_dir, allow_missing=allow_missing)
    frames, numbers = frames[first_frame:], numbers[first_frame:]
    frames = fit_frames(seq_dir, frames, len(boxes), gt_path)
    width, height = image_size(frames[0])
    missing = [i - first_frame for i in missing if first_frame <= i < first_frame + len(frames)]
    return Sequence(name=name, dataset=dataset, frames=frames, width=width, height=height,
                    tracks=[Track(1, boxes, visible)], language=language,
                    frame_ids=numbers[:len(frames)], missing_frames=missing)


def _sequence_dirs(base: Path, gt_name: str) -> list[Path]:
    dirs = [p for p in subfolders(base) if (p / gt_name).is_file()]
    if not dirs:
        raise DatasetFormatError(base, None, f"sequence folders holding {gt_name}")
    return dirs


def read_toolkit_annotation(annos: Path, seq: str) -> tuple[np.ndarray, np.ndarray]:
    """``(boxes, visible)`` of one sequence from the TNL2K evaluation toolkit's annotation folder."""
    gt_path = annos / "gt_rect" / f"{seq}.txt"
    absent_path = annos / "absent" / f"{seq}.txt"
    boxes = read_xywh(gt_path)
    return boxes, visibility_from_absent(read_absent(absent_path), len(boxes), absent_path)


def toolkit_sequences(annos: str | Path) -> list[str]:
    """Names of the sequences in a TNL2K toolkit annotation folder (``gt_rect/<seq>.txt``)."""
    gt_dir = Path(annos) / "gt_rect"
    if not gt_dir.is_dir():
        raise DatasetFormatError(annos, None, "a toolkit annotation folder with gt_rect/ and absent/")
    return sorted(p.stem for p in gt_dir.glob("*.txt"))


@register("tnl2k")
def load_tnl2k(root: Path, split: str | None = None, annos: str | Path | None = None,
               allow_missing: bool = False, annotation_only: bool = False) -> list[Sequence]:
    """``root/{train,test}/<seq>/{imgs, groundtruth.txt, language.txt[, absent.txt, attributes.txt]}``.

    ``annos`` points to the evaluation toolkit's annotation folder (``gt_rect/``, ``absent/``);
    when given, its ground truth and absent flags are used for the sequences it lists.
    """
    base = split_dir(root, split)
    out = []
    for seq_dir in _sequence_dirs(base, "groundtruth.txt"):
        gt_path = seq_dir / "groundtruth.txt"
        boxes, visible = read_xywh(gt_path), None
        if annos is not None and (Path(annos) / "gt_rect" / f"{seq_dir.name}.txt").is_file():
            boxes, visible = read_toolkit_annotation(Path(annos), seq_dir.name)
        elif (seq_dir / "absent.txt").is_file():
            visible = visibility_from_absent(read_absent(seq_dir / "absent.txt"), len(boxes), seq_dir / "absent.txt")
        language = read_language(seq_dir / "language.txt", annotation_only)
        seq = sot_sequence(seq_dir.name, "tnl2k", seq_dir, seq_dir / "imgs", gt_path, language,
                           visible, boxes, allow_missing, annotation_only=annotation_only)
        read_attribute_flags(seq, seq_dir / "attributes.txt")
        out.append(seq)
    return out


def read_attribute_flags(seq: Sequence, path: Path) -> None:
    """``seq.attributes["attributes"]``: the 0/1 attribute flags of ``path``, when it exists."""
    if path.is_file():
        seq.attributes["attributes"] = read_flags(path, (0, 1), "attribute flags")


def _split_list(root: Path, split: str) -> Path | None:
    for name in (f"{split}.txt", f"{split}_list.txt", f"{split}ing_set.txt", f"{split}_set.txt"):
        if (root / name).is_file():
            return root / name
    return None


def check_listed(list_path: Path, names: set[str], found: list[Sequence]) -> None:
    """Every name of a split list must be a sequence read (a silently short split skews every score)."""
    if not names:
        raise DatasetFormatError(list_path, None, "one sequence name per line")
    missing = sorted(names - {s.name for s in found})
    if missing:
        raise DatasetFormatError(list_path, None, f"only names of sequence folders, {len(missing)} have none",
                                 ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else ""))


@register("tnllt")
def load_tnllt(root: Path, split: str | None = None, allow_missing: bool = False,
               annotation_only: bool = False) -> list[Sequence]:
    """``root/[split/]<seq>/{imgs/%05d.png, groundtruth.txt, absent_label.txt, attributes.txt, language.txt}``.

    The split is a sub-folder or a list file in ``root`` (``test.txt``, ``test_list.txt``, ...).
    """
    names, list_path, base = None, None, root
    if split is not None:
        list_path = _split_list(root, split)
        if list_path is not None:
            names = set(read_name_list(list_path))
        elif not (root / split).is_dir() and (shipped := shipped_split("tnllt", split)) is not None:
            # the released 150/50 lists (shipped_splits.py); every listed sequence must be present
            names, list_path = shipped, SPLITS_DIR / "tnllt.json"
        else:
            base = split_dir(root, split)
    out = []
    for seq_dir in _sequence_dirs(base, "groundtruth.txt"):
        if names is not None and seq_dir.name not in names:
            continue
        gt_path = seq_dir / "groundtruth.txt"
        boxes = read_xywh(gt_path)
        absent_path = seq_dir / "absent_label.txt"
        visible = (visibility_from_absent(read_absent(absent_path), len(boxes), absent_path)
                   if absent_path.is_file() else None)
        seq = sot_sequence(seq_dir.name, "tnllt", seq_dir, seq_dir / "imgs", gt_path,
                           read_language(seq_dir / "language.txt", annotation_only), visible, boxes,
                           allow_missing, annotation_only=annotation_only)
        read_attribute_flags(seq, seq_dir / "attributes.txt")
        out.append(seq)
    if names is not None:
        check_listed(list_path, names, out)
    return out
