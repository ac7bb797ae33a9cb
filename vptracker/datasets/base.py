"""The one sequence model every dataset reader returns, and the dataset registry.

Boxes are ``x, y, w, h`` in absolute pixels of the original frame (float64), one row per frame of
the sequence; ``visible[t]`` says whether the object is annotated as present in frame ``t`` (rows of
absent frames keep whatever the file held, usually ``0,0,0,0``). Image size is read from the first
frame's header once per sequence (or from ``seqinfo.ini``), never by decoding frames.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vptracker.registry import Registry


@dataclass
class Track:
    """One object through a sequence: ``boxes`` is ``(T, 4)`` xywh, ``visible`` is ``(T,)`` bool."""

    id: int
    boxes: np.ndarray
    visible: np.ndarray
    caption: str | None = None
    category: str | None = None

    def __post_init__(self):
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)
        self.visible = np.asarray(self.visible, dtype=bool).reshape(-1)
        if len(self.boxes) != len(self.visible):
            raise ValueError(f"track {self.id}: {len(self.boxes)} boxes but {len(self.visible)} visibility flags")


def tracks_from_rows(frames: np.ndarray, ids: np.ndarray, boxes: np.ndarray, n_frames: int) -> list[Track]:
    """One :class:`Track` per id (ascending) from MOT rows: ``frames`` are 0-based indices in
    ``[0, n_frames)``, ``boxes`` ``(N, 4)`` x,y,w,h. A frame without a row of the id is absent.

    The one MOT rows -> tracks step, for annotation files (``datasets.mot.tracks_from_table``,
    which refuses a repeated (frame, id) first, naming the line) and result files (SMOT captions);
    a repeated (frame, id) that reaches here keeps its last row.
    """
    frames = np.asarray(frames, dtype=np.int64)
    ids = np.asarray(ids, dtype=np.int64)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    tracks = []
    for tid in np.unique(ids):
        rows = np.flatnonzero(ids == tid)
        track_boxes = np.zeros((n_frames, 4))
        visible = np.zeros(n_frames, dtype=bool)
        track_boxes[frames[rows]] = boxes[rows]  # repeated indices: the last row is assigned
        visible[frames[rows]] = True
        tracks.append(Track(int(tid), track_boxes, visible))
    return tracks


@dataclass
class Sequence:
    """A video (or one view of one, or one referring expression over one) with its annotations."""

    name: str
    dataset: str
    frames: list[str]                      # image paths in temporal order
    width: int
    height: int
    tracks: list[Track] = field(default_factory=list)
    language: str | None = None            # SOT description / referring expression
    caption: str | None = None             # video caption (BenSMOT); an image's first caption (SYNTH-PEDES)
    captions: list[str] = field(default_factory=list)  # every caption of an image (SYNTH-PEDES)
    view: str | None = None                # CRTrack view name, e.g. "View1"
    scene: str | None = None               # grouping key: CRTrack scene, Refer-KITTI video, BenSMOT category
    expression: str | None = None          # Refer-KITTI expression name (its json file's stem)
    frame_ids: list[int] | None = None     # original frame numbers when not 1..T
    # indices of frames whose image is missing or damaged (kept in place so indices still match the
    # annotation rows; the task builders skip them)
    missing_frames: list[int] = field(default_factory=list)
    folder: str | None = None              # the folder holding gt/gt.txt (MOTChallenge layout, BenSMOT)
    attributes: dict[str, np.ndarray | int | str] = field(default_factory=dict)
    # free-form extras a reader keeps for the user (e.g. "frame_rate", "raw_sentence"); nothing in
    # the package reads them: data that code reads is a field above
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def target(self) -> Track:
        """The single target of an SOT sequence."""
        if len(self.tracks) != 1:
            raise ValueError(f"{self.dataset}/{self.name}: expected one track for SOT, found {len(self.tracks)}")
        return self.tracks[0]


def single_target(name: str, boxes, visible=None, dataset: str = "given", attributes: dict | None = None) -> Sequence:
    """An annotation-only single-target Sequence from in-memory ``(N, 4)`` boxes (``visible``: all
    frames when None); no frame paths, image size 0. For scoring boxes that no file holds."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    visible = np.ones(len(boxes), dtype=bool) if visible is None else visible
    return Sequence(name, dataset, [""] * len(boxes), 0, 0, [Track(1, boxes, visible)],
                    attributes=dict(attributes or {}), meta={"annotation_only": True})


class DatasetFormatError(ValueError):
    """A malformed annotation file: names the file, the line and what was expected."""

    def __init__(self, path: str | Path, line: int | None, expected: str, got: str | None = None):
        where = f"{path}:{line}" if line is not None else str(path)
        msg = f"{where}: expected {expected}"
        if got is not None:
            msg += f", got {got!r}"
        super().__init__(msg)
        self.path, self.line, self.expected = str(path), line, expected


Reader = Callable[..., list[Sequence]]
# Filled when the package is imported: Python runs vptracker/datasets/__init__.py, which imports every
# reader module, before any of its modules (this one included), so a lookup below sees every reader.
_READERS: Registry[Reader] = Registry("dataset")


def register(*names: str):
    """Registers a reader ``fn(root, split=None, **options) -> list[Sequence]`` under ``names``;
    a name already taken by another reader is an error (never a silent overwrite)."""
    return _READERS.register(*names)


def available() -> list[str]:
    return sorted(_READERS)


def load(name: str, root: str | Path, split: str | None = None, **options) -> list[Sequence]:
    sequences = _READERS.get(name)(Path(root), split=split, **options)
    report_boxes_outside(name, sequences)
    return sequences


def boxes_outside(seq: Sequence) -> np.ndarray:
    """``(k, 2)`` (track index, frame) of the visible boxes that reach past the image border."""
    out = []
    for i, track in enumerate(seq.tracks):
        x, y, w, h = track.boxes.T
        past = track.visible & ((x < 0) | (y < 0) | (x + w > seq.width) | (y + h > seq.height))
        out.extend((i, int(t)) for t in np.flatnonzero(past))
    return np.asarray(out, dtype=np.int64).reshape(-1, 2)


def report_boxes_outside(name: str, sequences: list[Sequence]) -> None:
    """Says (one warning per load) how many visible boxes reach past the image border.

    Such boxes are kept as annotated: the official toolkits score against them as given. What is
    drawn from them must clip to the image (the tasks clip answers and crops); an initial box that
    is partly outside is counted on its own, since a tracker starts from it. Readers that do not
    know the image size (``width == 0``) are skipped. Each sequence's count is kept in
    ``meta["boxes_outside_image"]``.
    """
    boxes = frames_total = initial = 0
    example = None
    for seq in sequences:
        if seq.width <= 0 or seq.height <= 0 or not seq.tracks:
            continue
        past = boxes_outside(seq)
        seq.meta["boxes_outside_image"] = len(past)
        boxes += len(past)
        frames_total += sum(int(t.visible.sum()) for t in seq.tracks)
        if len(seq.tracks) == 1 and (past[:, 1] == 0).any():
            initial += 1
        if example is None and len(past):
            i, t = past[0]
            box = [round(float(v), 2) for v in seq.tracks[i].boxes[t]]
            example = f"{seq.name} frame {t + 1} track {seq.tracks[i].id}: {box} in a {seq.width}x{seq.height} image"
    if boxes:
        warnings.warn(f"{name}: {boxes} of {frames_total} visible boxes reach past the image border "
                      f"({initial} of them the initial box of a single-target sequence; e.g. {example}); "
                      "they are kept as annotated and clipped to the image where a task draws from them",
                      stacklevel=3)
