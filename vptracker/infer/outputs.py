"""Result files: atomic writes, the toolkits' text formats, the audit log and its merge.

Every file is written to a temporary name beside it and renamed, so a file that exists is
complete; this is what lets a killed run resume by skipping sequences whose files exist. Temporary
names carry the host, the pid and a random token: containers on different nodes share pids. Names
from datasets become one path part each (:func:`path_part`), so no sequence, expression or view
name can leave its own folder. Answers are model text: JSON files escape lone surrogates, so every
file is valid UTF-8 whatever an answer holds. Raw
answers go to one part file per finished sequence (``.responses/``); ``responses.jsonl`` is rebuilt
from the parts in a fixed order, so a resumed run ends with the same bytes as an uninterrupted one.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import socket
from collections.abc import Iterable, Sequence
from pathlib import Path

from vptracker.boxes import Box

RESPONSES = "responses.jsonl"
PARTS_DIR = ".responses"
CAPTIONS = "captions.json"
VIDEO_CAPTIONS = "video_captions.json"        # {seq: caption}
INSTANCE_CAPTIONS = "instance_captions.json"  # {"<seq>/<track id>": caption}
CAPTION_DIR = "captions"


def atomic_write_text(path: str | Path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{socket.gethostname()}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def safe_name(key: str) -> str:
    """A file name for any unit key (descriptions hold spaces, commas, slashes), unique by hash."""
    stem = re.sub(r"[^\w.-]+", "_", key).strip("._")[:80] or "unit"
    return f"{stem}-{hashlib.sha1(key.encode('utf-8', 'surrogatepass')).hexdigest()[:10]}"


_UNSAFE = re.compile(r"[/\\\x00-\x1f\x7f\ud800-\udfff]")
MAX_PART_BYTES = 200   # file systems allow 255 bytes per name; leaves room for suffixes


def path_part(name) -> str:
    """A dataset name (sequence, video, expression, view) as one path part that stays in its folder.

    Ordinary names are kept as they are (the toolkits look files up by them): separators, control
    characters and lone surrogates become ``_``, a leading dot becomes ``_`` (so ``..`` or
    ``.responses`` cannot reach a parent or our own hidden folders), and a name too long for a
    file system is cut and suffixed with its hash.
    """
    text = str(name)
    part = _UNSAFE.sub("_", text).strip() or "_"
    if part.startswith("."):
        part = "_" + part[1:]
    if len(part.encode("utf-8")) > MAX_PART_BYTES:
        digest = hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:10]
        cut = part.encode("utf-8")[:MAX_PART_BYTES - 11].decode("utf-8", "ignore")
        part = f"{cut}-{digest}"
    return part


_SURROGATE = re.compile(r"[\ud800-\udfff]")


def json_text(value, **kwargs) -> str:
    """``json.dumps`` keeping non-ASCII text readable, with lone surrogates escaped as ``\\ud800``-style escapes.

    A model can answer with text that is not valid Unicode (a lone surrogate decodes from broken
    bytes); escaped, it is valid JSON and valid UTF-8, and ``json.loads`` gives the same string back.
    """
    text = json.dumps(value, ensure_ascii=False, **kwargs)
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _num(v: float, decimals: int) -> str:
    text = f"{float(v):.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def sot_text(boxes_xywh: Iterable[Sequence[float]]) -> str:
    """``x,y,w,h`` per line (pytracking/TNL2K toolkit layout), first line the initial box."""
    return "".join(",".join(_num(v, 4) for v in box) + "\n" for box in boxes_xywh)


def mot_text(rows: Iterable[tuple[int, int, Box]]) -> str:
    """MOTChallenge ``frame,id,x,y,w,h,conf,-1,-1,-1`` from ``(frame, id, x1,y1,x2,y2)`` rows."""
    return "".join(f"{f},{i},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},1,-1,-1,-1\n"
                   for f, i, (x1, y1, x2, y2) in rows)


def crmot_text(rows: Iterable[tuple[int, int, Box]]) -> str:
    """CRTrack prediction rows: ``frame,id,x1,y1,x2,y2,1,-1,-1,-1`` (corners, as its devkit reads)."""
    return "".join(f"{f},{i},{x1:.2f},{y1:.2f},{x2:.2f},{y2:.2f},1,-1,-1,-1\n" for f, i, (x1, y1, x2, y2) in rows)


def write_responses_part(out_dir: Path, key: str, responses: list[dict], task: str | None = None) -> Path:
    """One unit's answers; under ``.responses/<task>/`` so two tasks sharing a folder (SMOT tracks and
    captions) keep their own parts."""
    text = "".join(json_text(r) + "\n" for r in responses)
    folder = out_dir / PARTS_DIR / task if task else out_dir / PARTS_DIR
    return atomic_write_text(folder / f"{safe_name(key)}.jsonl", text)


def merge(out_dir: str | Path) -> dict[str, Path]:
    """Rebuilds ``responses.jsonl`` (and ``captions.json`` when captions exist) from per-unit parts."""
    out_dir = Path(out_dir)
    written = {}
    parts = sorted((out_dir / PARTS_DIR).rglob("*.jsonl"), key=lambda p: p.relative_to(out_dir).as_posix())
    if parts:
        written["responses"] = atomic_write_text(out_dir / RESPONSES, "".join(p.read_text(encoding="utf-8") for p in parts))
    captions = sorted((out_dir / CAPTION_DIR).glob("*.json"))
    if captions:
        merged, video, instance = {}, {}, {}
        for path in captions:
            data = json.loads(path.read_text(encoding="utf-8"))
            seq = data["sequence"]
            merged[seq] = {k: v for k, v in data.items() if k != "sequence"}
            video[seq] = data["video_caption"] or ""
            instance.update({f"{seq}/{k}": v for k, v in data["instance_captions"].items()})
        # captions.json for people; the two flat files are what `vptracker eval` (SMOT) reads
        for key, name, value in (("captions", CAPTIONS, merged), ("video_captions", VIDEO_CAPTIONS, video),
                                 ("instance_captions", INSTANCE_CAPTIONS, instance)):
            written[key] = atomic_write_text(out_dir / name, json_text(value, indent=1, sort_keys=True) + "\n")
    return written
