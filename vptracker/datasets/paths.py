"""Paths a reader takes from annotation files, and folder listings that never walk into a link loop.

An annotation file can name any path (SYNTH-PEDES ``file_path``, a CRTrack query sentence that
becomes a ground-truth folder name). :func:`inside_root` refuses one whose text leaves the dataset
root (an absolute path, or ``..`` climbing above it): the check is on the text, so links the user
put inside the root still work (datasets are often assembled from links to other disks), while a
file downloaded with the annotations cannot point a reader at ``/etc``. :func:`existing_file` turns
a missing file into one error naming the annotation file and the entry.

:func:`subfolders` lists the sub-folders of a dataset folder without the links that point back to
that folder or one above it: such a link is a loop (a sequence inside a sequence inside ...), and
following it made readers report errors deep inside it. The loops left out are named in one warning.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

from vptracker.datasets.base import DatasetFormatError


def inside_root(root: str | Path, relative: str, annotation: str | Path, entry: str, line: int | None = None) -> Path:
    """``root / relative``; a DatasetFormatError naming ``annotation`` (and ``line``) and ``entry``
    when the text is absolute or climbs out of ``root``."""
    base = os.path.normpath(os.fspath(root))
    joined = os.path.normpath(os.path.join(base, relative))
    if os.path.isabs(relative) or os.path.commonpath([base, joined]) != base:
        raise DatasetFormatError(annotation, line, f"{entry} a path inside {root}", relative)
    return Path(root) / relative


def existing_file(path: str | Path, annotation: str | Path, entry: str, what: str = "image") -> None:
    """A DatasetFormatError naming ``annotation`` and ``entry`` when ``path`` is not a file."""
    if not os.path.isfile(path):
        raise DatasetFormatError(annotation, None, f"{entry} naming an existing {what} file ({path} is missing)")


def _is_loop(folder_real: str, link: str) -> bool:
    target = os.path.realpath(link)
    return os.path.commonpath([folder_real, target]) == target


def subfolders(folder: str | Path) -> list[Path]:
    """Sub-folders of ``folder`` in name order, links to ``folder`` itself or an ancestor left out."""
    folder = Path(folder)
    real = os.path.realpath(folder)
    out, loops = [], []
    with os.scandir(folder) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            if not entry.is_dir():          # follows links: a link to a folder elsewhere is a folder
                continue
            if entry.is_symlink() and _is_loop(real, entry.path):
                loops.append(entry.name)
                continue
            out.append(folder / entry.name)
    if loops:
        warnings.warn(f"{folder}: left out {', '.join(loops)}: a link to this folder or one above it "
                      "(a loop, not a sequence)", stacklevel=2)
    return out
