"""MOTChallenge-layout readers: MOT17, MOT20, DanceTrack (and the shared ``gt.txt`` -> tracks step).

Layout: ``root/<split>/<seq>/{img1/%06d.jpg|%08d.jpg, gt/gt.txt, seqinfo.ini}`` and an optional
seqmap (``root/seqmaps/<split>.txt``, ``root/<split>_seqmap.txt``, first line ``name``) that says
which sequences belong to the split. ``gt.txt`` rows are ``frame,id,x,y,w,h,flag,class,visibility``
with 1-based frames. As in TrackEval, training tracks keep rows with ``flag != 0`` and a class in
``classes`` (pedestrian, 1); DanceTrack's test split has no ``gt/`` and yields sequences without
tracks. Image size and length come from ``seqinfo.ini`` (header of the first frame otherwise).
"""
from __future__ import annotations

import configparser
from pathlib import Path

import numpy as np

from vptracker.datasets.base import DatasetFormatError, Sequence, Track, register
from vptracker.datasets.frames import image_size, list_frames, split_dir
from vptracker.datasets.textfiles import read_table

PEDESTRIAN = 1


def tracks_from_table(table: np.ndarray, n_frames: int, path: Path, first_frame: int = 1,
                      classes: tuple[int, ...] | None = (PEDESTRIAN,), keep_ignored: bool = False,
                      min_visibility: float = 0.0) -> list[Track]:
    """One :class:`Track` per id from MOT rows ``frame,id,x,y,w,h[,flag,class,visibility]``.

    ``first_frame`` is the number of the sequence's first frame in the file (1 in MOTChallenge,
    0 in CRTrack's cross-domain gt). ``min_visibility`` drops rows whose visibility ratio (column 9)
    is lower. A row outside the sequence or a repeated (frame, id) is an
    error naming the line.
    """
    if len(table) == 0:
        return []
    keep = np.ones(len(table), dtype=bool)
    if table.shape[1] >= 7 and not keep_ignored:
        keep &= table[:, 6] != 0
    if classes is not None and table.shape[1] >= 8:
        keep &= np.isin(table[:, 7], classes) | (table[:, 7] == -1)
    if min_visibility > 0 and table.shape[1] >= 9:
        # rows below the threshold become absent frames of their track (heavily occluded people)
        keep &= (table[:, 8] >= min_visibility) | (table[:, 8] == -1)
    frames = table[:, 0].astype(np.int64) - first_frame
    bad = (frames < 0) | (frames >= n_frames)
    if bad.any():
        line = int(np.argmax(bad)) + 1
        raise DatasetFormatError(path, line, f"a frame number in {first_frame}..{first_frame + n_frames - 1}",
                                 str(int(table[line - 1, 0])))
    ids = table[:, 1].astype(np.int64)
    tracks = []
    for tid in np.unique(ids[keep]):
        rows = np.flatnonzero(keep & (ids == tid))
        f = frames[rows]
        if len(np.unique(f)) != len(f):
            order = np.argsort(f, kind="stable")
            dup = rows[order[np.flatnonzero(np.diff(f[order]) == 0)[0] + 1]]
            raise DatasetFormatError(path, int(dup) + 1, f"one row per (frame, id), id {tid} repeats a frame")
        boxes = np.zeros((n_frames, 4))
        visible = np.zeros(n_frames, dtype=bool)
        boxes[f] = table[rows, 2:6]
        visible[f] = True
        tracks.append(Track(int(tid), boxes, visible))
    return tracks


def read_seqinfo(path: Path) -> dict:
    parser = configparser.ConfigParser()
    try:
        parser.read_string(path.read_text(encoding="utf-8-sig").replace("\r\n", "\n"))
        section = parser["Sequence"]
        return {"name": section.get("name"), "length": int(section["seqLength"]),
                "width": int(section["imWidth"]), "height": int(section["imHeight"]),
                "frame_rate": float(section.get("frameRate", 0) or 0), "ext": section.get("imExt", ".jpg"),
                "im_dir": section.get("imDir", "img1")}
    except (configparser.Error, KeyError, ValueError) as err:
        raise DatasetFormatError(path, None, f"a [Sequence] section with seqLength, imWidth, imHeight ({err!r})") from None


