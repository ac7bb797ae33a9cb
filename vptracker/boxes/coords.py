"""Coordinate scales and resize maps: how a frame box is written for a model and read back.

Part of :mod:`vptracker.boxes` (import from there). The scales are ``abs``, ``resized``, ``norm1``
and ``norm1000``; :class:`CoordMap` converts frame boxes to a scale and back. Which scale and
resized size a model family uses is the family's (:func:`vptracker.models.families.coord_map`).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from vptracker.boxes.geometry import Box

SCALES = ("abs", "resized", "norm1", "norm1000")
DEFAULT_MIN_PIXELS = 4 * 28 * 28
DEFAULT_MAX_PIXELS = 16384 * 28 * 28


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

