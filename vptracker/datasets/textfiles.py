"""Readers for the plain-text and JSON annotation files every benchmark uses.

Encodings are decided, not guessed: every file is UTF-8, with or without a BOM (the releases are
ASCII; some tools add a BOM on save); anything else is an error naming the file and the line of
the first bad byte. Handles the quirks on purpose: CRLF line ends, comma / tab / space delimiters
(mixed within one file), trailing delimiters, blank trailing lines, and flag files written one value
per line or as one comma-separated line. Every number must be finite (``nan``, ``inf`` and values
that overflow to inf are refused). A malformed line raises :class:`DatasetFormatError` naming the
file and the line.
"""
from __future__ import annotations

import codecs
import json
import math
import re
from pathlib import Path

import numpy as np

from vptracker.datasets.base import DatasetFormatError
from vptracker.datasets.numparse import parse_numbers

_SPLIT = re.compile(r"[,\t ;]+")
UTF8 = "UTF-8 text (with or without a BOM)"


def read_text_file(path: str | Path) -> str:
    """The file's text with line ends normalised to ``\\n``; UTF-8 only, a leading BOM dropped."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise DatasetFormatError(path, None, "an existing annotation file") from None
    data = data.removeprefix(codecs.BOM_UTF8)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        start = data.rfind(b"\n", 0, err.start) + 1
        end = data.find(b"\n", err.start)
        shown = data[start:end if end >= 0 else len(data)].decode("utf-8", "backslashreplace").rstrip("\r")
        raise DatasetFormatError(path, line, UTF8, shown) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _lines(path: Path) -> list[str]:
    lines = read_text_file(path).split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def _numbers(line: str) -> list[str]:
    return [tok for tok in _SPLIT.split(line.strip()) if tok]


def _finite(tokens: list[str]) -> list[float] | None:
    """The tokens as floats, or None when one is not a number or not finite (nan, inf, 1e999)."""
    try:
        values = [float(t) for t in tokens]
    except ValueError:
        return None
    return values if all(math.isfinite(v) for v in values) else None


def _fast_numbers(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """``(values, values per line)`` of a plain-ASCII decimal file at numpy speed (trailing blank
    lines dropped), or None when the file needs the line reader (a BOM, exponents, other text).
    The values are the same doubles ``float()`` gives, so both paths read a file identically."""
    try:
        parsed = parse_numbers(path.read_bytes())
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise DatasetFormatError(path, None, "an existing annotation file") from None
    if parsed is None:
        return None
    values, per_line = parsed
    last = np.flatnonzero(per_line)
    return values, per_line[:last[-1] + 1] if len(last) else per_line[:0]


def read_boxes(path: str | Path, columns: int = 4) -> np.ndarray:
    """An ``(N, columns)`` float array, one row per line (``x,y,w,h`` for SOT ground truth)."""
    fast = _fast_numbers(Path(path))
    if fast is not None and (fast[1] == columns).all():  # else the line reader: its rules, its errors
        return fast[0].reshape(-1, columns)
    rows = []
    for lineno, line in enumerate(_lines(Path(path)), start=1):
        toks = _numbers(line)
        if len(toks) < columns:
            raise DatasetFormatError(path, lineno, f"{columns} numbers separated by commas, tabs or spaces", line)
        values = _finite(toks[:columns])
        if values is None:
            raise DatasetFormatError(path, lineno, f"{columns} numbers, all finite", line)
        rows.append(values)
    return np.asarray(rows, dtype=np.float64).reshape(-1, columns)


def read_xywh(path: str | Path) -> np.ndarray:
    """SOT ground truth ``x,y,w,h``, one row per line; a negative width or height is an error.

    Zero sizes stay: the toolkits write absent frames as ``0,0,0,0`` and score them that way.
    """
    boxes = read_boxes(path, 4)
    bad = (boxes[:, 2] < 0) | (boxes[:, 3] < 0)
    if bad.any():
        line = int(np.argmax(bad)) + 1
        raise DatasetFormatError(path, line, "x,y,w,h with width and height >= 0",
                                 ",".join(f"{v:g}" for v in boxes[line - 1]))
    return boxes


def read_table_lines(path: str | Path, min_columns: int) -> tuple[np.ndarray, np.ndarray]:
    """``(table, line_numbers)``: a numeric table (e.g. MOTChallenge ``gt.txt``) and the file line of
    each row (blank lines are skipped). Rows keep up to the widest line's columns, shorter rows
    padded with -1 (MOTChallenge's "not given")."""
    rows, numbers = [], []
    for lineno, line in enumerate(_lines(Path(path)), start=1):
        if not line.strip():
            continue
        toks = _numbers(line)
        if len(toks) < min_columns:
            raise DatasetFormatError(path, lineno, f"at least {min_columns} comma-separated numbers", line)
        values = _finite(toks)
        if values is None:
            raise DatasetFormatError(path, lineno, "numbers, all finite", line)
        rows.append(values)
        numbers.append(lineno)
    width = max((len(r) for r in rows), default=min_columns)
    out = np.full((len(rows), width), -1.0)
    for i, r in enumerate(rows):
        out[i, :len(r)] = r
    return out, np.asarray(numbers, dtype=np.int64)


def read_table(path: str | Path, min_columns: int) -> np.ndarray:
    """The table of :func:`read_table_lines` without the line numbers."""
    return read_table_lines(path, min_columns)[0]


def read_flags(path: str | Path, allowed: tuple[int, ...] | None = None, what: str = "flags") -> np.ndarray:
    """Integer flags, one per line or all on one comma-separated line (LaSOT), as an int array.

    ``allowed`` (e.g. ``(0, 1)``) refuses any other value, naming the line and the value's place.
    """
    fast = _fast_numbers(Path(path))
    if fast is not None:
        flags = fast[0]
        if (flags == np.round(flags)).all() and (allowed is None or np.isin(flags, allowed).all()):
            return flags.astype(np.int64)
    values = []
    expected = f"{what} " + (" or ".join(str(a) for a in allowed) if allowed else "(integers)")
    for lineno, line in enumerate(_lines(Path(path)), start=1):
        for k, tok in enumerate(_numbers(line), start=1):
            value = _finite([tok])
            if value is None or not value[0].is_integer() or (allowed and int(value[0]) not in allowed):
                raise DatasetFormatError(path, lineno, expected, tok if k == 1 else f"{tok} (value {k} on the line)")
            values.append(int(value[0]))
    return np.asarray(values, dtype=np.int64)


def read_text(path: str | Path) -> str:
    """A one-line text file (language description), whitespace and CRLF stripped."""
    return " ".join(line.strip() for line in _lines(Path(path)) if line.strip())


def read_name_list(path: str | Path) -> list[str]:
    """Names one per line (split lists, seqmaps), in file order, blank lines dropped."""
    return [line.strip() for line in _lines(Path(path)) if line.strip()]


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def read_json(path: str | Path):
    """A JSON document; ``NaN``/``Infinity`` (which Python's json accepts) are refused."""
    text = read_text_file(path)
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as err:
        raise DatasetFormatError(path, err.lineno, f"valid JSON ({err.msg})") from None
    except ValueError as err:
        raise DatasetFormatError(path, None, f"finite JSON numbers ({err})") from None


def json_int(value) -> bool:
    """True for a JSON integer (``3``), False for booleans, floats (``3.5``, ``3.0``) and strings."""
    return isinstance(value, int) and not isinstance(value, bool)
