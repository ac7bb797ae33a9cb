"""BenSMOT (semantic MOT) reader: tracks, a video caption and one caption per instance.

Layout: ``root/{train,test}/<category>/<seq>/{gt/gt.txt, imgs/001.jpg, video_caption.txt,
instance_captions.txt, interactions.graphml}``. ``instance_captions.txt`` lines look like
``woman0: A woman in ...``; they are listed in order of first appearance, which is the order of the
gt ids (1, 2, ...): the k-th caption belongs to the k-th track when tracks are ordered by first
frame, then id. A caption count that differs from the track count is an error naming the file.
The interaction graph is not parsed; its path is kept in ``meta["interactions"]``.
"""
from __future__ import annotations

from pathlib import Path

from vptracker.datasets.base import DatasetFormatError, Sequence, register
from vptracker.datasets.frames import image_size, list_frames, split_dir
from vptracker.datasets.mot import tracks_from_table
from vptracker.datasets.textfiles import _lines, read_table_lines, read_text


def read_instance_captions(path: Path) -> list[tuple[str, str]]:
    """``[(instance_name, caption)]`` in file order."""
    out = []
    for lineno, line in enumerate(_lines(path), start=1):
        if not line.strip():
            continue
        name, sep, caption = line.partition(":")
        if not sep or not name.strip() or not caption.strip():
            raise DatasetFormatError(path, lineno, "<instance>: <caption>", line)
        out.append((name.strip(), caption.strip()))
    return out


def read_bensmot_sequence(seq_dir: Path, category: str, allow_missing: bool = False) -> Sequence:
    frames, numbers, missing = list_frames(seq_dir / "imgs", allow_missing=allow_missing)
    gt_path = seq_dir / "gt" / "gt.txt"
    table, lines = read_table_lines(gt_path, 6)
    tracks = tracks_from_table(table, len(frames), gt_path, 1, classes=None, keep_ignored=True, lines=lines)
    caption_path = seq_dir / "instance_captions.txt"
    if caption_path.is_file():
        captions = read_instance_captions(caption_path)
        if len(captions) != len(tracks):
            raise DatasetFormatError(caption_path, None, f"one caption per track ({len(tracks)} ids in {gt_path})",
                                     f"{len(captions)} captions")
        order = sorted(tracks, key=lambda tr: (int(tr.visible.argmax()), tr.id))
        for track, (name, caption) in zip(order, captions):
            track.caption, track.category = caption, name
    video_caption = seq_dir / "video_caption.txt"
    width, height = image_size(frames[0])
    return Sequence(name=seq_dir.name, dataset="bensmot", frames=frames, width=width, height=height, tracks=tracks,
                    caption=read_text(video_caption) if video_caption.is_file() else None, scene=category,
                    frame_ids=numbers, meta={"category": category, "missing_frames": missing,
                                             "interactions": str(seq_dir / "interactions.graphml")})


@register("bensmot")
def load_bensmot(root: Path, split: str | None = None, allow_missing: bool = False) -> list[Sequence]:
    base = split_dir(root, split)
    out = []
    for cat_dir in sorted(p for p in base.iterdir() if p.is_dir()):
        for seq_dir in sorted(p for p in cat_dir.iterdir() if p.is_dir() and (p / "gt" / "gt.txt").is_file()):
            out.append(read_bensmot_sequence(seq_dir, cat_dir.name, allow_missing))
    if not out:
        raise DatasetFormatError(base, None, "<category>/<seq>/gt/gt.txt sequence folders")
    return out
