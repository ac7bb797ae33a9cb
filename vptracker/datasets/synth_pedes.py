"""SYNTH-PEDES reader: person images with captions, for the contrastive mid-training stage.

``root/synthpedes_dataset.json`` is a list of ``{"id", "file_path", "attributes", "captions",
"prompt_caption"}``; ``file_path`` is relative to ``root``. Each entry becomes a one-frame
:class:`Sequence` whose ``caption`` is the first caption (all of them in ``meta["captions"]``) and
whose person id is ``meta["person_id"]``. The image size is not read by default: 1.2 M image-text
pairs need none, and the contrastive task draws no boxes (``read_sizes=True`` reads the headers).
"""
from __future__ import annotations

import json
from pathlib import Path

from vptracker.datasets.base import DatasetFormatError, Sequence, register
from vptracker.datasets.frames import image_size

ANNOTATION = "synthpedes_dataset.json"


@register("synth_pedes")
def load_synth_pedes(root: Path, split: str | None = None, read_sizes: bool = False,
                     limit: int | None = None) -> list[Sequence]:
    path = root / ANNOTATION
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetFormatError(path, None, "the SYNTH-PEDES annotation file") from None
    except json.JSONDecodeError as err:
        raise DatasetFormatError(path, err.lineno, f"valid JSON ({err.msg})") from None
    if not isinstance(entries, list):
        raise DatasetFormatError(path, None, "a JSON list of entries")
    out = []
    for i, entry in enumerate(entries[:limit] if limit else entries):
        if not isinstance(entry, dict) or "file_path" not in entry or not entry.get("captions"):
            raise DatasetFormatError(path, None, f'entry {i} with "file_path" and a non-empty "captions" list')
        if split is not None and entry.get("split", split) != split:
            continue
        frame = str(root / entry["file_path"])
        width, height = image_size(frame) if read_sizes else (0, 0)
        captions = [c.strip() for c in entry["captions"] if isinstance(c, str) and c.strip()]
        out.append(Sequence(name=str(entry.get("id", i)), dataset="synth_pedes", frames=[frame], width=width,
                            height=height, caption=captions[0] if captions else None,
                            meta={"person_id": entry.get("id", i), "captions": captions,
                                  "prompt_caption": entry.get("prompt_caption"),
                                  "attributes": entry.get("attributes")}))
    return out
