"""Refer-KITTI and Refer-KITTI-V2 readers: one :class:`Sequence` per (video, expression).

Layout: ``root/KITTI/training/image_02/<vid>/%06d.png`` (0-based), ``root/KITTI/labels_with_ids/
image_02/<vid>/%06d.txt`` (space separated ``class track_id x/W y/H w/W h/H``, top-left corner,
normalised) and ``root/expression/<vid>/<name>.json`` with ``{"label": {"<frame>": [ids]},
"ignore": [...], "video_name": ..., "sentence": ...}`` (V2 adds ``raw_sentence``; names may hold
commas). An object counts as referred, hence visible, only in the frames whose ``label`` lists it,
which is how the RMOT evaluation builds its ground truth. ``frame_ids`` keep the 0-based image
indices (the evaluation writes frame = index + 1). The test split is videos 0005, 0011, 0013, 0019.

Checked, naming the file (and the line, or the JSON key): label values finite, track ids integers
>= 0, widths and heights >= 0; ``label`` maps frame numbers of the video to lists of integer ids;
``sentence`` (and ``raw_sentence`` when present) are strings. ``ignore`` is kept as given, unread.

``image_sizes`` (``{vid: (W, H)}``) gives the frame size without opening a frame. With
``annotation_only=True`` (scoring) a video without its image folder is numbered from its label files
(frames 0 .. the last ``%06d.txt``) and needs its size in ``image_sizes``.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from vptracker.datasets.base import DatasetFormatError, Sequence, Track, register
from vptracker.datasets.frames import LazyFrames, image_size, list_frames, no_frames
from vptracker.datasets.paths import inside_root, subfolders
from vptracker.datasets.textfiles import _finite, _lines, json_int, read_json

TEST_VIDEOS = ("0005", "0011", "0013", "0019")


def read_label_file(path: Path) -> dict[int, tuple[float, float, float, float]]:
    """``{track_id: (x, y, w, h)}`` normalised, from one frame's labels_with_ids file."""
    out = {}
    for lineno, line in enumerate(_lines(path), start=1):
        toks = line.split()
        if not toks:
            continue
        if len(toks) < 6:
            raise DatasetFormatError(path, lineno, "6 space-separated values: class track_id x y w h", line)
        values = _finite(toks[:6])
        if values is None:
            raise DatasetFormatError(path, lineno, "finite numbers: class track_id x y w h", line)
        if not values[1].is_integer() or values[1] < 0:
            raise DatasetFormatError(path, lineno, "an integer track id >= 0 (second value)", line)
        if values[4] < 0 or values[5] < 0:
            raise DatasetFormatError(path, lineno, "a width and height >= 0 (fifth and sixth values)", line)
        out[int(values[1])] = tuple(values[2:6])
    return out


def _video_labels(label_dir: Path, n_frames: int, numbers: list[int]) -> list[dict]:
    return [read_label_file(label_dir / f"{num:06d}.txt") if (label_dir / f"{num:06d}.txt").is_file() else {}
            for num in numbers[:n_frames]]


def read_expression(path: Path) -> dict:
    """One expression file, its types checked (``label`` keys are checked against the video later)."""
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("label"), dict) or "sentence" not in data:
        raise DatasetFormatError(path, None, 'an object with "label": {"<frame>": [ids]} and "sentence"')
    for key, ids in data["label"].items():
        if not isinstance(ids, list) or not all(json_int(i) and i >= 0 for i in ids):
            raise DatasetFormatError(path, None, f'label["{key}"] a list of integer track ids >= 0', ids)
    for key in ("sentence", "raw_sentence"):
        if key in data and not isinstance(data[key], str) and not (key == "raw_sentence" and data[key] is None):
            raise DatasetFormatError(path, None, f'"{key}" a string', data[key])
    return data


def _video_dirs(root: Path, annotation_only: bool = False) -> tuple[Path, Path, Path]:
    kitti = root / "KITTI"
    images, labels, expressions = kitti / "training" / "image_02", kitti / "labels_with_ids" / "image_02", root / "expression"
    for folder in (labels, expressions) if annotation_only else (images, labels, expressions):
        if not folder.is_dir():
            raise DatasetFormatError(folder, None, "the Refer-KITTI layout KITTI/training/image_02, "
                                     "KITTI/labels_with_ids/image_02 and expression/")
    return images, labels, expressions


