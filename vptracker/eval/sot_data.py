"""SOT ground truth and result files for evaluation: annotation files only, never images.

Loading is separate from scoring: this module turns the official layouts into
:class:`SOTGroundTruth` records and result folders into ``(N, 4)`` arrays; `vptracker.eval.sot`
scores them without touching a file.

Layouts recognised by :func:`load_ground_truth` (``root`` is the folder given as ``--gt-root``):

* TNL2K evaluation toolkit: ``gt_rect/<seq>.txt``, ``absent/<seq>.txt`` (1 = absent),
  ``att/<seq>_attribute.txt`` (17 flags, one per line, CRLF).
* TNL2K / TNLLT dataset: ``<seq>/groundtruth.txt`` with ``absent.txt`` or ``absent_label.txt``
  (1 = absent; without one, all-zero gt rows are the absent frames) and ``attributes.txt``
  (flags) when present.
* LaSOT: ``<cls>/<cls>-N/groundtruth.txt`` with ``full_occlusion.txt`` and ``out_of_view.txt``
  (one comma-separated line each); visible = neither flag set.
* OTB: ``<Seq>/groundtruth_rect.txt`` (comma, tab or space) and ``attrs.txt`` (attribute names).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vptracker.datasets.base import DatasetFormatError
from vptracker.datasets.textfiles import read_text
from vptracker.eval.numparse import boxes_many, boxes_one, flags_many

# Attribute order of the TNL2K toolkit's per-sequence attribute files (paper Table 2 order).
TNL2K_ATTRIBUTES = ("CM", "ROT", "DEF", "FOC", "IV", "OV", "POC", "VC", "SV", "BC", "MB", "ARC", "LR", "FM",
                    "AS", "TC", "MS")



@dataclass
class SOTGroundTruth:
    """One SOT sequence's annotations: ``boxes`` ``(N, 4)`` x,y,w,h; ``visible`` ``(N,)`` or None."""

    name: str
    boxes: np.ndarray
    visible: np.ndarray | None = None      # None: the dataset has no absence flags (OTB)
    attributes: dict[str, bool] = field(default_factory=dict)
    source: str = ""                       # the gt file, for messages

    def __post_init__(self):
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)
        if self.visible is not None:
            self.visible = np.asarray(self.visible, dtype=bool).reshape(-1)
            if len(self.visible) != len(self.boxes):
                raise ValueError(f"{self.source or self.name}: {len(self.boxes)} boxes but "
                                 f"{len(self.visible)} visibility flags")

    def __len__(self) -> int:
        return len(self.boxes)


def fast_boxes(path: str | Path, columns: int = 4) -> np.ndarray:
    return boxes_one(Path(path), columns)


def fast_flags(path: str | Path) -> np.ndarray:
    return flags_many([Path(path)])[0]


def _cut_flags(flags: np.ndarray, n: int, path: Path) -> np.ndarray:
    # TNL2K quirk: advSamp_monitor_bikeyellow has 929 gt lines and 930 absent lines; the toolkit
    # only ever indexes the first len(gt) flags, so the extra ones are cut, never an error.
    if len(flags) < n:
        raise DatasetFormatError(path, None, f"{n} flags (one per ground-truth line), found {len(flags)}")
    return flags[:n]


def attribute_names(flags: np.ndarray) -> list[str]:
    """TNL2K's names for its 17 flags; ``att1``.. for files of another length."""
    if len(flags) == len(TNL2K_ATTRIBUTES):
        return list(TNL2K_ATTRIBUTES)
    return [f"att{i + 1}" for i in range(len(flags))]


def _toolkit_attributes(path: Path) -> dict[str, bool]:
    if not path.is_file():
        return {}
    flags = fast_flags(path)
    return {name: bool(v) for name, v in zip(attribute_names(flags), flags)}


def _load_toolkit_folder(root: Path) -> list[SOTGroundTruth]:
    gt_files = sorted((root / "gt_rect").glob("*.txt"))
    names = [f.stem for f in gt_files]
    all_boxes = boxes_many(gt_files, what="ground-truth file")
    absent_files = [root / "absent" / f"{n}.txt" for n in names]
    have_absent = [i for i, f in enumerate(absent_files) if f.is_file()]
    absent = dict(zip(have_absent, flags_many([absent_files[i] for i in have_absent])))
    att_files = [root / "att" / f"{n}_attribute.txt" for n in names]
    have_att = [i for i, f in enumerate(att_files) if f.is_file()]
    atts = dict(zip(have_att, flags_many([att_files[i] for i in have_att])))
    out = []
    for i, (name, gt_file, boxes) in enumerate(zip(names, gt_files, all_boxes)):
        visible = None
        if i in absent:
            visible = _cut_flags(absent[i], len(boxes), absent_files[i]) == 0
        attributes = {a: bool(v) for a, v in zip(attribute_names(atts[i]), atts[i])} if i in atts else {}
        out.append(SOTGroundTruth(name, boxes, visible, attributes, str(gt_file)))
    return out


