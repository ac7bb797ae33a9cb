"""Coordinate scales and resize maps: how a frame box is written for a model and read back.

Part of :mod:`vptracker.boxes` (import from there). The scales are ``abs``, ``resized``, ``norm1``
and ``norm1000``; :class:`CoordMap` converts frame boxes to a scale and back. Which scale and
resized size a model family uses is the family's (:func:`vptracker.models.families.coord_map`).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from vptracker.boxes.geometry import Box

SCALES = ("abs", "resized", "norm1", "norm1000")
DEFAULT_MIN_PIXELS = 4 * 28 * 28
DEFAULT_MAX_PIXELS = 16384 * 28 * 28
_MAX_ASPECT = 200   # qwen-vl-utils refuses a frame more elongated than this


def smart_resize(height: int, width: int, factor: int, min_pixels: int | None = None,
                 max_pixels: int | None = None) -> tuple[int, int]:
    """The ``(height, width)`` a Qwen-VL processor resizes a frame to: each side the nearest multiple
    of ``factor`` (at least one), scaled down to fit ``max_pixels`` or up to reach ``min_pixels``
    with the aspect kept (sides floored, respectively ceiled, to the multiple).

    The rule of ``qwen_vl_utils.vision_process.smart_resize``, argument for argument and to the
    pixel (``tests/test_boxes.py`` compares them); here because importing qwen-vl-utils imports
    torch and torchvision, 2.5 s that every ``vptracker prepare`` process paid for arithmetic.
    """
    max_pixels = 16384 * factor ** 2 if max_pixels is None else max_pixels
    min_pixels = 4 * factor ** 2 if min_pixels is None else min_pixels
    if max_pixels < min_pixels:
        raise ValueError(f"max_pixels {max_pixels} is below min_pixels {min_pixels}")
    if max(height, width) / min(height, width) > _MAX_ASPECT:
        raise ValueError(f"absolute aspect ratio must be smaller than {_MAX_ASPECT}, "
                         f"got {max(height, width) / min(height, width)}")
    h = max(factor, round(height / factor) * factor)   # round(): Python's, halves to even, as theirs
    w = max(factor, round(width / factor) * factor)
    if h * w > max_pixels:
        shrink = math.sqrt(height * width / max_pixels)
        h, w = math.floor(height / shrink / factor) * factor, math.floor(width / shrink / factor) * factor
    elif h * w < min_pixels:
        grow = math.sqrt(min_pixels / (height * width))
        h, w = math.ceil(height * grow / factor) * factor, math.ceil(width * grow / factor) * factor
    return h, w


@dataclass(frozen=True)
class CoordMap:
    """Maps frame boxes to a model's coordinate scale and back, for one image size."""

    scale: str
    width: int
    height: int
    resized_width: int | None = None
    resized_height: int | None = None

    def __post_init__(self):
        if self.scale not in SCALES:
            raise ValueError(f"unknown box scale {self.scale!r}; expected one of {SCALES}")
        if self.scale == "resized" and not (self.resized_width and self.resized_height):
            raise ValueError("scale 'resized' needs resized_width and resized_height")

    def _factors(self) -> tuple[float, float]:
        if self.scale == "abs":
            return 1.0, 1.0
        if self.scale == "resized":
            return self.resized_width / self.width, self.resized_height / self.height
        unit = 1.0 if self.scale == "norm1" else 1000.0
        return unit / self.width, unit / self.height

    def to_model(self, frame_box: Sequence[float]) -> Box:
        fx, fy = self._factors()
        x1, y1, x2, y2 = frame_box
        return (x1 * fx, y1 * fy, x2 * fx, y2 * fy)

    def to_frame(self, model_box: Sequence[float]) -> Box:
        fx, fy = self._factors()
        x1, y1, x2, y2 = model_box
        return (x1 / fx, y1 / fy, x2 / fx, y2 / fy)

    @property
    def decimals(self) -> int:
        """Digits after the point when rendering in this scale (0-1 needs three)."""
        return 3 if self.scale == "norm1" else 0