def _video_frames(images: Path, labels: Path, vid: str, sizes: dict, allow_missing: bool,
                  annotation_only: bool) -> tuple[list[str], list[int], list[int], tuple[int, int]]:
    """``(frames, numbers, missing, (W, H))`` of one video; see the module docstring."""
    size = sizes.get(vid)
    if annotation_only and not (images / vid).is_dir():
        if size is None:
            raise DatasetFormatError(images / vid, None, f"KITTI frames to read the image size from, or a size "
                                     f"for video {vid} (--image-size W H)")
        stems = [int(p.stem) for p in (labels / vid).glob("*.txt") if p.stem.isdigit()]
        n = max(stems, default=-1) + 1
        return LazyFrames(n, partial(no_frames, images / vid, "KITTI frames")), list(range(n)), [], size
    frames, numbers, missing = list_frames(images / vid, allow_missing=allow_missing)
    return frames, numbers, missing, size or image_size(frames[0])


def load_refer_kitti(root: Path, split: str | None, dataset: str, videos: list[str] | None = None,
                     allow_missing: bool = False, annotation_only: bool = False,
                     image_sizes: dict[str, tuple[int, int]] | None = None) -> list[Sequence]:
    images, labels, expressions = _video_dirs(root, annotation_only)
    if videos is None:
        all_videos = [p.name for p in subfolders(expressions)]
        if split == "test":
            videos = [v for v in all_videos if v in TEST_VIDEOS]
        elif split == "train":
            videos = [v for v in all_videos if v not in TEST_VIDEOS]
        else:
            videos = all_videos
    out = []
    for vid in videos:
        # a name given in the videos option becomes three folder paths: none may leave the root
        inside_root(expressions, vid, root, "a video (videos option) naming")
        if not (labels / vid).is_dir() or not (expressions / vid).is_dir():
            raise DatasetFormatError(labels / vid if not (labels / vid).is_dir() else expressions / vid, None,
                                     "Refer-KITTI labels_with_ids/image_02/<vid>/ and expression/<vid>/")
        frames, numbers, missing, (width, height) = _video_frames(images, labels, vid, image_sizes or {},
                                                                   allow_missing, annotation_only)
        per_frame = _video_labels(labels / vid, len(frames), numbers)
        index_of = {num: i for i, num in enumerate(numbers)}
        for expr_path in sorted((expressions / vid).glob("*.json")):
            expr = read_expression(expr_path)
            referred: dict[int, list[int]] = {}
            for key, ids in expr["label"].items():
                try:
                    t = index_of[int(key)]
                except (ValueError, KeyError):
                    raise DatasetFormatError(expr_path, None, f"label keys that are frame numbers of video {vid}",
                                             key) from None
                for tid in ids:
                    referred.setdefault(tid, []).append(t)
            tracks = []
            for tid in sorted(referred):
                boxes = np.zeros((len(frames), 4))
                visible = np.zeros(len(frames), dtype=bool)
                for t in referred[tid]:
                    box = per_frame[t].get(tid)
                    if box is not None:
                        boxes[t] = (box[0] * width, box[1] * height, box[2] * width, box[3] * height)
                        visible[t] = True
                tracks.append(Track(tid, boxes, visible))
            sentence = expr["sentence"]
            out.append(Sequence(name=f"{vid}/{expr_path.stem}", dataset=dataset, frames=frames, width=width,
                                height=height, tracks=tracks, language=sentence, scene=vid,
                                expression=expr_path.stem, frame_ids=numbers, missing_frames=missing,
                                meta={"raw_sentence": expr.get("raw_sentence"), "ignore": expr.get("ignore", [])}))
    if not out:
        raise DatasetFormatError(expressions, None, "expression/<vid>/<name>.json files" +
                                 (f" for the {split!r} videos" if split else ""))
    return out


@register("refer_kitti")
def load_refer_kitti_v1(root: Path, split: str | None = None, **options) -> list[Sequence]:
    return load_refer_kitti(root, split, "refer_kitti", **options)


@register("refer_kitti_v2")
def load_refer_kitti_v2(root: Path, split: str | None = None, **options) -> list[Sequence]:
    return load_refer_kitti(root, split, "refer_kitti_v2", **options)
