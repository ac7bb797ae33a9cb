"""SYNTH-PEDES reader: person images with captions, for the contrastive mid-training stage.

``root/synthpedes_dataset.json`` is a list of ``{"id", "file_path", "attributes", "captions",
"prompt_caption"}``; ``file_path`` is relative to ``root``. Each entry becomes a one-frame
:class:`Sequence` whose ``caption`` is the first caption (all of them in ``captions``) and
whose person id is ``meta["person_id"]``. The image size is not read by default: 1.2 M image-text
pairs need none, and the contrastive task draws no boxes (``read_sizes=True`` reads the headers).
Each entry's types are checked (an object; ``file_path`` a non-empty string; ``captions`` a
non-empty list of strings; ``id`` an integer or a string); a bad one is named by its index.
A ``file_path`` that leaves ``root`` is refused, and one whose image is missing is an error naming
the entry, unless ``allow_missing=True``: then the entry is skipped and the skipped entries are
counted in one warning. Checking existence costs one ``stat`` per entry (no image is opened).
"""
from __future__ import annotations

import warnings
from pathlib import Path

from vptracker.datasets.base import DatasetFormatError, Sequence, register
from vptracker.datasets.frames import image_size
from vptracker.datasets.paths import existing_file, inside_root
from vptracker.datasets.textfiles import json_int, read_json

ANNOTATION = "synthpedes_dataset.json"


def check_entry(entry, i: int, path: Path) -> None:
    if not isinstance(entry, dict) or not isinstance(entry.get("file_path"), str) or not entry["file_path"]:
        raise DatasetFormatError(path, None, f'entry {i} an object with a "file_path" string')
    captions = entry.get("captions")
    if not isinstance(captions, list) or not captions or not all(isinstance(c, str) for c in captions):
        raise DatasetFormatError(path, None, f'entry {i} with "captions" a non-empty list of strings', captions)
    if "id" in entry and not (json_int(entry["id"]) or isinstance(entry["id"], str)):
        raise DatasetFormatError(path, None, f'entry {i} with "id" an integer or a string', entry["id"])


@register("synth_pedes")
def load_synth_pedes(root: Path, split: str | None = None, read_sizes: bool = False,
                     limit: int | None = None, allow_missing: bool = False) -> list[Sequence]:
    path = root / ANNOTATION
    if not path.is_file():
        raise DatasetFormatError(path, None, "the SYNTH-PEDES annotation file")
    entries = read_json(path)
    if not isinstance(entries, list):
        raise DatasetFormatError(path, None, "a JSON list of entries")
    out, skipped = [], []
    for i, entry in enumerate(entries[:limit] if limit else entries):
        check_entry(entry, i, path)
        if split is not None and entry.get("split", split) != split:
            continue
        frame = str(inside_root(root, entry["file_path"], path, f'entry {i} with "file_path"'))
        try:
            existing_file(frame, path, f'entry {i} with "file_path"')
        except DatasetFormatError:
            if not allow_missing:
                raise
            skipped.append(i)
            continue
        width, height = image_size(frame) if read_sizes else (0, 0)
        captions = [c.strip() for c in entry["captions"] if c.strip()]
        out.append(Sequence(name=str(entry.get("id", i)), dataset="synth_pedes", frames=[frame], width=width,
                            height=height, caption=captions[0] if captions else None, captions=captions,
                            meta={"person_id": entry.get("id", i), "prompt_caption": entry.get("prompt_caption"),
                                  "attributes": entry.get("attributes")}))
    if skipped:
        warnings.warn(f"{path}: skipped {len(skipped)} entries whose image is missing (allow_missing), "
                      f"e.g. entry {skipped[0]}", stacklevel=2)
    return out
