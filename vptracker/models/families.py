"""The model families: one registered record each, the only place a family's facts live.

A family is what decides how boxes are written for a model and how swift loads it: the box
convention it was pre-trained on, the resize rule its processor applies to an image (only the
Qwen-VL families resize to a pixel multiple; InternVL2.5 tiles 448-pixel crops and LLaVA-NeXT
picks an any-resolution grid, so a box written relative to the image is independent of both), the
ms-swift model type and template for each ``model_type`` a checkpoint's ``config.json`` can carry,
its grounding and media tokens, the LoRA targets of its presets and whether the CLIP-style phase
(:mod:`vptracker.train.clip`) can train it.

Box conventions, from each family's own grounding data:

* Qwen2-VL and Qwen3-VL: 0-1000 relative coordinates (``norm1000``).
* Qwen2.5-VL: absolute pixels of the resized image (``resized``), patch 14 x merge 2.
* InternVL2.5: ``<box>[[x1, y1, x2, y2]]</box>`` on a 0-1000 grid (``norm1000``).
* LLaVA-NeXT: 0-1 fractions of the image (``norm1``), as LLaVA-1.5's grounding data.

InternVL2.5 is published as remote code (``model_type: internvl_chat``, swift's ``internvl_chat`` /
``internvl2_5``); the same weights converted to transformers' native classes say ``internvl``
(swift's ``internvl`` / ``internvl_hf``). Both map to the one family.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vptracker.boxes import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS, SCALES, CoordMap
from vptracker.boxes import smart_resize as qwen_resize  # (height, width) order; this module's is (width, height)
from vptracker.models.folder import ModelDirError, check_model_dir
from vptracker.registry import Registry


@dataclass(frozen=True)
class Family:
    name: str
    box_scale: str                  # the convention the base model was pre-trained on
    # config.json model_type -> (ms-swift model_type, ms-swift template); the first is the preset's
    swift: dict[str, tuple[str, str]]
    patch_size: int | None = None   # the Qwen-VL resize rule: sides are multiples of patch x merge
    merge_size: int | None = None
    # the tiling families instead: tiles of tile_size pixels, tile_tokens each, at most max_tiles
    tiling: str | None = None       # "internvl" (dynamic_preprocess + thumbnail) | "anyres" (LLaVA-NeXT)
    tile_size: int = 0
    tile_tokens: int = 0
    max_tiles: int = 0
    box_tokens: tuple[str, ...] = ()      # the base model's own grounding tokens, if any
    # swift template attribute -> token whose id the vptracker_<template> wrapper reads from the tokenizer
    media_tokens: dict[str, str] = field(default_factory=dict)
    lora_targets: str = "all-linear"
    clip_phase: bool = False        # vptracker/train/clip.py reads the Qwen-VL vision tower and merger
    render_plugin: bool = False     # vptracker/models/swift_plugin.py wraps its template as vptracker_<template>

    def __post_init__(self):
        if self.box_scale not in SCALES:
            raise ValueError(f"family {self.name}: box_scale {self.box_scale!r}, expected one of {SCALES}")
        if not self.swift:
            raise ValueError(f"family {self.name}: needs at least one config model_type")

    @property
    def resize_factor(self) -> int | None:
        """The pixel multiple of the processor's resize (``smart_resize``), None if it does not resize so."""
        return self.patch_size * self.merge_size if self.patch_size and self.merge_size else None

    def image_tokens(self, width: int, height: int, max_pixels: int) -> int:
        """Vision tokens of one ``width x height`` image (``max_pixels`` bounds only the Qwen-VL resize)."""
        if self.resize_factor:
            w, h = smart_resize(width, height, self.name, max_pixels=max_pixels)
            return (w // self.resize_factor) * (h // self.resize_factor) + 2   # + <|vision_start|>, <|vision_end|>
        if self.tiling == "internvl":
            return self.tile_tokens * _internvl_tiles(width, height, self.tile_size, self.max_tiles) + 2  # <img></img>
        # LLaVA-NeXT: the base image plus at most max_tiles grid tiles and a newline per feature row;
        # the unpadding of the grid can only remove tokens, so this errs high, as the text estimate does
        side = int(self.tile_tokens ** 0.5)
        return self.tile_tokens * (1 + self.max_tiles) + 2 * side

    @property
    def templates(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t for _, t in self.swift.values()))

    def swift_names(self, config_model_type: str | None = None) -> tuple[str, str]:
        """ms-swift's ``(model_type, template)`` for a checkpoint whose config.json says ``config_model_type``."""
        if config_model_type in self.swift:
            return self.swift[config_model_type]
        return next(iter(self.swift.values()))


def _internvl_tiles(width: int, height: int, size: int, max_num: int) -> int:
    """Tiles InternVL's ``dynamic_preprocess`` cuts (the grid closest in aspect ratio), plus the thumbnail."""
    grids = sorted({(i, j) for n in range(1, max_num + 1) for i in range(1, n + 1) for j in range(1, n + 1)
                    if i * j <= max_num}, key=lambda g: g[0] * g[1])
    aspect, best, best_diff = width / height, (1, 1), float("inf")
    for i, j in grids:
        diff = abs(aspect - i / j)
        if diff < best_diff:
            best, best_diff = (i, j), diff
        elif diff == best_diff and width * height > 0.5 * size * size * i * j:
            best = (i, j)
    blocks = best[0] * best[1]
    return blocks + 1 if blocks > 1 else blocks


FAMILIES: Registry[Family] = Registry("model family")
_BY_MODEL_TYPE: dict[str, str] = {}


