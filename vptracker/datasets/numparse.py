"""Numeric annotation and result files at numpy speed, many files per call.

A benchmark is thousands of small text files (TNL2K test: 2,100 of them, 516,038 box lines per
tracker); one ``float()`` per token costs more than all of the scoring. The files are joined and
parsed in one vectorised pass. Anything irregular (exponents, ``nan``, a line with the wrong
number of values) falls back, file by file, to a strict line reader whose errors name the file,
the line and what was expected.

Rules (the same on both paths, so that a file reads the same whichever path it takes): UTF-8
with or without a BOM; CRLF, CR or LF line ends; values separated by commas, tabs, spaces or
semicolons; blank lines skipped (as ``np.loadtxt`` does); every box line holds exactly
``columns`` finite numbers (an 8-value polygon line is an error, never a box); flags are 0 or 1.
"""
from __future__ import annotations

import math
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from vptracker.datasets.base import DatasetFormatError

_SPLIT = re.compile(r"[,\t ;]+")

# byte classes: 0 separator (space , ; tab CR), 1 newline, 2 digit, 3 dot, 4 sign, 5 anything else
_CLASS = np.full(256, 5, dtype=np.uint8)
_CLASS[[32, 44, 59, 9, 13]] = 0
_CLASS[10] = 1
_CLASS[48:58] = 2
_CLASS[46] = 3
_CLASS[[43, 45]] = 4
_POW10 = 10.0 ** np.arange(32)
_MAX_DIGITS = 15  # every term and partial sum of the mantissa stays an integer below 2**53


def parse_numbers(text: bytes) -> tuple[np.ndarray, np.ndarray] | None:
    """``(values, values per line)`` for plain decimals (``-12``, ``3.25``, ``.5``).

    Returns None when the text holds anything else. Each value is ``mantissa / 10**decimals``
    with both exact, hence the same correctly rounded double that ``float()`` returns.
    """
    buf = np.frombuffer(text, dtype=np.uint8)
    if buf.size == 0:
        return np.empty(0), np.zeros(1, dtype=np.int64)
    cls = _CLASS[buf]
    if (cls == 5).any():
        return None
    in_token = cls >= 2
    start = in_token.copy()
    start[1:] &= ~in_token[:-1]
    end = in_token.copy()
    end[:-1] &= ~in_token[1:]
    starts, ends = np.flatnonzero(start), np.flatnonzero(end)
    if len(starts) == 0:  # only separators and blank lines
        return np.empty(0), np.zeros(int((cls == 1).sum()) + 1, dtype=np.int64)
    lengths = ends - starts + 1
    if ((cls == 4) & ~start).any() or lengths.max() > _MAX_DIGITS + 2:
        return None  # a sign inside a token ("3-") or too many digits for an exact mantissa
    # Horner's rule over token positions: one pass per character column, on tokens not bytes.
    n_tokens = len(starts)
    mantissa = np.zeros(n_tokens)
    decimals = np.zeros(n_tokens, dtype=np.int64)
    n_digits = np.zeros(n_tokens, dtype=np.int64)
    seen_dot = np.zeros(n_tokens, dtype=bool)
    active = np.arange(n_tokens)
    for k in range(int(lengths.max())):
        active = active[lengths[active] > k]
        kind = cls[starts[active] + k]
        digit = active[kind == 2]
        mantissa[digit] = mantissa[digit] * 10.0 + (buf[starts[digit] + k] - 48)
        n_digits[digit] += 1
        decimals[digit] += seen_dot[digit]
        dot = active[kind == 3]
        if seen_dot[dot].any():
            return None  # two dots in one token
        seen_dot[dot] = True
    if (n_digits == 0).any() or (n_digits > _MAX_DIGITS).any():
        return None  # "-" or "." alone, or a mantissa float64 cannot hold exactly
    values = mantissa / _POW10[decimals]
    values[buf[starts] == 45] *= -1.0
    # tokens before each newline, hence per line (fewer newlines than tokens to search)
    before = np.searchsorted(starts, np.flatnonzero(cls == 1))
    return values, np.diff(np.concatenate([[0], before, [n_tokens]]))


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes().removeprefix(b"\xef\xbb\xbf")
    except FileNotFoundError:
        raise DatasetFormatError(path, None, f"an existing {what}") from None


def _parse_many(blobs: list[bytes]) -> tuple[list[np.ndarray], list[np.ndarray]] | None:
    """Per file: values and values per line; large inputs are parsed as two halves in two threads
    (numpy releases the GIL in the array work)."""
    if len(blobs) >= 64 and sum(map(len, blobs)) > (1 << 22):
        half = len(blobs) // 2
        with ThreadPoolExecutor(2) as pool:
            first, second = pool.map(_parse_joined, (blobs[:half], blobs[half:]))
        if first is None or second is None:
            return None
        return first[0] + second[0], first[1] + second[1]
    return _parse_joined(blobs)


