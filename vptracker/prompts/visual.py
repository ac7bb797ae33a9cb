"""VPTracker's visual prompt: the template crop and the outlined search frame (SPEC section 4).

The one renderer used by training (at load time, from a row's ``visual_prompt`` field) and by
inference. All geometry is in original-frame pixels and is drawn before the model's own resizing,
with the released code's integer rules, pixel for pixel (jcwang0602/VPTracker at 4e5555c, the
fork's ``sample_target`` and ``Template._draw_bbox``), as restated below.

* Template: a square of side ``ceil(sqrt(w*h) * template_scale)`` around the target box, cut at
  the image border, not padded, not resized.
* Search: the full frame with a rectangle outline (``color``, ``line_width``) around the target box
  scaled by ``scale`` about a centre (the previous box at test time; the ground truth, jittered,
  in training).

A row's ``visual_prompt`` carries ``"geometry": "released"``; rows with any other geometry (the
``project`` geometry of earlier versions, or no key, from before the released one) are refused.

Restated from jcwang0602/VPTracker at 4e5555c, the fork's ``ms-swift/swift/llm/template/base.py``:

* Template crop (``sample_target``): side ``ceil(sqrt(w*h) * template_scale)``; origin
  ``round(x + w/2 - side/2)`` (Python's round: halves go to the even integer); the window is cut
  with numpy slicing in which the end index is pulled back to ``W - 1`` / ``H - 1`` when it passes
  the border, so a window that reaches the right or bottom border loses the image's last column or
  row. A box of area 0 is an error there (``Too small bounding box``) and here.
* Outline (``Template._draw_bbox``): the box scaled about its (jittered) centre, corners truncated
  with ``int()`` (towards zero), ``x1, y1`` raised to 0, ``x2, y2`` lowered to ``W, H`` (not
  ``W - 1``), then PIL's ``rectangle(..., width=3)``, which treats ``x2, y2`` as inclusive: at the
  right/bottom border one of the three lines falls outside the image, so the edge is 2 px wide. A
  rectangle PIL refuses (``x2 < x1`` or ``y2 < y1``: the jittered region left the image) is
  replaced by a random rectangle with corners in ``[1, W-1] x [1, H-1]``.
* Training jitter: with probability ``inbbox_ratio`` the centre moves by up to ``(scale-1)/2`` of
  the box per axis (the target stays inside); otherwise each axis moves, away from the centre, by
  between that and ``W - new_w - (scale-1)*w/2`` (as far as the image allows), on a random side.
  The random draws happen in the released order, so one seeded ``random.Random`` reproduces the
  released rectangles.
"""
from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw

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
    template = crop_template(template_frame, prompt.template_region)
    search = search_frame.convert("RGB")
    if prompt.outline is None:
        return template, search
    return template, draw_rectangle(search, prompt.outline, prompt.color, prompt.line_width)


Rect = tuple[int, int, int, int]


def template_region(box_xyxy: Sequence[float], width: int, height: int,
                    template_scale: float = TEMPLATE_SCALE) -> Rect:
    """``sample_target``'s window as crop bounds ``(left, top, right, bottom)`` (right/bottom exclusive)."""
    x1, y1, x2, y2 = box_xyxy
    w, h = x2 - x1, y2 - y1
    if w * h < 0:
        raise ValueError(f"template box {list(box_xyxy)} has a negative area")
    side = math.ceil(math.sqrt(w * h) * template_scale)
    if side < 1:
        raise ValueError(f"template box {list(box_xyxy)} is too small for a crop (side {side})")
    left = int(round(x1 + 0.5 * w - side * 0.5))  # noqa: RUF046 (numpy floats round to numpy floats)
    top = int(round(y1 + 0.5 * h - side * 0.5))  # noqa: RUF046
    right, bottom = left + side, top + side
    # numpy slice semantics of im[top + pad : bottom - pad, ...] (a negative end counts from the end)
    xs, xe, _ = slice(left + max(0, -left), right - max(right - width + 1, 0)).indices(width)
    ys, ye, _ = slice(top + max(0, -top), bottom - max(bottom - height + 1, 0)).indices(height)
    if xe <= xs or ye <= ys:
        raise ValueError(f"template box {list(box_xyxy)}: the crop window lies outside the {width}x{height} image")
    return xs, ys, xe, ye


