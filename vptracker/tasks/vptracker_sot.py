"""VPTracker SOT pairs (SPEC section 4): a template frame and a later search frame per row.

A row keeps the two *source frame paths* and a ``visual_prompt`` record (template crop region,
outline rectangle, colour, width); ``vptracker/swift_plugin.py`` renders the crop and the outline
when ms-swift loads the row, so a million samples do not mean two million image files.

Option ``sampling`` picks the rule. ``released`` (default) is the released sampler
(``dataset/sampling_dataset.py`` + ``dataset/track_dataset.py`` + the fork's ``_draw_bbox``), see
:mod:`vptracker.tasks.vptracker_released`. ``project`` is the rule below, which this project used
first and keeps as an option.

Project sampling rule: a random sequence of the source; the template is a random frame where the target is
visible (w, h > 0) and that has a later frame; the search frame is a random later frame, visible or
not. The outline is the target box scaled by ``randint(2, 8)`` about a centre jittered by
``visual_prompt.training_centre`` (target inside with probability ``inbbox_ratio``). When the
search frame has no target, the outline is placed around the last box seen before it, which is
what the tracker has at test time. The answer is VPTracker's JSON in the chosen scale (absolute
pixels by default; ``norm1000`` or the family's ``resized`` pixels optional), boxes clipped to the
image; an absent target answers ``"visible": "no"``, ``[0, 0, 0, 0]``.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np

from vptracker.boxes import (
    DEFAULT_MIN_PIXELS,
    SCALES,
    CoordMap,
    clip_xyxy,
    render_vptracker,
    xywh_in_image,
    xywh_to_xyxy,
)
from vptracker.datasets.base import Sequence
from vptracker.families import get_family
from vptracker.prompts import PROMPT_TEXTS, VPTRACKER_SPECIAL_TOKENS, vptracker_prompt, vptracker_training_prompt
from vptracker.tasks.base import Task, Tracking, chat, register_task
from vptracker.tasks.contract import TaskContract
from vptracker.tasks.vptracker_released import (
    ABSENT_OUTLINES,
    RELEASED_SCALES,
    SAMPLINGS,
    released_index,
    released_sample,
)
from vptracker.visual_prompt import (
    INBBOX_RATIO,
    TEMPLATE_SCALE,
    TRAIN_SCALE_RANGE,
    VP_COLOR,
    VP_LINE_WIDTH,
    outline_region,
    template_region,
    training_centre,
)

# the released recipe's cap at training (train.sh IMAGE_MAX_TOKEN_NUM=1024); its inference sets none
VISUAL_TOKENS_PER_IMAGE = 1024


@dataclass
class _SotEntry:
    frames: list[str]
    boxes: np.ndarray          # (T, 4) xywh
    usable: np.ndarray         # (T,) target visible with a non-empty box inside the image
    last_usable: np.ndarray    # (T,) index of the last usable frame at or before t (-1 if none)
    templates: np.ndarray      # usable frame indices that have a later frame
    prompt: str
    coord: CoordMap
    width: int
    height: int
    missing: frozenset


def usable_frames(seq: Sequence) -> np.ndarray:
    """Frames whose target is visible with a non-empty box overlapping the image."""
    ok = seq.target.visible & xywh_in_image(seq.target.boxes, seq.width, seq.height)
    missing = seq.missing_frames
    if missing:
        ok[np.asarray(missing, dtype=int)] = False
    return ok


@dataclass(frozen=True)
class VPTrackerOptions:
    scale: str = "abs"                  # the answer box scale (boxes.SCALES)
    family: str = "qwen3_vl"
    max_pixels: int | None = None       # the training cap; None: VISUAL_TOKENS_PER_IMAGE tokens
    visual_prompt: bool = True
    template_scale: float = TEMPLATE_SCALE
    scale_range: list[int] = field(default_factory=lambda: list(TRAIN_SCALE_RANGE))
    inbbox_ratio: float = INBBOX_RATIO
    color: str = VP_COLOR
    line_width: int = VP_LINE_WIDTH
    max_gap: int | None = None          # the most frames between template and search (project rule)
    sampling: str = "released"          # SAMPLINGS
    prompt_text: str = "sampler"        # PROMPT_TEXTS
    absent_outline: str = "annotated"   # ABSENT_OUTLINES


@register_task("vptracker_sot")
class VPTrackerSOT(Task):
    Options = VPTrackerOptions
    trackable = True

    def tracking_side(self) -> Tracking:
        from vptracker.infer.sot import VPTrackerSOTTracker
        from vptracker.infer.units import per_sequence, write_sot

        return Tracking(per_sequence(".txt"), lambda unit, options: VPTrackerSOTTracker(unit.sequences[0], options),
                        write_sot, lambda options: 2)   # the template crop and the search frame

    def train_max_pixels(self) -> int | None:
        """The cap the training images are resized under (None for a family that tiles)."""
        factor = get_family(self.family).resize_factor
        if self.max_pixels:
            return self.max_pixels
        return VISUAL_TOKENS_PER_IMAGE * factor ** 2 if factor else None

    def resolve_contract(self) -> TaskContract:
        # Answers in original-frame pixels or 0-1000 do not depend on the resize, so inference keeps
        # its own pixel limits (the released loop sets none); 'resized' answers need the same resize.
        resized = self.scale == "resized"
        return TaskContract(
            task=self.serves, family=self.family, grammar="vptracker_json", box_scale=self.scale,
            min_pixels=DEFAULT_MIN_PIXELS if resized else None,
            max_pixels=self.train_max_pixels() if resized else None, train_max_pixels=self.train_max_pixels(),
            special_tokens=VPTRACKER_SPECIAL_TOKENS, vp_color=self.color, line_width=self.line_width,
            template_scale=self.template_scale, visual_prompt=self.visual_prompt)

    def validate(self) -> None:
        if self.scale not in SCALES:
            raise ValueError(f"task vptracker_sot: option scale={self.scale!r}, expected one of {SCALES}")
        for key, allowed in (("sampling", SAMPLINGS), ("prompt_text", PROMPT_TEXTS),
                             ("absent_outline", ABSENT_OUTLINES)):
            if getattr(self, key) not in allowed:
                raise ValueError(f"task vptracker_sot: option {key}={getattr(self, key)!r}, expected one of {allowed}")
        if self.sampling == "released" and self.scale not in RELEASED_SCALES:
            raise ValueError(f"task vptracker_sot: sampling=released writes answers in {RELEASED_SCALES} "
                             f"(the released norm_coords rule), not scale={self.scale!r}; use sampling=project")
        lo, hi = self.scale_range
        if not (1 <= int(lo) <= int(hi)):
            raise ValueError(f"task vptracker_sot: option scale_range={self.scale_range}, expected [lo, hi] with 1 <= lo <= hi")
        if not 0.0 <= self.inbbox_ratio <= 1.0:
            raise ValueError(f"task vptracker_sot: option inbbox_ratio={self.inbbox_ratio}, expected 0..1")
        if self.max_gap is not None and self.max_gap < 1:
            raise ValueError(f"task vptracker_sot: option max_gap={self.max_gap}, expected >= 1")

    def _prompt(self, language: str) -> str:
        if self.prompt_text == "sampler":
            return vptracker_training_prompt(language, self.color, self.visual_prompt)
        return vptracker_prompt(language, self.color, self.visual_prompt, strip_language=True)

    def _coord(self, width: int, height: int) -> CoordMap:
        return self.contract().coord_map(width, height)   # for_family refuses 'resized' for a tiling family

    def index(self, sequences: list[Sequence]) -> list:
        if self.sampling == "released":
            return released_index(sequences, self)
        entries = []
        for seq in sequences:
            usable = usable_frames(seq)
            n = len(seq)
            idx = np.where(usable, np.arange(n), -1)
            last = np.maximum.accumulate(idx) if n else idx
            templates = np.flatnonzero(usable[:-1]).astype(np.int32)
            if len(templates) == 0:
                continue
            entries.append(_SotEntry(seq.frames, seq.target.boxes, usable, last.astype(np.int32), templates,
                                     self._prompt(seq.language or ""),
                                     self._coord(seq.width, seq.height), seq.width, seq.height,
                                     frozenset(seq.missing_frames)))
        if not entries:
            raise ValueError("task vptracker_sot: no sequence has a visible target frame followed by another frame")
        return entries

    def sample(self, index: list, rng: random.Random) -> dict | None:
        if self.sampling == "released":
            return released_sample(index, self, rng)
        entry = index[rng.randrange(len(index))]
        t = int(entry.templates[rng.randrange(len(entry.templates))])
        last = len(entry.frames) - 1
        if self.max_gap is not None:
            last = min(last, t + self.max_gap)
        s = rng.randint(t + 1, last)
        if s in entry.missing:
            return None
        return self.row(entry, t, s, rng)

    def row(self, entry: _SotEntry, t: int, s: int, rng: random.Random) -> dict:
        W, H = entry.width, entry.height
        tx, ty, tw, th = entry.boxes[t].tolist()
        region = template_region((tx, ty, tw, th), W, H, self.template_scale)
        visible = bool(entry.usable[s])
        outline = None
        if self.visual_prompt:
            ref = entry.boxes[s if visible else int(entry.last_usable[s])].tolist()
            scale = rng.randint(self.scale_range[0], self.scale_range[1])
            centre, _ = training_centre(ref, scale, rng, self.inbbox_ratio)
            outline = outline_region(ref, scale, W, H, centre)
            if outline[2] <= outline[0] or outline[3] <= outline[1]:  # jittered off the image
                outline = outline_region(ref, scale, W, H)
            outline = [round(v, 1) for v in outline]
        if visible:
            box = clip_xyxy(xywh_to_xyxy(entry.boxes[s].tolist()), W, H)
            answer = render_vptracker(entry.coord.to_model(box), entry.coord.decimals)
        else:
            answer = render_vptracker(None)
        return {
            "messages": chat(entry.prompt, answer),
            "images": [entry.frames[t], entry.frames[s]],
            "visual_prompt": {"template_region": list(region), "outline": outline, "color": self.color,
                              "line_width": self.line_width, "geometry": "project"},
        }