def _parse_joined(blobs: list[bytes]) -> tuple[list[np.ndarray], list[np.ndarray]] | None:
    parsed = parse_numbers(b"\n".join(blobs))
    if parsed is None:
        return None
    values, tokens_per_line = parsed
    lines_per_file = np.array([b.count(b"\n") + 1 for b in blobs])
    first_line = np.concatenate([[0], np.cumsum(lines_per_file)])
    per_file_tokens = np.add.reduceat(tokens_per_line, first_line[:-1])
    cuts = np.cumsum(per_file_tokens)[:-1]
    return (np.split(values, cuts),
            [tokens_per_line[first_line[i]:first_line[i + 1]] for i in range(len(blobs))])


def _text_lines(path: Path, blob: bytes) -> list[tuple[int, str]]:
    """``(line number, text)`` of every non-blank line."""
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DatasetFormatError(path, None, f"UTF-8 text (byte {e.start} is not)") from None
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return [(i, line) for i, line in enumerate(lines, start=1) if line.strip()]


def _finite_values(path: Path, lineno: int, line: str, expected: str) -> list[float]:
    values = []
    for tok in (t for t in _SPLIT.split(line.strip()) if t):
        try:
            v = float(tok)
        except ValueError:
            raise DatasetFormatError(path, lineno, expected, line.strip()) from None
        if not math.isfinite(v):
            raise DatasetFormatError(path, lineno, f"finite numbers, found {tok}", line.strip())
        values.append(v)
    return values


def strict_boxes(path: Path, columns: int = 4, blob: bytes | None = None) -> np.ndarray:
    """The slow path: one line at a time, each exactly ``columns`` finite numbers."""
    path = Path(path)
    blob = _read(path, "box file") if blob is None else blob
    expected = f"{columns} numbers per line" + (" (x,y,w,h)" if columns == 4 else "")
    rows = []
    for lineno, line in _text_lines(path, blob):
        values = _finite_values(path, lineno, line, expected)
        if len(values) != columns:
            hint = " (a polygon? give boxes as x,y,w,h)" if len(values) == 8 and columns == 4 else ""
            raise DatasetFormatError(path, lineno, f"{expected}, found {len(values)}{hint}", line.strip())
        rows.append(values)
    return np.asarray(rows, dtype=np.float64).reshape(-1, columns)


def strict_flags(path: Path, blob: bytes | None = None) -> np.ndarray:
    """0/1 flags, one per line or comma-separated on one line; anything else names its line."""
    path = Path(path)
    blob = _read(path, "flag file") if blob is None else blob
    flags = []
    for lineno, line in _text_lines(path, blob):
        for v in _finite_values(path, lineno, line, "0/1 flags"):
            if v not in (0.0, 1.0):
                raise DatasetFormatError(path, lineno, f"0/1 flags, found {v:g}", line.strip())
            flags.append(int(v))
    return np.asarray(flags, dtype=np.int64)


def boxes_many(paths: list[Path], columns: int = 4, what: str = "box file") -> list[np.ndarray]:
    """Boxes of each file (``(N, columns)``; a file that is not regular goes through
    :func:`strict_boxes`, which raises naming the file and line)."""
    paths = [Path(p) for p in paths]
    blobs = [_read(p, what) for p in paths]
    parsed = _parse_many(blobs) if blobs else ([], [])
    if parsed is None:
        return [boxes_one(p, columns, blob) for p, blob in zip(paths, blobs)]
    out = []
    for path, blob, values, counts in zip(paths, blobs, *parsed):
        counts = counts[counts > 0]
        out.append(values.reshape(-1, columns) if (counts == columns).all() else strict_boxes(path, columns, blob))
    return out


def boxes_one(path: Path, columns: int = 4, blob: bytes | None = None) -> np.ndarray:
    blob = _read(Path(path), "box file") if blob is None else blob
    parsed = _parse_many([blob])
    if parsed is not None:
        counts = parsed[1][0]
        counts = counts[counts > 0]
        if (counts == columns).all():
            return parsed[0][0].reshape(-1, columns)
    return strict_boxes(path, columns, blob)


def flags_many(paths: list[Path]) -> list[np.ndarray]:
    """0/1 flags of each file: one flag per line or comma-separated on one line."""
    paths = [Path(p) for p in paths]
    blobs = [_read(p, "flag file") for p in paths]
    parsed = _parse_many(blobs) if blobs else ([], [])
    if parsed is None:
        return [strict_flags(p, b) for p, b in zip(paths, blobs)]
    return [v.astype(np.int64) if np.isin(v, (0.0, 1.0)).all() else strict_flags(p, b)
            for p, b, v in zip(paths, blobs, parsed[0])]