def _load_sequence_folder(seq_dir: Path) -> SOTGroundTruth:
    gt_file = seq_dir / "groundtruth.txt"
    if not gt_file.is_file():
        gt_file = seq_dir / "groundtruth_rect.txt"
    boxes = fast_boxes(gt_file)
    n = len(boxes)
    visible = None
    for absent_name in ("absent_label.txt", "absent.txt"):
        if (seq_dir / absent_name).is_file():
            visible = _cut_flags(fast_flags(seq_dir / absent_name), n, seq_dir / absent_name) == 0
            break
    if (seq_dir / "full_occlusion.txt").is_file() and (seq_dir / "out_of_view.txt").is_file():
        occluded = _cut_flags(fast_flags(seq_dir / "full_occlusion.txt"), n, seq_dir / "full_occlusion.txt")
        out_of_view = _cut_flags(fast_flags(seq_dir / "out_of_view.txt"), n, seq_dir / "out_of_view.txt")
        visible = (occluded == 0) & (out_of_view == 0)
    if visible is None and gt_file.name == "groundtruth.txt":
        # TNL2K ships its absent flags only in the evaluation toolkit; they are exactly the all-zero
        # gt rows (65,253 of 65,253 in the test set), so the dataset layout infers them.
        visible = ~(boxes == 0).all(axis=1)
    attributes: dict[str, bool] = {}
    if (seq_dir / "attrs.txt").is_file():  # OTB: the names of the attributes the sequence has
        attributes = {a.strip(): True for a in read_text(seq_dir / "attrs.txt").split(",") if a.strip()}
    elif (seq_dir / "attributes.txt").is_file():
        attributes = _toolkit_attributes(seq_dir / "attributes.txt")
    return SOTGroundTruth(seq_dir.name, boxes, visible, attributes, str(gt_file))


def load_ground_truth(root: str | Path) -> list[SOTGroundTruth]:
    """Every sequence under ``root`` in one of the official layouts (see the module docstring)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetFormatError(root, None, "a ground-truth folder")
    if (root / "gt_rect").is_dir():
        sequences = _load_toolkit_folder(root)
    else:
        seq_dirs = [p.parent for pattern in ("*/groundtruth.txt", "*/groundtruth_rect.txt",
                                             "*/*/groundtruth.txt", "*/*/groundtruth_rect.txt")
                    for p in root.glob(pattern)]
        if (root / "groundtruth.txt").is_file() or (root / "groundtruth_rect.txt").is_file():
            seq_dirs.append(root)
        sequences = [_load_sequence_folder(d) for d in sorted(set(seq_dirs), key=lambda p: p.name)]
    if not sequences:
        raise DatasetFormatError(root, None, "gt_rect/<seq>.txt (TNL2K toolkit), <seq>/groundtruth.txt "
                                 "(TNL2K, TNLLT, LaSOT <cls>/<cls>-N/) or <Seq>/groundtruth_rect.txt (OTB)")
    for seq in sequences:
        if len(seq) == 0:
            raise DatasetFormatError(seq.source or root, None, "at least one ground-truth box line (the file is empty)")
    names = [s.name for s in sequences]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise DatasetFormatError(root, None, f"unique sequence names, found duplicates {dup[:5]}")
    return sequences


def load_results(results_dir: str | Path, names: list[str], skip_missing: bool = False) -> dict[str, np.ndarray]:
    """``<results_dir>/<seq>.txt`` boxes (x,y,w,h per frame) for each name; missing files raise."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise DatasetFormatError(results_dir, None, "a results folder holding <seq>.txt files")
    paths = {name: results_dir / f"{name}.txt" for name in names}
    missing = [name for name, path in paths.items() if not path.is_file()]
    if missing and not skip_missing:
        raise DatasetFormatError(paths[missing[0]], None,
                                 f"a result file for every sequence ({len(missing)} missing, e.g. {missing[:3]})")
    present = [name for name in names if name not in set(missing)]
    results = dict(zip(present, boxes_many([paths[n] for n in present], what="result file")))
    for name, boxes in results.items():
        if len(boxes) == 0:
            raise DatasetFormatError(paths[name], None, "one x,y,w,h line per frame (the file is empty)")
    return results
