"""What every OmniPT task shares: frame windows, the box scale of the model family, box texts.

Options common to the OmniPT tasks (:class:`OmniPTOptions`): ``frames`` per sample (2..32; the paper
uses 16, 32 for semantic tasks), ``stride`` between sampled frames, the model ``family`` and the
box ``scale`` (``norm1000`` by default, the OmniPT answer grammar's normalised coordinates;
``family`` picks the family's own convention, e.g. Qwen2.5-VL's resized pixels), ``max_pixels``
(the paper's 28x28x646) for the resized scale, and the box ``grammar`` of answers and of the boxes
prompts mention: ``bbox`` (OmniPT's ``<bbox>x,y,w,h</bbox>``, the default) or ``qwen`` (Qwen's
native ``<|box_start|>(x1,y1),(x2,y2)<|box_end|>``); ``<None>`` is the absent marker in both.
Boxes are clipped to the image before rendering; a box with nothing left inside the image is
rendered as ``<None>``.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from vptracker.boxes import (
    DEFAULT_MIN_PIXELS,
    GRAMMARS,
    SCALES,
    CoordMap,
    clip_xyxy,
    render_box,
    render_trajectory_array,
    xywh_in_image,
    xywh_to_xyxy,
)
from vptracker.datasets.base import Sequence, Track
from vptracker.models.families import FAMILIES, get_family
from vptracker.models.families import coord_map as family_coord_map
from vptracker.tasks.contract import TaskContract, resolve_scale

OMNIPT_MAX_PIXELS = 28 * 28 * 646   # the paper's cap, for training and inference (the task contract)


@dataclass(frozen=True)
class BoxOptions:
    """How a task writes boxes: the model family, the box scale and the grammar."""

    family: str = "qwen2_5_vl"
    scale: str = "norm1000"
    max_pixels: int = OMNIPT_MAX_PIXELS
    grammar: str = "bbox"


@dataclass(frozen=True)
class OmniPTOptions(BoxOptions):
    """The options of the OmniPT video tasks: frames per sample and the stride between them."""

    frames: int = 16
    stride: int = 1


@dataclass(frozen=True)
class PriorOptions(OmniPTOptions):
    """Tasks whose prompt gives the objects' first-frame boxes (SOT, location, MOT's track query).

    ``prior_jitter`` (default 0, the paper's samples) moves and rescales each given box by up to that
    fraction of its size while the answers keep the true boxes: at inference the given boxes are the
    model's own earlier answers, and a model only ever shown exact ones learns to copy them and
    extrapolate (measured in both demos) instead of finding the object in the images (the
    search-region jitter of Siamese trackers, for the same reason)."""

    prior_jitter: float = 0.0


def validate_prior(task) -> None:
    validate_common(task)
    if not 0.0 <= task.prior_jitter < 1.0:
        raise ValueError(f"task {task.name}: option prior_jitter={task.prior_jitter}, expected 0 <= value < 1")


def validate_common(task) -> None:
    if not 2 <= task.frames <= 32:
        raise ValueError(f"task {task.name}: option frames={task.frames}, expected 2..32")
    if task.stride < 1:
        raise ValueError(f"task {task.name}: option stride={task.stride}, expected >= 1")
    validate_boxes(task)


def validate_boxes(task) -> None:
    """Checks the ``family``, ``scale`` and ``grammar`` options."""
    if task.family not in FAMILIES:
        raise ValueError(f"task {task.name}: option family={task.family!r}, expected one of {sorted(FAMILIES)}")
    family = get_family(task.family)
    if task.scale != "family" and task.scale not in SCALES:
        raise ValueError(f"task {task.name}: option scale={task.scale!r}, expected 'family' or one of {SCALES}")
    if task.scale == "resized" and family.resize_factor is None:
        raise ValueError(f"task {task.name}: option scale=resized needs a family that resizes to a pixel multiple; "
                         f"{task.family} tiles the image (its own convention is {family.box_scale})")
    if task.grammar not in GRAMMARS:
        raise ValueError(f"task {task.name}: option grammar={task.grammar!r}, expected one of {GRAMMARS}")
    if task.grammar == "qwen" and "<|box_start|>" not in family.box_tokens:
        raise ValueError(f"task {task.name}: option grammar=qwen writes Qwen's <|box_start|> tokens, which "
                         f"{task.family} was not pre-trained on; use grammar=bbox")


def omnipt_contract(task, frames_per_sample: int | None = None, caption_frames: int | None = None) -> TaskContract:
    """The contract of an OmniPT builder's rows: the paper's pixel cap applies to training and inference
    alike (a tiling family has no pixel cap: None); ``min_pixels`` only where the boxes depend on it."""
    scale = resolve_scale(task.family, task.scale)
    resizes = get_family(task.family).resize_factor is not None
    return TaskContract(task=task.serves, family=task.family, grammar=task.grammar, box_scale=scale,
                        min_pixels=DEFAULT_MIN_PIXELS if scale == "resized" else None,
                        max_pixels=task.max_pixels if resizes else None,
                        train_max_pixels=task.max_pixels if resizes else None,
                        frames_per_sample=frames_per_sample, caption_frames=caption_frames)


@lru_cache(maxsize=4096)
def coord_map(family: str, scale: str, width: int, height: int, max_pixels: int) -> CoordMap:
    scale = get_family(family).box_scale if scale == "family" else scale
    if scale == "resized":
        return family_coord_map(family, width, height, "resized", max_pixels=max_pixels)
    return CoordMap(scale, width, height)


def task_coord(task, seq: Sequence) -> CoordMap:
    return coord_map(task.family, task.scale, int(seq.width), int(seq.height), task.max_pixels)


def usable(track: Track, t: int, width: int, height: int) -> bool:
    """Visible at ``t`` with a non-empty part of its box inside the image."""
    return bool(track.visible[t] and xywh_in_image(track.boxes[t], width, height))


def usable_mask(track: Track, width: int, height: int) -> np.ndarray:
    """:func:`usable` for every frame at once."""
    return track.visible & xywh_in_image(track.boxes, width, height)


def clipped_box(track: Track, t: int, seq: Sequence) -> tuple:
    """The frame-``t`` box as ``x1, y1, x2, y2`` pixels, clipped to the image (a :func:`usable` one)."""
    return clip_xyxy(xywh_to_xyxy(track.boxes[t].tolist()), seq.width, seq.height)


def model_box(track: Track, t: int, seq: Sequence, coord: CoordMap):
    """The clipped frame box in model scale, or ``None`` when the object is not in frame ``t``."""
    if not usable(track, t, seq.width, seq.height):
        return None
    return coord.to_model(clipped_box(track, t, seq))


def model_box_array(seq: Sequence, track_ids: list[int], frames: list[int], coord: CoordMap) -> tuple:
    """:func:`model_box` of each track on each frame at once, the same values: boxes ``(k, F, 4)``
    (zeros where the object is not in the frame) and where it is, ``(k, F)``. A row of 16 frames and
    ten objects would otherwise spend most of its time box by box."""
    at = np.asarray(frames)
    xywh = np.stack([seq.tracks[i].boxes[at] for i in track_ids])                     # (k, F, 4)
    present = np.stack([seq.tracks[i].visible[at] for i in track_ids]) & xywh_in_image(xywh, seq.width, seq.height)
    inside = xywh[present]
    # xywh_to_xyxy, clip_xyxy, then the scale: the same float operations as model_box
    corners = np.concatenate([inside[:, :2], inside[:, :2] + inside[:, 2:]], axis=1)
    corners = np.minimum(np.maximum(corners, 0.0), [seq.width, seq.height, seq.width, seq.height])
    boxes = np.zeros_like(xywh)
    boxes[present] = np.column_stack(coord.to_model(corners.T))
    return boxes, present


def trajectory_texts(seq: Sequence, track_ids: list[int], frames: list[int], coord: CoordMap,
                     grammar: str = "bbox") -> list[str]:
    """:func:`render_trajectory` of each track's :func:`trajectory` over ``frames``, the same texts."""
    if not track_ids:
        return []
    return render_trajectory_array(*model_box_array(seq, track_ids, frames, coord), coord.decimals, grammar)


def box_text(track: Track, t: int, seq: Sequence, coord: CoordMap, grammar: str = "bbox") -> str | None:
    box = model_box(track, t, seq, coord)
    return None if box is None else render_box(box, coord.decimals, grammar)


def trajectory(track: Track, frames: list[int], seq: Sequence, coord: CoordMap) -> list:
    return [model_box(track, t, seq, coord) for t in frames]


def jittered(box: tuple, jitter: float, width: float, height: float, rng: random.Random) -> tuple:
    """``box`` (x1, y1, x2, y2 in pixels) moved by up to ``jitter`` of its size and rescaled by up to
    ``jitter / 2``, kept inside the image."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    cx = x1 + w / 2 + rng.uniform(-jitter, jitter) * w
    cy = y1 + h / 2 + rng.uniform(-jitter, jitter) * h
    w *= 1 + rng.uniform(-jitter, jitter) / 2
    h *= 1 + rng.uniform(-jitter, jitter) / 2
    x1, y1 = min(max(cx - w / 2, 0.0), width - 1.0), min(max(cy - h / 2, 0.0), height - 1.0)
    return x1, y1, min(max(cx + w / 2, x1 + 1.0), width), min(max(cy + h / 2, y1 + 1.0), height)


def prior_box(task, track: Track, t: int, seq: Sequence, coord: CoordMap, rng: random.Random):
    """The box a prompt gives for ``track`` on frame ``t`` in model scale: the true one, or under
    ``task.prior_jitter`` a jittered one (``None`` when the object is not in the frame)."""
    if not task.prior_jitter or not usable(track, t, seq.width, seq.height):
        return model_box(track, t, seq, coord)
    return coord.to_model(jittered(clipped_box(track, t, seq), task.prior_jitter, seq.width, seq.height, rng))


def window(n_frames: int, frames: int, stride: int, rng: random.Random) -> list[int] | None:
    """``frames`` indices ``stride`` apart at a random start (the stride shrinks for short videos)."""
    if n_frames < frames:
        return None
    stride = max(1, min(stride, (n_frames - 1) // max(frames - 1, 1)))
    start = rng.randint(0, n_frames - 1 - (frames - 1) * stride)
    return list(range(start, start + frames * stride, stride))


def frame_paths(seq: Sequence, frames: list[int]) -> list[str]:
    return [seq.frames[t] for t in frames]


def has_missing(seq: Sequence, frames: list[int]) -> bool:
    missing = seq.missing_frames
    return bool(missing) and not set(missing).isdisjoint(frames)
