"""Coordinate scales and resize maps: how a frame box is written for a model and read back.

Part of :mod:`vptracker.boxes` (import from there). The scales are ``abs``, ``resized``, ``norm1``
and ``norm1000``; :func:`smart_resize` is the model-input size of a family that resizes to a pixel
multiple, and :class:`CoordMap` converts frame boxes to a scale and back.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from vptracker.boxes.geometry import Box

SCALES = ("abs", "resized", "norm1", "norm1000")
DEFAULT_MIN_PIXELS = 4 * 28 * 28
DEFAULT_MAX_PIXELS = 16384 * 28 * 28


def smart_resize(width: int, height: int, family: str = "qwen2_5_vl",
                 min_pixels: int = DEFAULT_MIN_PIXELS, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """The model-input size ``(width, height)`` the family's processor produces for a frame.

    Only families with a pixel-multiple resize rule (the Qwen-VL ones, :mod:`vptracker.models.families`)
    have one; InternVL2.5 tiles and LLaVA-NeXT's any-resolution grid are refused here.
    """
    from qwen_vl_utils.vision_process import smart_resize as qwen_smart_resize

    from vptracker.models.families import get_family

    factor = get_family(family).resize_factor
    if factor is None:
        raise ValueError(f"model family {family!r} has no smart_resize rule (its processor tiles the image); "
                         "its boxes are relative to the frame, not to a resized image")
    h, w = qwen_smart_resize(int(height), int(width), factor=factor, min_pixels=min_pixels,
                             max_pixels=max_pixels)
    # qwen-vl-utils can floor a thin side to 0 under max_pixels; the processor would then fail.
    return max(int(w), factor), max(int(h), factor)


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

    @classmethod
    def for_family(cls, family: str, width: int, height: int, scale: str | None = None,
                   min_pixels: int = DEFAULT_MIN_PIXELS, max_pixels: int = DEFAULT_MAX_PIXELS) -> CoordMap:
        """The family's own convention (:mod:`vptracker.models.families`) unless ``scale`` overrides it.

        The resized size is known only for families that resize to a pixel multiple, so ``resized``
        is refused for the others.
        """
        from vptracker.models.families import get_family

        fam = get_family(family)
        if fam.resize_factor is None:
            if scale == "resized":
                raise ValueError(f"box scale 'resized' needs a family that resizes to a pixel multiple "
                                 f"(Qwen-VL); {family!r} tiles the image: use {fam.box_scale}, abs, norm1 or norm1000")
            return cls(scale or fam.box_scale, width, height)
        rw, rh = smart_resize(width, height, family, min_pixels, max_pixels)
        return cls(scale or fam.box_scale, width, height, rw, rh)

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

