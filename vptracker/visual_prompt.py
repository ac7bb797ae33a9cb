"""VPTracker's visual prompt: the template crop and the outlined search frame (SPEC section 4).

The one renderer used by training (at load time, from a row's ``visual_prompt`` field) and by
inference. All geometry is in original-frame pixels and is drawn before the model's own resizing.

* Template: a square of side ``ceil(sqrt(w*h) * template_scale)`` centred on the target box,
  clipped at the image border, not padded, not resized.
* Search: the full frame with a rectangle outline (``color``, ``line_width``) around the target box
  scaled by ``scale`` about a centre (the previous box at test time; the ground truth, jittered,
  in training), clipped to the image.

Two geometries (``GEOMETRIES``), chosen per row / per run:

* ``released`` (default): the released code's integer rules, pixel for pixel (jcwang0602/VPTracker
  at 4e5555c, the fork's ``sample_target`` and ``Template._draw_bbox``): see
  :mod:`vptracker.visual_prompt_released`.
* ``project``: the rules this project used first: template origin ``floor()`` and the full window
  kept up to the border; outline corners ``round()``-ed and drawn *inside* the clipped region (right
  and bottom edge one pixel inward, 3 px wide at the border too); training jitter that never puts
  the target entirely outside on both axes.
"""
from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass
from typing import Sequence

from PIL import Image, ImageDraw

GEOMETRIES = ("released", "project")
TEMPLATE_SCALE = 2.0
TEST_VP_SCALE = 4
TRAIN_SCALE_RANGE = (2, 8)
INBBOX_RATIO = 0.9
VP_COLOR = "red"
VP_LINE_WIDTH = 3


def template_region(box_xywh: Sequence[float], width: int, height: int,
                    template_scale: float = TEMPLATE_SCALE) -> tuple[int, int, int, int]:
    """The template crop ``(x1, y1, x2, y2)`` in integer pixels, clipped to the image."""
    x, y, w, h = box_xywh
    side = math.ceil(math.sqrt(max(w, 0.0) * max(h, 0.0)) * template_scale)
    side = max(side, 1)
    cx, cy = x + w / 2.0, y + h / 2.0
    x1 = int(math.floor(cx - side / 2.0))
    y1 = int(math.floor(cy - side / 2.0))
    x2, y2 = x1 + side, y1 + side
    x1, y1 = max(x1, 0), max(y1, 0)
    x2, y2 = min(x2, width), min(y2, height)
    if x2 <= x1 or y2 <= y1:  # box entirely outside the image: keep a 1-pixel crop inside
        x1, y1 = min(max(x1, 0), width - 1), min(max(y1, 0), height - 1)
        x2, y2 = x1 + 1, y1 + 1
    return x1, y1, x2, y2


def outline_region(box_xywh: Sequence[float], scale: float, width: int, height: int,
                   centre: Sequence[float] | None = None) -> tuple[float, float, float, float]:
    """The box scaled by ``scale`` about ``centre`` (default: its own centre), clipped to the image."""
    x, y, w, h = box_xywh
    cx, cy = centre if centre is not None else (x + w / 2.0, y + h / 2.0)
    half_w, half_h = w * scale / 2.0, h * scale / 2.0
    return (max(cx - half_w, 0.0), max(cy - half_h, 0.0), min(cx + half_w, float(width)),
            min(cy + half_h, float(height)))


