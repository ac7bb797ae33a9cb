"""Frame folders on disk: listing numbered images in temporal order and reading an image's size.

Frame file names differ between benchmarks (``1.jpg``, ``0001.jpg``, ``00000001.png``, mixed
jpg/png inside one release), so frames are ordered by the number in their name, never by the name
itself. A gap in the numbering is a missing file: it is reported (``DatasetFormatError`` naming the
folder and the frame) or, when the caller allows it, kept in place and listed in
``Sequence.missing_frames`` so that frame indices still line up with the annotation rows.
"""
from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable
from collections.abc import Sequence as SequenceABC
from pathlib import Path

from vptracker.datasets.base import DatasetFormatError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
_DIGITS = re.compile(r"(\d+)(?!.*\d)")


def frame_number(name: str) -> int | None:
    """The last run of digits in a file name's stem (``img_00012.jpg`` -> 12)."""
    m = _DIGITS.search(os.path.splitext(name)[0])
    return int(m.group(1)) if m else None


def list_frames(folder: str | Path, allow_missing: bool = False) -> tuple[list[str], list[int], list[int]]:
    """``(paths, numbers, missing_positions)`` of the numbered images in ``folder``.

    Paths are ordered by frame number. A number absent between the first and the last frame is a
    missing file: an error unless ``allow_missing``, in which case the path it would have had (same
    stem width and extension as its predecessor) is inserted and its position returned.
    """
    folder = Path(folder)
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        raise DatasetFormatError(folder, None, "a folder of frame images (jpg/png)") from None
    numbered = []
    for name in names:
        if not name.lower().endswith(IMAGE_EXTENSIONS):
            continue
        num = frame_number(name)
        if num is None:
            raise DatasetFormatError(folder / name, None, "a frame file name containing its frame number")
        numbered.append((num, name))
    if not numbered:
        raise DatasetFormatError(folder, None, "at least one frame image (jpg/png)")
    numbered.sort()
    for (a, name_a), (b, name_b) in zip(numbered, numbered[1:]):
        if a == b:
            raise DatasetFormatError(folder, None, f"one image per frame number, found {name_a} and {name_b}")
    paths, numbers, missing = [], [], []
    prev_name = None
    for num, name in numbered:
        if numbers and num != numbers[-1] + 1:
            gap = list(range(numbers[-1] + 1, num))
            if not allow_missing:
                raise DatasetFormatError(folder, None, f"contiguous frame numbers, frame {gap[0]} is missing "
                                         f"(between {prev_name} and {name})")
            for g in gap:
                missing.append(len(paths))
                paths.append(str(folder / _like(prev_name, g)))
                numbers.append(g)
            warnings.warn(f"{folder}: frames {gap[0]}..{gap[-1]} are missing", stacklevel=2)
        paths.append(str(folder / name))
        numbers.append(num)
        prev_name = name
    return paths, numbers, missing


def _like(name: str, number: int) -> str:
    """The file name ``number`` would have, in the style of ``name`` (same padding and extension)."""
    stem, ext = os.path.splitext(name)
    m = _DIGITS.search(stem)
    width = len(m.group(1))
    return f"{stem[:m.start()]}{number:0{width}d}{stem[m.end():]}{ext}"


def image_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` from the image header; the pixels are not decoded."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return int(im.size[0]), int(im.size[1])
    except FileNotFoundError:
        raise DatasetFormatError(path, None, "an existing image file") from None
    except (UnidentifiedImageError, OSError) as err:
        raise DatasetFormatError(path, None, f"a readable image header ({err})") from None


def split_dir(root: Path, split: str | None) -> Path:
    """``root/split`` when the release keeps splits in sub-folders, else ``root`` itself."""
    if split is None:
        return root
    sub = root / split
    if sub.is_dir():
        return sub
    for alias in (split.upper(), split.capitalize(), f"{split}ing", f"{split}ing_set"):
        if (root / alias).is_dir():
            return root / alias
    raise DatasetFormatError(root, None, f"a {split!r} sub-folder")


def fit_frames(seq_dir: Path, frames: list[str], n_annotated: int, ann_path: Path) -> list[str]:
    """Frames cut to the annotation length; fewer frames than annotation rows is an error."""
    if len(frames) < n_annotated:
        raise DatasetFormatError(ann_path, None, f"no more annotation rows than frame images "
                                 f"({n_annotated} rows for {len(frames)} images in {seq_dir})")
    return frames[:n_annotated]


class LazyFrames(SequenceABC):
    """Frame paths whose count is the annotation length and whose folder is listed on first use.

    Annotation-first reading (pytracking's): ``len()`` needs no disk access, so scoring 700
    sequences opens no folder and no image; asking for a path lists the folder once (with every
    check of :func:`list_frames` and :func:`fit_frames`) and keeps the list.
    """

    def __init__(self, count: int, listing: Callable[[], list[str]]):
        self._count, self._listing, self._paths = count, listing, None

    def _listed(self) -> list[str]:
        if self._paths is None:
            self._paths = list(self._listing())
        return self._paths

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index):
        return self._listed()[:self._count][index]

    def __repr__(self) -> str:
        return f"LazyFrames({self._count} frames, {'listed' if self._paths is not None else 'not listed yet'})"


def no_frames(where: str | Path, hint: str) -> list[str]:
    """The listing of an annotation-only layout that holds no images (the TNL2K toolkit folder)."""
    raise DatasetFormatError(where, None, f"frame images ({hint})")


def damaged_frames(paths: list[str]) -> list[int]:
    """Positions of frames that do not decode (TNL2K ships one damaged frame). Decodes every frame:
    slow, so only run on request (``verify_frames`` in a data config)."""
    from PIL import Image

    bad = []
    for i, path in enumerate(paths):
        try:
            with Image.open(path) as im:
                im.load()
        except (OSError, SyntaxError, ValueError):
            bad.append(i)
    return bad


def mark_damaged(seq) -> list[str]:
    """Decodes every frame of ``seq``; damaged ones join ``seq.missing_frames`` (builders skip
    them) and are returned, so the caller can report them."""
    missing = set(seq.missing_frames)
    bad = [i for i in damaged_frames(seq.frames) if i not in missing]
    if bad:
        seq.missing_frames = sorted(missing | set(bad))
        warnings.warn(f"{seq.dataset}/{seq.name}: damaged frames {[seq.frames[i] for i in bad]}", stacklevel=2)
    return [seq.frames[i] for i in bad]
