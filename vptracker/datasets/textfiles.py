"""Readers for the plain-text annotation files every benchmark uses.

Handles the quirks on purpose: CRLF line ends, comma / tab / space delimiters (mixed within one
file), trailing delimiters, blank trailing lines, and flag files written one value per line or as
one comma-separated line. A malformed line raises :class:`DatasetFormatError` naming the file and
the line.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from vptracker.datasets.base import DatasetFormatError

_SPLIT = re.compile(r"[,\t ;]+")


def _lines(path: Path) -> list[str]:
    try:
        text = Path(path).read_text(encoding="utf-8-sig", errors="replace")
    except FileNotFoundError:
        raise DatasetFormatError(path, None, "an existing annotation file") from None
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def _numbers(line: str) -> list[str]:
    return [tok for tok in _SPLIT.split(line.strip()) if tok]


def read_boxes(path: str | Path, columns: int = 4) -> np.ndarray:
    """An ``(N, columns)`` float array, one row per line (``x,y,w,h`` for SOT ground truth)."""
    rows = []
    for lineno, line in enumerate(_lines(Path(path)), start=1):
        toks = _numbers(line)
        if len(toks) < columns:
            raise DatasetFormatError(path, lineno, f"{columns} numbers separated by commas, tabs or spaces", line)
        try:
            rows.append([float(t) for t in toks[:columns]])
        except ValueError:
            raise DatasetFormatError(path, lineno, f"{columns} numbers", line) from None
    return np.asarray(rows, dtype=np.float64).reshape(-1, columns)


def read_table(path: str | Path, min_columns: int) -> np.ndarray:
    """A numeric table (e.g. MOTChallenge ``gt.txt``); rows keep up to the widest line's columns."""
    rows = []
    for lineno, line in enumerate(_lines(Path(path)), start=1):
        if not line.strip():
            continue
        toks = _numbers(line)
        if len(toks) < min_columns:
            raise DatasetFormatError(path, lineno, f"at least {min_columns} comma-separated numbers", line)
        try:
            rows.append([float(t) for t in toks])
        except ValueError:
            raise DatasetFormatError(path, lineno, "numbers", line) from None
    width = max((len(r) for r in rows), default=min_columns)
    out = np.full((len(rows), width), -1.0)
    for i, r in enumerate(rows):
        out[i, :len(r)] = r
    return out


def read_flags(path: str | Path) -> np.ndarray:
    """0/1 flags, one per line or all on one comma-separated line (LaSOT), as an int array."""
    values = []
    for lineno, line in enumerate(_lines(Path(path)), start=1):
        for tok in _numbers(line):
            try:
                values.append(int(float(tok)))
            except ValueError:
                raise DatasetFormatError(path, lineno, "0/1 flags", line) from None
    return np.asarray(values, dtype=np.int64)


def read_text(path: str | Path) -> str:
    """A one-line text file (language description), whitespace and CRLF stripped."""
    return " ".join(line.strip() for line in _lines(Path(path)) if line.strip())
