"""Split lists shipped with the package (``vptracker/datasets/splits/<dataset>.json``).

TNLLT has no official split files in its release; the VPTracker authors published theirs
(``data_specs/tnllt_{train,test}_split.txt``: 150 train / 50 test sequences), and their numbers are
on that test list. A reader uses a shipped list when the dataset root has neither a list file nor
a split sub-folder.
"""
from __future__ import annotations

import json
from functools import cache
from pathlib import Path

SPLITS_DIR = Path(__file__).resolve().parent / "splits"


@cache
def _load(dataset: str) -> dict:
    path = SPLITS_DIR / f"{dataset}.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def shipped_split(dataset: str, split: str) -> set[str] | None:
    """The sequence names of ``split`` in the shipped list of ``dataset``; None when none is shipped."""
    names = _load(dataset).get(split)
    return set(names) if names else None
