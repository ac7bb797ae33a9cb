"""BenSMOT (semantic MOT) reader: tracks, a video caption and one caption per instance.

Layout: ``root/{train,test}/<category>/<seq>/{gt/gt.txt, imgs/001.jpg, video_caption.txt,
instance_captions.txt, interactions.graphml}``. ``instance_captions.txt`` lines look like
``woman0: A woman in ...``; the order of the names is the trajectory number (SMOTer's BenSMOT.md:
"woman0, woman1, and man0 are numbered 1, 2, and 3, respectively, in the corresponding gt.txt"; the
SMOTer code keys each caption by its gt id). So the k-th caption belongs to gt id k (the k-th
smallest id), whichever frame that track starts in; training and ``vptracker eval smot`` both take
the captions from here. A caption count that differs from the track count, or a name given twice,
is an error naming the file. ``scene`` is the category. The interaction graph is not parsed; its
path is kept in ``meta["interactions"]``.

``annotation_only=True`` (scoring) opens no image: the frame count comes from listing ``imgs/`` (or,
without that folder, from the last annotated frame) and the image size is left 0.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

from vptracker.datasets.base import DatasetFormatError, Sequence, register
from vptracker.datasets.frames import LazyFrames, image_size, list_frames, no_frames, split_dir
from vptracker.datasets.mot import tracks_from_table
from vptracker.datasets.paths import subfolders
from vptracker.datasets.textfiles import _lines, read_table_lines, read_text


def read_instance_captions(path: Path) -> list[tuple[str, str]]:
    """``[(instance_name, caption)]`` in file order (the k-th is gt id k's)."""
    out, seen = [], {}
    for lineno, line in enumerate(_lines(path), start=1):
        if not line.strip():
            continue
        name, sep, caption = line.partition(":")
        if not sep or not name.strip() or not caption.strip():
            raise DatasetFormatError(path, lineno, "<instance>: <caption>", line)
        if name.strip() in seen:
            raise DatasetFormatError(path, lineno, f"each instance named once ({name.strip()!r} is on line "
                                     f"{seen[name.strip()]} too)", line)
        seen[name.strip()] = lineno
        out.append((name.strip(), caption.strip()))
    return out


def read_bensmot_sequence(seq_dir: Path, category: str, allow_missing: bool = False,
                          annotation_only: bool = False) -> Sequence:
    gt_path = seq_dir / "gt" / "gt.txt"
    table, lines = read_table_lines(gt_path, 6)
    if annotation_only and not (seq_dir / "imgs").is_dir():
        n_frames = int(table[:, 0].max()) if len(table) else 0
        frames = LazyFrames(n_frames, partial(no_frames, seq_dir, "an imgs/ folder"))
        numbers, missing = None, []
    else:
        frames, numbers, missing = list_frames(seq_dir / "imgs", allow_missing=allow_missing)
    tracks = tracks_from_table(table, len(frames), gt_path, 1, classes=None, keep_ignored=True, lines=lines)
    caption_path = seq_dir / "instance_captions.txt"
    if caption_path.is_file():
        captions = read_instance_captions(caption_path)
        if len(captions) != len(tracks):
            raise DatasetFormatError(caption_path, None, f"one caption per track ({len(tracks)} ids in {gt_path})",
                                     f"{len(captions)} captions")
        for track, (name, caption) in zip(sorted(tracks, key=lambda tr: tr.id), captions):
            track.caption, track.category = caption, name
    video_caption = seq_dir / "video_caption.txt"
    width, height = (0, 0) if annotation_only else image_size(frames[0])
    return Sequence(name=seq_dir.name, dataset="bensmot", frames=frames, width=width, height=height, tracks=tracks,
                    caption=read_text(video_caption) if video_caption.is_file() else None, scene=category,
                    frame_ids=numbers, missing_frames=missing, folder=str(seq_dir),
                    meta={"interactions": str(seq_dir / "interactions.graphml")})


@register("bensmot")
def load_bensmot(root: Path, split: str | None = None, allow_missing: bool = False,
                 annotation_only: bool = False) -> list[Sequence]:
    base = split_dir(root, split)
    out = []
    for cat_dir in subfolders(base):
        for seq_dir in (p for p in subfolders(cat_dir) if (p / "gt" / "gt.txt").is_file()):
            out.append(read_bensmot_sequence(seq_dir, cat_dir.name, allow_missing, annotation_only))
    if not out:
        raise DatasetFormatError(base, None, "<category>/<seq>/gt/gt.txt sequence folders")
    return out
