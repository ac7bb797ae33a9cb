"""MOTChallenge text files checked before TrackEval reads them.

TrackEval parses ``gt.txt`` and result files itself and fails deep inside its matching on a
NaN (``matrix contains invalid numeric entries``) or on a UTF-8 BOM in front of the first frame
number. Every file is therefore read here first: a malformed line is one
:class:`~vptracker.datasets.base.DatasetFormatError` naming the file, the line and what was
expected, and a clean file is handed on as plain UTF-8 with LF line ends (a BOM, CRLF or CR line
ends and blank lines give the same scores as clean data).

Rules: every non-blank line holds at least 6 numbers separated by commas, spaces or tabs
(``frame, id, x, y, w, h, ...``); every value is finite; the frame is an integer >= 1, the id
an integer; w and h are >= 0.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from vptracker.datasets.base import DatasetFormatError
from vptracker.datasets.numparse import parse_numbers

_SPLIT = re.compile(r"[,\t ;]+")  # the separators numparse reads
MIN_COLUMNS = 6


def _decode(path: Path, what: str) -> str:
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise DatasetFormatError(path, None, f"an existing {what}") from None
    try:
        text = blob.removeprefix(b"\xef\xbb\xbf").decode("utf-8")
    except UnicodeDecodeError as e:
        raise DatasetFormatError(path, None, f"a UTF-8 {what} (byte {e.start} is not UTF-8)") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _vector_ok(text: str, sizes: bool = True) -> bool:
    """The fast check: plain decimals only, every rule held (no per-line Python)."""
    parsed = parse_numbers(text.encode())
    if parsed is None:
        return False  # exponents, nan, inf or text: the line loop decides
    values, counts = parsed
    counts = counts[counts > 0]
    if len(counts) == 0 or (counts < MIN_COLUMNS).any():
        return len(counts) == 0
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    frame, ident, w, h = values[first], values[first + 1], values[first + 4], values[first + 5]
    return bool((frame >= 1).all() and (frame == np.floor(frame)).all() and (ident == np.floor(ident)).all()
                and (not sizes or ((w >= 0).all() and (h >= 0).all())))


def _first_bad_line(path: Path, text: str, sizes: bool = True) -> DatasetFormatError | None:
    expected = f"at least {MIN_COLUMNS} numbers per line (frame, id, x, y, w, h, ...)"
    for lineno, line in enumerate(text.split("\n"), start=1):
        tokens = [t for t in _SPLIT.split(line.strip()) if t]
        if not tokens:
            continue
        try:
            values = [float(t) for t in tokens]
        except ValueError:
            return DatasetFormatError(path, lineno, expected, line.strip())
        if len(values) < MIN_COLUMNS:
            return DatasetFormatError(path, lineno, f"{expected}, found {len(values)}", line.strip())
        bad = [t for t, v in zip(tokens, values) if not math.isfinite(v)]
        if bad:
            return DatasetFormatError(path, lineno, f"finite numbers, found {bad[0]}", line.strip())
        frame, ident, _, _, w, h = values[:6]
        if frame < 1 or frame != int(frame):
            return DatasetFormatError(path, lineno, "an integer frame number >= 1 in column 1", line.strip())
        if ident != int(ident):
            return DatasetFormatError(path, lineno, "an integer id in column 2", line.strip())
        if sizes and (w < 0 or h < 0):
            return DatasetFormatError(path, lineno, "a width and height >= 0 (columns 5 and 6)", line.strip())
    return None  # only numbers the fast parser does not take (long mantissas, exponents)


def checked_text(path: str | Path, what: str = "MOTChallenge file", sizes: bool = True) -> str:
    """The text of ``path`` after every rule held (``sizes``: columns 5, 6 are w, h, not x2, y2)."""
    path = Path(path)
    text = _decode(path, what)
    if not _vector_ok(text, sizes):
        error = _first_bad_line(path, text, sizes)
        if error is not None:
            raise error
    return text


def clean_mot_file(src: str | Path, dst: str | Path, what: str = "MOTChallenge file") -> None:
    """Checks ``src`` and writes it to ``dst`` as plain UTF-8 with LF line ends."""
    lines = [line for line in checked_text(src, what).split("\n") if line.strip()]
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    # blank lines are skipped by the rules above; TrackEval cannot read them, so they go
    dst.write_text("".join(line + "\n" for line in lines), encoding="utf-8", newline="\n")


def read_mot_lines(path: str | Path, what: str = "MOTChallenge file", sizes: bool = True) -> list[list[float]]:
    """Every line of a checked file as all its numbers (at least six each)."""
    return [[float(t) for t in _SPLIT.split(line.strip()) if t]
            for line in checked_text(path, what, sizes).split("\n") if line.strip()]


def read_mot_rows(path: str | Path, what: str = "MOTChallenge file", sizes: bool = True) -> np.ndarray:
    """The first six columns ``(N, 6)`` of a checked file (an empty file: no rows)."""
    rows = [line[:MIN_COLUMNS] for line in read_mot_lines(path, what, sizes)]
    return np.asarray(rows, dtype=np.float64).reshape(-1, MIN_COLUMNS)