def register_family(family: Family) -> Family:
    """Adds a family; a name or config model_type already registered is an error, not an overwrite."""
    if family.name in FAMILIES:
        raise ValueError(f"model family {family.name!r} is already registered")
    taken = [t for t in family.swift if t in _BY_MODEL_TYPE]
    if taken:
        raise ValueError(f"model family {family.name!r}: config model_type {taken[0]!r} already belongs to "
                         f"family {_BY_MODEL_TYPE[taken[0]]!r}")
    FAMILIES.add(family.name, family)
    _BY_MODEL_TYPE.update({t: family.name for t in family.swift})
    return family


def get_family(name: str) -> Family:
    return FAMILIES.get(name)


def family_names(**where) -> tuple[str, ...]:
    """Registered names, optionally only those whose attributes equal ``where`` (e.g. ``clip_phase=True``)."""
    return tuple(n for n, f in FAMILIES.items() if all(getattr(f, k) == v for k, v in where.items()))


def family_of_model_type(model_type: str, where: str = "config.json") -> str:
    """The family whose checkpoints carry ``model_type`` in config.json."""
    if model_type not in _BY_MODEL_TYPE:
        raise ValueError(f"{where}: model_type {model_type!r} is not a supported family (known model types: "
                         f"{', '.join(sorted(_BY_MODEL_TYPE))}); pass family explicitly")
    return _BY_MODEL_TYPE[model_type]


def detect_family(model_dir: str | Path, trust_remote_code: bool = False) -> str:
    """The family of a model folder, from its config.json's ``model_type`` (read as data, no code run)."""
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        raise ModelDirError(f"{path}: expected a model directory with config.json; pass --family "
                            "for a model that is not on disk")
    return family_of_model_type(check_model_dir(model_dir, trust_remote_code).get("model_type", ""), str(path))


QWEN_BOX_TOKENS = ("<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>", "<|box_end|>")
QWEN_MEDIA_TOKENS = {"image_token_id": "<|image_pad|>", "video_token_id": "<|video_pad|>"}

for _family in (
    Family("qwen2_vl", "norm1000", {"qwen2_vl": ("qwen2_vl", "qwen2_vl")}, patch_size=14, merge_size=2,
           box_tokens=QWEN_BOX_TOKENS, media_tokens=QWEN_MEDIA_TOKENS, clip_phase=True, render_plugin=True),
    Family("qwen2_5_vl", "resized", {"qwen2_5_vl": ("qwen2_5_vl", "qwen2_5_vl")}, patch_size=14, merge_size=2,
           box_tokens=QWEN_BOX_TOKENS, media_tokens=QWEN_MEDIA_TOKENS, clip_phase=True, render_plugin=True),
    Family("qwen3_vl", "norm1000", {"qwen3_vl": ("qwen3_vl", "qwen3_vl")}, patch_size=16, merge_size=2,
           box_tokens=QWEN_BOX_TOKENS, media_tokens=QWEN_MEDIA_TOKENS, clip_phase=True, render_plugin=True),
    Family("internvl2_5", "norm1000", {"internvl_chat": ("internvl_chat", "internvl2_5"),
                                       "internvl": ("internvl", "internvl_hf")},
           box_tokens=("<ref>", "</ref>", "<box>", "</box>"),
           # configs/models/internvl2_5_4b.config.json: 448-pixel tiles, 1024 patches / 4 (pixel shuffle)
           tiling="internvl", tile_size=448, tile_tokens=256, max_tiles=12),
    # configs/models/llava_next_8b.config.json: 336-pixel CLIP tiles of 24x24 patches, grids up to 2x2
    Family("llava_next", "norm1", {"llava_next": ("llama3_llava_next_hf", "llama3_llava_next_hf")},
           tiling="anyres", tile_size=336, tile_tokens=576, max_tiles=4),
):
    register_family(_family)


def smart_resize(width: int, height: int, family: str = "qwen2_5_vl",
                 min_pixels: int = DEFAULT_MIN_PIXELS, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """The model-input size ``(width, height)`` the family's processor produces for a frame.

    Only families with a pixel-multiple resize rule (the Qwen-VL ones) have one; InternVL2.5 tiles
    and LLaVA-NeXT's any-resolution grid are refused here.
    """
    factor = get_family(family).resize_factor
    if factor is None:
        raise ValueError(f"model family {family!r} has no smart_resize rule (its processor tiles the image); "
                         "its boxes are relative to the frame, not to a resized image")
    h, w = qwen_resize(int(height), int(width), factor=factor, min_pixels=min_pixels, max_pixels=max_pixels)
    # the rule can floor a thin side to 0 under max_pixels; the processor would then fail.
    return max(int(w), factor), max(int(h), factor)


def coord_map(family: str, width: int, height: int, scale: str | None = None,
              min_pixels: int = DEFAULT_MIN_PIXELS, max_pixels: int = DEFAULT_MAX_PIXELS) -> CoordMap:
    """The family's own convention unless ``scale`` overrides it, for a ``width x height`` frame.

    The resized size is known only for families that resize to a pixel multiple, so ``resized``
    is refused for the others.
    """
    fam = get_family(family)
    if fam.resize_factor is None:
        if scale == "resized":
            raise ValueError(f"box scale 'resized' needs a family that resizes to a pixel multiple "
                             f"(Qwen-VL); {family!r} tiles the image: use {fam.box_scale}, abs, norm1 or norm1000")
        return CoordMap(scale or fam.box_scale, width, height)
    rw, rh = smart_resize(width, height, family, min_pixels, max_pixels)
    return CoordMap(scale or fam.box_scale, width, height, rw, rh)
