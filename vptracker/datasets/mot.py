"""MOTChallenge-layout readers: MOT17, MOT20, DanceTrack (and the shared ``gt.txt`` -> tracks step).

Layout: ``root/<split>/<seq>/{img1/%06d.jpg|%08d.jpg, gt/gt.txt, seqinfo.ini}`` and an optional
seqmap (``root/seqmaps/<split>.txt``, ``root/<split>_seqmap.txt``, first line ``name``) that says
which sequences belong to the split. ``gt.txt`` rows are ``frame,id,x,y,w,h,flag,class,visibility``
with 1-based frames. As in TrackEval, training tracks keep rows with ``flag != 0`` and a class in
``classes`` (pedestrian, 1); DanceTrack's test split has no ``gt/`` and yields sequences without
tracks. Image size and length come from ``seqinfo.ini`` (header of the first frame otherwise).

Every number the reader uses is checked, naming the file and line: frames and ids are integers
(frames inside the sequence, ids >= 0), widths and heights >= 0; the flag is 0 or 1 and the class
an integer where the class/flag filter applies, the visibility ratio in 0..1 where
``min_visibility`` uses it (-1, MOTChallenge's "not given", passes everywhere).
"""
from __future__ import annotations

import configparser
from pathlib import Path

import numpy as np

from vptracker.datasets.base import DatasetFormatError, Sequence, Track, register, tracks_from_rows
from vptracker.datasets.frames import image_size, list_frames, split_dir
from vptracker.datasets.paths import subfolders
from vptracker.datasets.textfiles import read_name_list, read_table_lines, read_text_file

PEDESTRIAN = 1


def _check_column(table: np.ndarray, lines: np.ndarray, path: Path, column: int, ok: np.ndarray, expected: str):
    bad = ~ok
    if bad.any():
        row = int(np.argmax(bad))
        raise DatasetFormatError(path, int(lines[row]), f"{expected} in column {column + 1}", f"{table[row, column]:g}")


def check_rows(table: np.ndarray, lines: np.ndarray, path: Path, flags: bool, classes: bool, visibility: bool) -> None:
    """Refuses MOT rows whose frame, id or size (and, where used, flag, class, visibility) is impossible."""
    def integer(col):
        return table[:, col] == np.round(table[:, col])
    _check_column(table, lines, path, 0, integer(0), "an integer frame number")
    _check_column(table, lines, path, 1, integer(1) & (table[:, 1] >= 0), "an integer id >= 0")
    _check_column(table, lines, path, 4, table[:, 4] >= 0, "a width >= 0")
    _check_column(table, lines, path, 5, table[:, 5] >= 0, "a height >= 0")
    if flags and table.shape[1] >= 7:
        _check_column(table, lines, path, 6, np.isin(table[:, 6], (0, 1, -1)), "a flag 0 or 1")
    if classes and table.shape[1] >= 8:
        _check_column(table, lines, path, 7, integer(7) & (table[:, 7] >= -1), "an integer class")
    if visibility and table.shape[1] >= 9:
        vis = table[:, 8]
        _check_column(table, lines, path, 8, ((vis >= 0) & (vis <= 1)) | (vis == -1), "a visibility ratio 0..1")


