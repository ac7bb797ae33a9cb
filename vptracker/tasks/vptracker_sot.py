"""VPTracker SOT pairs (SPEC section 4): a template frame and a later search frame per row.

A row keeps the two *source frame paths* and a ``visual_prompt`` record (template crop region,
outline rectangle, colour, width); ``vptracker/models/swift_plugin.py`` renders the crop and the outline
when ms-swift loads the row, so a million samples do not mean two million image files. The rows
are the released sampler's (``dataset/sampling_dataset.py`` + ``dataset/track_dataset.py`` + the
fork's ``_draw_bbox``), see :mod:`vptracker.tasks.vptracker_released`; the answer is VPTracker's
JSON in absolute pixels (``abs``, default) or 0-1000 (``norm1000``, the released
``normalize_coordinates``).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from vptracker.datasets.base import Sequence
from vptracker.models.families import get_family
from vptracker.prompts.texts import VPTRACKER_SPECIAL_TOKENS
from vptracker.prompts.visual import INBBOX_RATIO, TEMPLATE_SCALE, TRAIN_SCALE_RANGE, VP_COLOR, VP_LINE_WIDTH
from vptracker.tasks.base import Task, register_task
from vptracker.tasks.contract import TaskContract
from vptracker.tasks.vptracker_released import RELEASED_SCALES, released_index, released_sample

# the released recipe's cap at training (train.sh IMAGE_MAX_TOKEN_NUM=1024); its inference sets none
VISUAL_TOKENS_PER_IMAGE = 1024


@dataclass(frozen=True)
class VPTrackerOptions:
    scale: str = "abs"                  # the answer box scale (RELEASED_SCALES)
    family: str = "qwen3_vl"
    max_pixels: int | None = None       # the training cap; None: VISUAL_TOKENS_PER_IMAGE tokens
    visual_prompt: bool = True
    template_scale: float = TEMPLATE_SCALE
    scale_range: list[int] = field(default_factory=lambda: list(TRAIN_SCALE_RANGE))
    inbbox_ratio: float = INBBOX_RATIO
    color: str = VP_COLOR
    line_width: int = VP_LINE_WIDTH


@register_task("vptracker_sot")
class VPTrackerSOT(Task):
    Options = VPTrackerOptions
    trackable = True

    def train_max_pixels(self) -> int | None:
        """The cap the training images are resized under (None for a family that tiles)."""
        factor = get_family(self.family).resize_factor
        if self.max_pixels:
            return self.max_pixels
        return VISUAL_TOKENS_PER_IMAGE * factor ** 2 if factor else None

    def resolve_contract(self) -> TaskContract:
        # Answers in original-frame pixels or 0-1000 do not depend on the resize, so inference keeps
        # its own pixel limits (the released loop sets none).
        return TaskContract(
            task=self.serves, family=self.family, grammar="vptracker_json", box_scale=self.scale,
            min_pixels=None, max_pixels=None, train_max_pixels=self.train_max_pixels(),
            special_tokens=VPTRACKER_SPECIAL_TOKENS, vp_color=self.color, line_width=self.line_width,
            template_scale=self.template_scale, visual_prompt=self.visual_prompt)

    def validate(self) -> None:
        if self.scale not in RELEASED_SCALES:
            raise ValueError(f"task vptracker_sot: option scale={self.scale!r}, expected one of {RELEASED_SCALES} "
                             "(the released sampler's answers)")
        lo, hi = self.scale_range
        if not (1 <= int(lo) <= int(hi)):
            raise ValueError(f"task vptracker_sot: option scale_range={self.scale_range}, expected [lo, hi] with 1 <= lo <= hi")
        if not 0.0 <= self.inbbox_ratio <= 1.0:
            raise ValueError(f"task vptracker_sot: option inbbox_ratio={self.inbbox_ratio}, expected 0..1")

    def index(self, sequences: list[Sequence]) -> list:
        return released_index(sequences, self)

    def sample(self, index: list, rng: random.Random) -> dict | None:
        return released_sample(index, self, rng)
