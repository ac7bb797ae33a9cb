"""CRTrack (cross-view referring MOT) reader: one :class:`Sequence` per (scene, description, view).

Layout (``root`` is ``CRTrack_In-domain`` / ``CRTrack_Cross-domain`` or a folder holding one):
``images/{train,test}/<Scene>_View<k>/{img1, gt/gt.txt, seqinfo.ini}``; ids are shared across the
views of a scene. Queries: ``tackled_text/<Scene>.txt`` lines ``<Scene>_<sentence>:<id>,<id>``
(sentences hold commas). Per-query ground truth, when present: ``gt_test/<Scene>_<sentence>/gt/
View<k>.txt``; otherwise the query's ids are taken from the view's full ``gt.txt``. The
cross-domain ground truth numbers frames (and ids) from 0: the first frame number is read from
the data rather than assumed.

Sequences of one query share ``scene`` and ``language``; ``view`` is ``View<k>``; grouping them
gives the multi-view sample.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from vptracker.datasets.base import DatasetFormatError, Sequence, Track, register
from vptracker.datasets.mot import read_mot_sequence, tracks_from_table
from vptracker.datasets.paths import inside_root, subfolders
from vptracker.datasets.textfiles import _lines, read_table_lines

_VIEW = re.compile(r"^(?P<scene>.+)_(?P<view>View\d+)$")


def split_query_name(name: str) -> tuple[str, str]:
    """``"Circle_A man in ..., dragging a cart"`` -> ``("Circle", "A man in ..., dragging a cart")``."""
    scene, sep, sentence = name.partition("_")
    if not sep or not sentence:
        raise ValueError(f"CRTrack query {name!r}: expected <Scene>_<sentence>")
    return scene, sentence


def read_queries(path: Path, gt_test: Path | None = None) -> list[tuple[str, list[int]]]:
    """``[(sentence, ids)]`` from ``tackled_text/<Scene>.txt``. With ``gt_test`` (the per-query
    ground-truth folder), a query whose folder name would leave it (``..``, ``/``) is refused."""
    out = []
    for lineno, line in enumerate(_lines(path), start=1):
        if not line.strip():
            continue
        head, sep, ids = line.rpartition(":")
        try:
            id_list = [int(t) for t in re.split(r"[,\s]+", ids.strip()) if t]
            _, sentence = split_query_name(head.strip())
        except ValueError:
            raise DatasetFormatError(path, lineno, "<Scene>_<sentence>:<id>,<id>,... with integer ids >= 0", line) from None
        if not sep or not id_list or min(id_list) < 0:
            raise DatasetFormatError(path, lineno, "<Scene>_<sentence>:<id>,<id>,... with integer ids >= 0", line)
        if gt_test is not None:
            inside_root(gt_test, head.strip(), path, "a query whose ground-truth folder is", lineno)
        out.append((sentence, id_list))
    return out


def _first_frame(table: np.ndarray) -> int:
    return 0 if len(table) and table[:, 0].min() == 0 else 1


def read_query_gt(query_dir: str | Path, n_frames: int | None = None) -> dict[str, list[Track]]:
    """``{"View1": [Track, ...], ...}`` from ``<query>/gt/View<k>.txt`` (an empty file: no tracks).

    Without ``n_frames`` a view's length is its last annotated frame.
    """
    gt_dir = Path(query_dir) / "gt"
    files = sorted(gt_dir.glob("View*.txt"), key=lambda p: int(re.sub(r"\D", "", p.stem) or 0))
    if not files:
        raise DatasetFormatError(gt_dir, None, "View<k>.txt ground-truth files")
    out = {}
    for path in files:
        table, lines = read_table_lines(path, 6)
        first = _first_frame(table)
        length = n_frames if n_frames is not None else (int(table[:, 0].max()) - first + 1 if len(table) else 0)
        out[path.stem] = tracks_from_table(table, length, path, first, classes=None, keep_ignored=True, lines=lines)
    return out


def _root(root: Path) -> Path:
    if (root / "images").is_dir():
        return root
    for child in sorted(root.glob("CRTrack_*")):
        if (child / "images").is_dir():
            return child
    raise DatasetFormatError(root, None, "a CRTrack folder with images/{train,test}/<Scene>_View<k>")


@register("crtrack")
def load_crtrack(root: Path, split: str | None = "test", allow_missing: bool = False) -> list[Sequence]:
    root = _root(root)
    split = split or "test"
    image_dir = root / "images" / split
    if not image_dir.is_dir():
        raise DatasetFormatError(root / "images", None, f"a {split!r} folder of <Scene>_View<k> sequences")
    views: dict[str, dict[str, Path]] = {}
    for seq_dir in subfolders(image_dir):
        m = _VIEW.match(seq_dir.name)
        if m is None:
            raise DatasetFormatError(seq_dir, None, "a sequence folder named <Scene>_View<k>")
        views.setdefault(m["scene"], {})[m["view"]] = seq_dir
    out = []
    for scene, scene_views in sorted(views.items()):
        query_file = root / "tackled_text" / f"{scene}.txt"
        if not query_file.is_file():
            raise DatasetFormatError(query_file, None, f"the query list of scene {scene}")
        queries = read_queries(query_file, root / "gt_test")
        full = {v: read_mot_sequence(p, "crtrack", classes=None, keep_ignored=True, allow_missing=allow_missing,
                                     detect_zero_based=True)
                for v, p in sorted(scene_views.items())}
        for sentence, ids in queries:
            query_dir = root / "gt_test" / f"{scene}_{sentence}"
            per_query = None
            if query_dir.is_dir():
                per_query = {v: read_query_gt(query_dir, len(full[v]))[v] if (query_dir / "gt" / f"{v}.txt").is_file()
                             else [] for v in full}
            for view, seq in full.items():
                tracks = per_query[view] if per_query is not None else [t for t in seq.tracks if t.id in ids]
                out.append(Sequence(name=f"{scene}_{sentence}", dataset="crtrack", frames=seq.frames,
                                    width=seq.width, height=seq.height, tracks=tracks, language=sentence,
                                    view=view, scene=scene, frame_ids=seq.frame_ids,
                                    missing_frames=seq.missing_frames, meta={"query_ids": ids}))
    return out