def read_seqmap(path: Path) -> list[str]:
    lines = [ln.strip() for ln in path.read_text().replace("\r\n", "\n").splitlines() if ln.strip()]
    return [ln for ln in lines[1:] if ln] if lines and lines[0].lower() == "name" else lines


def _seqmap(root: Path, split: str | None, benchmark: str) -> list[str] | None:
    if split is None:
        return None
    for path in (root / "seqmaps" / f"{split}.txt", root / f"{split}_seqmap.txt",
                 root / "seqmaps" / f"{benchmark}-{split}.txt"):
        if path.is_file():
            return read_seqmap(path)
    return None


def read_mot_sequence(seq_dir: Path, dataset: str, classes: tuple[int, ...] | None = (PEDESTRIAN,),
                      keep_ignored: bool = False, allow_missing: bool = False,
                      detect_zero_based: bool = False, min_visibility: float = 0.0) -> Sequence:
    """One sequence folder; ``detect_zero_based`` accepts gt numbering frames from 0 (CRTrack cross-domain)."""
    info_path = seq_dir / "seqinfo.ini"
    info = read_seqinfo(info_path) if info_path.is_file() else None
    img_dir = seq_dir / (info["im_dir"] if info else "img1")
    frames, numbers, missing = list_frames(img_dir, allow_missing=allow_missing)
    if info:
        if len(frames) < info["length"]:
            raise DatasetFormatError(info_path, None, f"seqLength={info['length']} frames in {img_dir}, "
                                     f"found {len(frames)}")
        frames, numbers = frames[:info["length"]], numbers[:info["length"]]
        width, height = info["width"], info["height"]
    else:
        width, height = image_size(frames[0])
    gt_path = seq_dir / "gt" / "gt.txt"
    tracks = []
    if gt_path.is_file():
        table = read_table(gt_path, 6)
        first = 0 if detect_zero_based and len(table) and table[:, 0].min() == 0 else 1
        tracks = tracks_from_table(table, len(frames), gt_path, first, classes, keep_ignored, min_visibility)
    meta = {"has_gt": gt_path.is_file(), "missing_frames": missing}
    if info:
        meta["frame_rate"] = info["frame_rate"]
    return Sequence(name=seq_dir.name, dataset=dataset, frames=frames, width=width, height=height,
                    tracks=tracks, frame_ids=numbers, meta=meta)


def load_motchallenge(root: Path, split: str | None, dataset: str, classes=(PEDESTRIAN,),
                      keep_ignored: bool = False, allow_missing: bool = False,
                      min_visibility: float = 0.0) -> list[Sequence]:
    names = _seqmap(root, split, dataset.upper())
    base = split_dir(root, split) if split is not None else root
    seq_dirs = sorted(p for p in base.iterdir() if p.is_dir() and ((p / "seqinfo.ini").is_file() or (p / "img1").is_dir()))
    if names is not None:
        listed = set(names)
        seq_dirs = [p for p in seq_dirs if p.name in listed]
        absent = listed - {p.name for p in seq_dirs}
        if absent:
            raise DatasetFormatError(base, None, f"a folder for every sequence of the seqmap, missing {sorted(absent)}")
    if not seq_dirs:
        raise DatasetFormatError(base, None, "<seq>/{img1, seqinfo.ini} sequence folders")
    cls = tuple(classes) if classes is not None else None
    return [read_mot_sequence(p, dataset, cls, keep_ignored, allow_missing, min_visibility=min_visibility)
            for p in seq_dirs]


@register("mot17")
def load_mot17(root: Path, split: str | None = None, **options) -> list[Sequence]:
    return load_motchallenge(root, split, "mot17", **options)


@register("mot20")
def load_mot20(root: Path, split: str | None = None, **options) -> list[Sequence]:
    return load_motchallenge(root, split, "mot20", **options)


@register("dancetrack")
def load_dancetrack(root: Path, split: str | None = None, **options) -> list[Sequence]:
    return load_motchallenge(root, split, "dancetrack", **options)
