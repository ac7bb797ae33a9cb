"""SOT ground truth and result files for evaluation: annotation files only, never images.

Loading is separate from scoring: this module turns the official layouts into
:class:`SOTGroundTruth` records and result folders into ``(N, 4)`` arrays; `vptracker.eval.sot`
scores them without touching a file.

Layouts recognised by :func:`load_ground_truth` (``root`` is the folder given as ``--gt-root``):

* TNL2K evaluation toolkit: ``gt_rect/<seq>.txt``, ``absent/<seq>.txt`` (1 = absent),
  ``att/<seq>_attribute.txt`` (17 flags, one per line, CRLF).
* TNL2K / TNLLT dataset: ``<seq>/groundtruth.txt`` with ``absent.txt`` or ``absent_label.txt``
  (1 = absent) and ``attributes.txt`` (flags) when present.
* LaSOT: ``<cls>/<cls>-N/groundtruth.txt`` with ``full_occlusion.txt`` and ``out_of_view.txt``
  (one comma-separated line each); visible = neither flag set.
* OTB: ``<Seq>/groundtruth_rect.txt`` (comma, tab or space) and ``attrs.txt`` (attribute names).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vptracker.datasets.base import DatasetFormatError
from vptracker.datasets.textfiles import read_boxes, read_flags, read_text

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


_SEPARATOR_TABLE = bytes.maketrans(b",\t;\r", b"    ")
_SPACE, _NEWLINE, _DOT, _MINUS, _PLUS = 32, 10, 46, 45, 43


def parse_numbers(text: bytes) -> tuple[np.ndarray, np.ndarray] | None:
    """Plain decimal numbers (``-12``, ``3.25``) separated by commas, tabs, spaces, semicolons,
    parsed with numpy instead of one ``float()`` per token.

    Returns ``(values, tokens_per_line)`` or None when the text holds anything else (exponents,
    ``nan``, more than 15 digits), so that the caller falls back to the exact slow reader. Each
    value is ``mantissa / 10**decimals`` with both exact, hence the correctly rounded double that
    ``float()`` gives.
    """
    buf = np.frombuffer(text.translate(_SEPARATOR_TABLE), dtype=np.uint8)
    if buf.size == 0:
        return np.empty(0), np.empty(0, dtype=np.int64)
    is_digit = (buf >= 48) & (buf <= 57)
    in_token = (buf != _SPACE) & (buf != _NEWLINE)
    if not np.all(is_digit | ~in_token | (buf == _DOT) | (buf == _MINUS) | (buf == _PLUS)):
        return None
    start = in_token.copy()
    start[1:] &= ~in_token[:-1]
    token_of = np.cumsum(start.view(np.uint8), dtype=np.int32) - 1
    n_tokens = int(token_of[-1]) + 1
    is_sign = (buf == _MINUS) | (buf == _PLUS)
    if np.any(is_sign & ~start):
        return None
    digit_token = token_of[is_digit]
    n_digits = np.bincount(digit_token, minlength=n_tokens)
    dots = np.bincount(token_of[buf == _DOT], minlength=n_tokens)
    if np.any(n_digits == 0) or np.any(n_digits > 15) or np.any(dots > 1):
        return None
    first_digit = np.concatenate([[0], np.cumsum(n_digits)[:-1]])
    rank = first_digit[digit_token] + n_digits[digit_token] - 1 - np.arange(digit_token.size)
    # <= 15 digits keeps every term and partial sum an integer below 2**53: exact in float64.
    mantissa = np.bincount(digit_token, weights=(buf[is_digit] - 48) * (10.0 ** rank), minlength=n_tokens)
    dot_pos = np.full(n_tokens, np.iinfo(np.int64).max)
    dot_pos[token_of[buf == _DOT]] = np.flatnonzero(buf == _DOT)
    decimals = np.bincount(digit_token, weights=(np.flatnonzero(is_digit) > dot_pos[digit_token]),
                           minlength=n_tokens).astype(np.int64)
    values = mantissa / (10.0 ** decimals)
    values[buf[start] == _MINUS] *= -1.0
    line_of_start = np.cumsum((buf == _NEWLINE).view(np.uint8), dtype=np.int32)[start]
    tokens_per_line = np.bincount(line_of_start)
    return values, tokens_per_line[tokens_per_line > 0]


def _read_bytes(path: str | Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes().lstrip(b"\xef\xbb\xbf")
    except FileNotFoundError:
        raise DatasetFormatError(path, None, f"an existing {what}") from None


def fast_boxes(path: str | Path, columns: int = 4) -> np.ndarray:
    """``read_boxes`` semantics at numpy speed; any irregular file goes through ``read_boxes``.

    The fast path only accepts files where every line has exactly ``columns`` plain numbers, so a
    malformed file still gets ``read_boxes``' error naming the file and line.
    """
    parsed = parse_numbers(_read_bytes(path, "box file"))
    if parsed is not None and np.all(parsed[1] == columns):
        return parsed[0].reshape(-1, columns)
    return read_boxes(path, columns)


def fast_flags(path: str | Path) -> np.ndarray:
    """``read_flags`` at numpy speed (one flag per line or one comma-separated line)."""
    parsed = parse_numbers(_read_bytes(path, "flag file"))
    if parsed is not None:
        return parsed[0].astype(np.int64)
    return read_flags(path)


def _cut_flags(flags: np.ndarray, n: int, path: Path) -> np.ndarray:
    # TNL2K quirk: advSamp_monitor_bikeyellow has 929 gt lines and 930 absent lines; the toolkit
    # only ever indexes the first len(gt) flags, so the extra ones are cut, never an error.
    if len(flags) < n:
        raise DatasetFormatError(path, None, f"{n} flags (one per ground-truth line), found {len(flags)}")
    return flags[:n]


def _toolkit_attributes(path: Path) -> dict[str, bool]:
    if not path.is_file():
        return {}
    flags = fast_flags(path)
    names = TNL2K_ATTRIBUTES if len(flags) == len(TNL2K_ATTRIBUTES) else [f"att{i + 1}" for i in range(len(flags))]
    return {name: bool(v) for name, v in zip(names, flags)}


def _load_toolkit_folder(root: Path) -> list[SOTGroundTruth]:
    out = []
    for gt_file in sorted((root / "gt_rect").glob("*.txt")):
        name = gt_file.stem
        boxes = fast_boxes(gt_file)
        absent_file = root / "absent" / f"{name}.txt"
        visible = None
        if absent_file.is_file():
            visible = _cut_flags(fast_flags(absent_file), len(boxes), absent_file) == 0
        attributes = _toolkit_attributes(root / "att" / f"{name}_attribute.txt")
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
    out = {}
    missing = []
    for name in names:
        path = results_dir / f"{name}.txt"
        if path.is_file():
            out[name] = fast_boxes(path)
        else:
            missing.append(name)
    if missing and not skip_missing:
        raise DatasetFormatError(results_dir / f"{missing[0]}.txt", None,
                                 f"a result file for every sequence ({len(missing)} missing, e.g. {missing[:3]})")
    return out
