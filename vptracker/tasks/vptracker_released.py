"""The released VPTracker sampler: the rows of the ``vptracker_sot`` task.

Restated from jcwang0602/VPTracker at 4e5555c (``dataset/sampling_dataset.py``,
``dataset/track_dataset.py`` and the fork's ``Template._draw_bbox``):

* Boxes: ground truth cut to integers with ``int()`` (towards zero), then ``x1 = max(x, 0)``,
  ``y1 = max(y, 0)``, ``x2 = x + w``, ``y2 = y + h`` (not clipped to the image).
* Visibility: ``w > 0 and h > 0`` of those integers (absent labels are not read; a TNLLT box
  narrower than one pixel counts as absent).
* Pair: a uniformly random sequence; the template a uniformly random visible frame among all but
  the last; the search frame uniformly random after it, visible or not. A sequence without such a
  template frame yields no row (the released sampler drops the row).
* Prompt: the sampler's own text (:func:`vptracker.prompts.texts.vptracker_training_prompt`) with the
  description stripped; answer: :func:`vptracker.boxes.render_vptracker_released`, the search box
  as annotated (an absent frame keeps its annotated box, normally ``[0, 0, 0, 0]``).
* Outline: ``scale = randint(2, 8)``, drawn around the search box *whether or not the target is
  visible*, so an absent frame gets an outline around ``[0, 0, 0, 0]``: PIL's corner blob, a
  point, or the random fallback rectangle (:mod:`vptracker.prompts.visual`).

The jitter is drawn when the row is written rather than when swift loads it (one epoch: the same
distribution).
"""
from __future__ import annotations

import random
import sys
from dataclasses import dataclass

import numpy as np

from vptracker.boxes import render_vptracker_released
from vptracker.datasets.base import Sequence
from vptracker.prompts import visual as released
from vptracker.prompts.texts import raw_language, vptracker_training_prompt
from vptracker.tasks.base import chat

RELEASED_SCALES = ("abs", "norm1000")


@dataclass
class ReleasedEntry:
    frames: list[str]
    boxes: np.ndarray        # (T, 4) int x1,y1,x2,y2 as the released dataset class builds them
    visible: np.ndarray      # (T,) int w > 0 and int h > 0
    templates: np.ndarray    # template frames: visible, not the last, crop window inside the image
    regions: np.ndarray      # (T, 4) template crop bounds of each template frame (-1 elsewhere)
    prompt: str
    width: int
    height: int
    missing: frozenset


def released_boxes(xywh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(x1y1x2y2, visible)`` of ``track_dataset.py``: int-truncated, x1/y1 raised to 0, x2/y2 unclipped."""
    b = np.trunc(np.asarray(xywh, dtype=np.float64)).astype(np.int64)
    visible = (b[:, 2] > 0) & (b[:, 3] > 0)
    xyxy = np.stack([np.maximum(b[:, 0], 0), np.maximum(b[:, 1], 0), b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]], axis=1)
    return xyxy, visible


def released_index(sequences: list[Sequence], task) -> list[ReleasedEntry]:
    entries, no_template, outside = [], 0, 0
    for seq in sequences:
        boxes = seq.target.boxes
        if not np.isfinite(boxes).all():
            raise ValueError(f"{seq.dataset}/{seq.name}: ground truth holds non-finite values")
        xyxy, visible = released_boxes(boxes)
        n = len(seq.frames)
        missing = frozenset(seq.missing_frames)
        regions = np.full((n, 4), -1, dtype=np.int32)
        for t in np.flatnonzero(visible[: n - 1]).tolist():
            if t in missing:
                continue
            try:
                regions[t] = released.template_region(xyxy[t].tolist(), seq.width, seq.height, task.template_scale)
            except ValueError:  # the released crop is empty there: such a row cannot be trained on
                outside += 1
        templates = np.flatnonzero(regions[:, 2] > 0)
        if len(templates) == 0:
            no_template += 1
            continue
        prompt = vptracker_training_prompt(raw_language(seq), task.color, task.visual_prompt)
        entries.append(ReleasedEntry(seq.frames, xyxy, visible, templates, regions, prompt,
                                     seq.width, seq.height, missing))
    if no_template or outside:
        print(f"task vptracker_sot: {no_template} of {len(sequences)} sequences have no "
              f"visible frame before their last one and give no rows; {outside} visible frames are not used as "
              "templates because their crop window lies outside the image", file=sys.stderr)
    if not entries:
        raise ValueError("task vptracker_sot: no sequence has a visible target frame followed by another frame")
    return entries


def _answer_box(box: np.ndarray, width: int, height: int, scale: str) -> list[int]:
    if scale == "norm1000":  # utils/bbox_utils.py normalize_coordinates
        return [round(box[0] / width * 1000), round(box[1] / height * 1000),
                round(box[2] / width * 1000), round(box[3] / height * 1000)]
    return [int(v) for v in box]


def released_sample(index: list[ReleasedEntry], task, rng: random.Random) -> dict | None:
    entry = index[rng.randrange(len(index))]
    t = int(entry.templates[rng.randrange(len(entry.templates))])
    s = rng.randint(t + 1, len(entry.frames) - 1)
    if s in entry.missing:
        return None
    visible = bool(entry.visible[s])
    outline = None
    if task.visual_prompt:
        scale = rng.randint(task.scale_range[0], task.scale_range[1])
        outline, _ = released.training_outline(entry.boxes[s].tolist(), scale, entry.width, entry.height,
                                               task.inbbox_ratio, rng)
    answer = render_vptracker_released(_answer_box(entry.boxes[s], entry.width, entry.height, task.scale),
                                       visible, outline_note=task.visual_prompt)
    return {
        "messages": chat(entry.prompt, answer),
        "images": [entry.frames[t], entry.frames[s]],
        "visual_prompt": {"template_region": entry.regions[t].tolist(), "outline": None if outline is None else list(outline),
                          "color": task.color, "line_width": task.line_width, "geometry": "released"},
    }