def training_centre(box_xywh: Sequence[float], scale: float, rng: random.Random,
                    inbbox_ratio: float = INBBOX_RATIO) -> tuple[tuple[float, float], bool]:
    """A jittered outline centre and whether the target lies inside the (unclipped) rectangle.

    With probability ``inbbox_ratio`` the centre moves by at most ``(scale - 1) * size / 2`` per
    axis, so the target stays inside the rectangle; otherwise it moves by between that and
    ``(scale + 1) * size / 2`` on at least one axis, leaving the target on the edge or outside.
    """
    x, y, w, h = box_xywh
    cx, cy = x + w / 2.0, y + h / 2.0
    slack_x, slack_y = (scale - 1) * w / 2.0, (scale - 1) * h / 2.0
    if rng.random() < inbbox_ratio:
        return (cx + rng.uniform(-slack_x, slack_x), cy + rng.uniform(-slack_y, slack_y)), True
    reach_x, reach_y = (scale + 1) * w / 2.0, (scale + 1) * h / 2.0
    dx = rng.uniform(-slack_x, slack_x)
    dy = rng.uniform(-slack_y, slack_y)
    if rng.random() < 0.5:
        dx = rng.choice((-1, 1)) * rng.uniform(slack_x, reach_x)
    else:
        dy = rng.choice((-1, 1)) * rng.uniform(slack_y, reach_y)
    return (cx + dx, cy + dy), False


@dataclass(frozen=True)
class VisualPrompt:
    """What a training row stores so the images can be rendered at load time."""

    template_region: tuple[int, int, int, int]
    # released: the integer rectangle PIL draws as is (x2, y2 inclusive); project: a float region
    outline: tuple[float, float, float, float] | None
    color: str = VP_COLOR
    line_width: int = VP_LINE_WIDTH
    geometry: str = "project"   # rows written before the released geometry existed carry no key

    def __post_init__(self):
        if self.geometry not in GEOMETRIES:
            raise ValueError(f"visual prompt geometry {self.geometry!r}, expected one of {GEOMETRIES}")

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "VisualPrompt":
        outline = data.get("outline")
        return cls(tuple(data["template_region"]), tuple(outline) if outline is not None else None,
                   data.get("color", VP_COLOR), int(data.get("line_width", VP_LINE_WIDTH)),
                   data.get("geometry", "project"))


def crop_template(frame: Image.Image, region: Sequence[int]) -> Image.Image:
    return frame.convert("RGB").crop(tuple(int(v) for v in region))


def draw_outline(frame: Image.Image, region: Sequence[float], color: str = VP_COLOR,
                 line_width: int = VP_LINE_WIDTH) -> Image.Image:
    """A copy of ``frame`` with the rectangle's outline drawn inside ``region`` (pixel-exact width)."""
    out = frame.convert("RGB").copy()
    x1, y1, x2, y2 = (int(round(v)) for v in region)
    x2, y2 = min(x2, out.width) - 1, min(y2, out.height) - 1
    if x2 >= x1 and y2 >= y1:
        ImageDraw.Draw(out).rectangle((x1, y1, x2, y2), outline=color, width=line_width)
    return out


def render(template_frame: Image.Image, search_frame: Image.Image, prompt: VisualPrompt) -> tuple[Image.Image, Image.Image]:
    """The two model images ``(template_crop, search_image)`` of one VPTracker sample."""
    template = crop_template(template_frame, prompt.template_region)
    search = search_frame.convert("RGB")
    if prompt.outline is None:
        return template, search
    if prompt.geometry == "released":
        from vptracker.visual_prompt_released import draw_rectangle
        return template, draw_rectangle(search, prompt.outline, prompt.color, prompt.line_width)
    return template, draw_outline(search, prompt.outline, prompt.color, prompt.line_width)


def test_time_prompt(template_box_xywh: Sequence[float], previous_box_xywh: Sequence[float], width: int,
                     height: int, vp_scale: float = TEST_VP_SCALE, color: str = VP_COLOR,
                     template_scale: float = TEMPLATE_SCALE, visual_prompt: bool = True) -> VisualPrompt:
    """The ``project`` geometry's inference rule: template from frame 1, outline around the previous box.

    The released geometry is :func:`vptracker.visual_prompt_released.test_time_prompt`.
    """
    outline = outline_region(previous_box_xywh, vp_scale, width, height) if visual_prompt else None
    return VisualPrompt(template_region(template_box_xywh, width, height, template_scale), outline, color)