def tracks_from_table(table: np.ndarray, n_frames: int, path: Path, first_frame: int = 1,
                      classes: tuple[int, ...] | None = (PEDESTRIAN,), keep_ignored: bool = False,
                      min_visibility: float = 0.0, lines: np.ndarray | None = None) -> list[Track]:
    """One :class:`Track` per id from MOT rows ``frame,id,x,y,w,h[,flag,class,visibility]``.

    ``first_frame`` is the number of the sequence's first frame in the file (1 in MOTChallenge,
    0 in CRTrack's cross-domain gt). ``min_visibility`` drops rows whose visibility ratio (column 9)
    is lower. ``lines`` are the file lines of the rows (1..N when not given). A row outside the
    sequence, a repeated (frame, id) or a value :func:`check_rows` refuses is an error naming the line.
    """
    if len(table) == 0:
        return []
    lines = np.arange(1, len(table) + 1) if lines is None else lines
    check_rows(table, lines, path, not keep_ignored, classes is not None, min_visibility > 0)
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
        row = int(np.argmax(bad))
        raise DatasetFormatError(path, int(lines[row]), f"a frame number in {first_frame}..{first_frame + n_frames - 1}",
                                 str(int(table[row, 0])))
    ids = table[:, 1].astype(np.int64)
    rows = np.flatnonzero(keep)
    # by id, frame, then line: the first repeat is the smallest id's earliest repeated frame
    order = rows[np.lexsort((rows, frames[rows], ids[rows]))]
    repeat = (ids[order[1:]] == ids[order[:-1]]) & (frames[order[1:]] == frames[order[:-1]])
    if repeat.any():
        dup = order[int(np.argmax(repeat)) + 1]
        raise DatasetFormatError(path, int(lines[dup]), f"one row per (frame, id), id {ids[dup]} repeats a frame")
    return tracks_from_rows(frames[rows], ids[rows], table[rows, 2:6], n_frames)


def _key_line(text: str, key: str) -> int | None:
    for lineno, line in enumerate(text.split("\n"), start=1):
        if line.split("=", 1)[0].strip().lower() == key.lower():
            return lineno
    return None


def read_seqinfo(path: Path, need_size: bool = True) -> dict:
    """``seqinfo.ini``'s [Sequence]: seqLength, imWidth and imHeight integers > 0, frameRate >= 0.

    Scoring needs only seqLength (``need_size=False``: a missing imWidth/imHeight reads as 0).
    """
    text = read_text_file(path)
    parser = configparser.ConfigParser()
    try:
        parser.read_string(text)
        section = parser["Sequence"]
    except (configparser.Error, KeyError) as err:
        line = getattr(err, "lineno", None)
        raise DatasetFormatError(path, line, f"an ini file with a [Sequence] section ({type(err).__name__})") from None
    info = {"name": section.get("name"), "ext": section.get("imExt", ".jpg"), "im_dir": section.get("imDir", "img1")}
    for key, field in (("seqLength", "length"), ("imWidth", "width"), ("imHeight", "height"), ("frameRate", "frame_rate")):
        raw = section.get(key)
        if raw is None:
            if key == "frameRate" or (key in ("imWidth", "imHeight") and not need_size):
                info[field] = 0.0 if key == "frameRate" else 0
                continue
            raise DatasetFormatError(path, None, f"a [Sequence] section with seqLength, imWidth, imHeight (no {key})")
        try:
            value = float(raw) if key == "frameRate" else int(raw)
        except ValueError:
            value = None
        if value is None or not np.isfinite(value) or value < 0 or (key != "frameRate" and value == 0):
            expected = f"{key} a finite number >= 0" if key == "frameRate" else f"{key} an integer > 0"
            raise DatasetFormatError(path, _key_line(text, key), expected, raw)
        info[field] = value
    return info


def read_seqmap(path: Path) -> list[str]:
    lines = read_name_list(path)
    return lines[1:] if lines and lines[0].lower() == "name" else lines


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
        table, lines = read_table_lines(gt_path, 6)
        first = 0 if detect_zero_based and len(table) and table[:, 0].min() == 0 else 1
        tracks = tracks_from_table(table, len(frames), gt_path, first, classes, keep_ignored, min_visibility, lines)
    meta = {"has_gt": gt_path.is_file()}
    if info:
        meta["frame_rate"] = info["frame_rate"]
    return Sequence(name=seq_dir.name, dataset=dataset, frames=frames, width=width, height=height,
                    tracks=tracks, frame_ids=numbers, missing_frames=missing, folder=str(seq_dir), meta=meta)


def load_motchallenge(root: Path, split: str | None, dataset: str, classes=(PEDESTRIAN,),
                      keep_ignored: bool = False, allow_missing: bool = False,
                      min_visibility: float = 0.0) -> list[Sequence]:
    names = _seqmap(root, split, dataset.upper())
    base = split_dir(root, split) if split is not None else root
    seq_dirs = [p for p in subfolders(base) if (p / "seqinfo.ini").is_file() or (p / "img1").is_dir()]
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
