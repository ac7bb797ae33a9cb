"""VPTracker's visual prompt: the template crop and the outlined search frame (SPEC section 4).

The one renderer used by training (at load time, from a row's ``visual_prompt`` field) and by
inference. All geometry is in original-frame pixels and is drawn before the model's own resizing,
with the released code's integer rules, pixel for pixel (jcwang0602/VPTracker at 4e5555c, the
fork's ``sample_target`` and ``Template._draw_bbox``): see :mod:`vptracker.visual_prompt_released`.

* Template: a square of side ``ceil(sqrt(w*h) * template_scale)`` around the target box, cut at
  the image border, not padded, not resized.
* Search: the full frame with a rectangle outline (``color``, ``line_width``) around the target box
  scaled by ``scale`` about a centre (the previous box at test time; the ground truth, jittered,
  in training).

A row's ``visual_prompt`` carries ``"geometry": "released"``; rows with any other geometry (the
``project`` geometry of earlier versions, or no key, from before the released one) are refused.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image

GEOMETRY = "released"   # the only geometry rows may carry
TEMPLATE_SCALE = 2.0
TEST_VP_SCALE = 4
TRAIN_SCALE_RANGE = (2, 8)
INBBOX_RATIO = 0.9
VP_COLOR = "red"
VP_LINE_WIDTH = 3


@dataclass(frozen=True)
class VisualPrompt:
    """What a training row stores so the images can be rendered at load time."""

    template_region: tuple[int, int, int, int]
    outline: tuple[int, int, int, int] | None   # the integer rectangle PIL draws as is (x2, y2 inclusive)
    color: str = VP_COLOR
    line_width: int = VP_LINE_WIDTH

    @classmethod
    def from_json(cls, data: dict) -> VisualPrompt:
        geometry = data.get("geometry")
        if geometry != GEOMETRY:
            raise ValueError(f"visual_prompt key 'geometry' is {geometry!r}, expected {GEOMETRY!r}: the project "
                             "geometry was removed; prepare these rows again")
        outline = data.get("outline")
        return cls(tuple(data["template_region"]), tuple(outline) if outline is not None else None,
                   data.get("color", VP_COLOR), int(data.get("line_width", VP_LINE_WIDTH)))


def crop_template(frame: Image.Image, region: Sequence[int]) -> Image.Image:
    return frame.convert("RGB").crop(tuple(int(v) for v in region))


def render(template_frame: Image.Image, search_frame: Image.Image, prompt: VisualPrompt) -> tuple[Image.Image, Image.Image]:
    """The two model images ``(template_crop, search_image)`` of one VPTracker sample."""
    from vptracker.visual_prompt_released import draw_rectangle  # that module imports this one's constants

    template = crop_template(template_frame, prompt.template_region)
    search = search_frame.convert("RGB")
    if prompt.outline is None:
        return template, search
    return template, draw_rectangle(search, prompt.outline, prompt.color, prompt.line_width)