def outline_rect(box_xyxy: Sequence[float], scale: float, width: int, height: int,
                 shift: tuple[float, float] = (0.0, 0.0)) -> Rect:
    """The rectangle ``_draw_bbox`` hands to PIL; it may be inverted (then PIL refuses it)."""
    x1, y1, x2, y2 = box_xyxy
    new_w, new_h = (x2 - x1) * scale, (y2 - y1) * scale
    cx, cy = (x1 + x2) / 2 + shift[0], (y1 + y2) / 2 + shift[1]
    return (max(0, int(cx - new_w / 2)), max(0, int(cy - new_h / 2)),
            min(width, int(cx + new_w / 2)), min(height, int(cy + new_h / 2)))


def drawable(rect: Sequence[int]) -> bool:
    return rect[2] >= rect[0] and rect[3] >= rect[1]


def training_shift(box_xyxy: Sequence[float], scale: float, width: int, height: int, inbbox_ratio: float,
                   rng: random.Random) -> tuple[tuple[float, float], bool]:
    """The centre shift of one training outline and whether it was drawn to keep the target inside."""
    x1, y1, x2, y2 = box_xyxy
    w, h = x2 - x1, y2 - y1
    new_w, new_h = w * scale, h * scale
    if rng.random() < inbbox_ratio:
        max_dx, max_dy = (new_w - w) / 2, (new_h - h) / 2
        return (rng.uniform(-max_dx, max_dx), rng.uniform(-max_dy, max_dy)), True
    min_dx, min_dy = (new_w - w) / 2, (new_h - h) / 2
    max_dx, max_dy = width - new_w - min_dx, height - new_h - min_dy
    # both candidates are drawn before the choice, as in the released list literal
    dx = rng.choice([rng.uniform(min_dx, max_dx), rng.uniform(-max_dx, -min_dx)])
    dy = rng.choice([rng.uniform(min_dy, max_dy), rng.uniform(-max_dy, -min_dy)])
    return (dx, dy), False


def fallback_rect(width: int, height: int, rng: random.Random) -> Rect:
    """The random rectangle drawn when PIL refuses the computed one."""
    xa, xb = rng.randint(1, width - 1), rng.randint(1, width - 1)
    ya, yb = rng.randint(1, height - 1), rng.randint(1, height - 1)
    return min(xa, xb), min(ya, yb), max(xa, xb), max(ya, yb)


def resolve(rect: Rect, width: int, height: int, rng: random.Random) -> tuple[Rect, bool]:
    """``rect`` when PIL can draw it, else the released fallback; the flag says which."""
    return (rect, False) if drawable(rect) else (fallback_rect(width, height, rng), True)


def training_outline(box_xyxy: Sequence[float], scale: int, width: int, height: int, inbbox_ratio: float,
                     rng: random.Random) -> tuple[Rect, str]:
    """One training outline and its kind: ``inside``, ``off_target`` or ``fallback``."""
    shift, inside = training_shift(box_xyxy, scale, width, height, inbbox_ratio, rng)
    rect, fell_back = resolve(outline_rect(box_xyxy, scale, width, height, shift), width, height, rng)
    return rect, "fallback" if fell_back else ("inside" if inside else "off_target")


def draw_rectangle(frame: Image.Image, rect: Sequence[int], color: str = VP_COLOR,
                   line_width: int = VP_LINE_WIDTH) -> Image.Image:
    """A copy of ``frame`` with PIL's outline of ``rect`` (x2, y2 inclusive, pixels past the border dropped)."""
    rect = tuple(int(v) for v in rect)
    if not drawable(rect):
        raise ValueError(f"released outline {list(rect)} is inverted; rows store the resolved rectangle")
    out = frame.convert("RGB").copy()
    ImageDraw.Draw(out).rectangle(rect, outline=color, width=line_width)
    return out


def test_time_prompt(template_xyxy: Sequence[float], previous_xyxy: Sequence[float], width: int, height: int,
                     vp_scale: float = TEST_VP_SCALE, color: str = VP_COLOR,
                     template_scale: float = TEMPLATE_SCALE, visual_prompt: bool = True,
                     rng: random.Random | None = None) -> VisualPrompt:
    """The released inference images: template around the frame-1 box, outline ``vp_scale`` x the previous box."""
    outline = None
    if visual_prompt:
        outline, _ = resolve(outline_rect(previous_xyxy, vp_scale, width, height), width, height,
                             rng or random.Random(0))
    return VisualPrompt(template_region(template_xyxy, width, height, template_scale), outline, color,
                        VP_LINE_WIDTH)
