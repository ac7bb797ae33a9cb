"""The ms-swift extension that renders our rows' images at load time (``--external_plugins``).

Rows written by ``vptracker prepare`` keep *source frame paths* in ``images`` plus a description of
what to draw, so that a million training pairs do not mean two million image files:

* ``visual_prompt`` (VPTracker rows, see :class:`vptracker.prompts.visual.VisualPrompt`): image 0 is
  cropped to the template region, image 1 gets the coloured outline. The drawing is
  :func:`vptracker.prompts.visual.render`, the same function inference uses.
* ``crops`` (ReID rows): one ``[x1, y1, x2, y2]`` or ``null`` per image; the image is cropped.
* ``max_pixels`` (rows that ``prepare``'s ``length_budget.policy: lower_max_pixels`` fitted, see
  :mod:`vptracker.tasks.lengths`): every image is resized to the family's size under that many
  pixels before swift's own resize, so the row's token count is the one ``prepare`` counted.

Importing this module registers, for each family marked ``render_plugin`` in
:mod:`vptracker.models.families`, a template ``vptracker_<template>`` (``vptracker_qwen2_vl``,
``vptracker_qwen2_5_vl``, ``vptracker_qwen3_vl``): the family's own
ms-swift template class and meta with the rendering step added before swift's own image loading
and resizing (``max_pixels``), exactly where the released VPTracker fork drew it. Use::

    swift sft --external_plugins vptracker/models/swift_plugin.py --template vptracker_qwen3_vl \\
        --remove_unused_columns false --dataset data/train-*.jsonl ...

``--remove_unused_columns false`` keeps the ``visual_prompt`` / ``crops`` columns until the
template sees them (swift's GRPO sets it itself); the template removes them from the row before
the batch is built, so the model never receives them.

The templates also take the image and video token ids from the model's tokenizer where swift's
Qwen templates hard-code Qwen's (151655 / 151656): the same numbers for every released Qwen-VL
checkpoint, and the right ones for the compact-vocabulary tiny models of the CPU demo.
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

# Loaded by swift as a file path: make the package importable from a source checkout.
_REPO = Path(__file__).resolve().parents[2]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from vptracker.models.families import FAMILIES, smart_resize
from vptracker.prompts.visual import VisualPrompt, render

TEMPLATE_PREFIX = "vptracker_"


def render_row_images(images: list, visual_prompt: dict | None, crops: list | None, load,
                      max_pixels: int | None = None, family: str = "qwen2_5_vl") -> list:
    """The model images of one row: ``load(image)`` gives a PIL image for a path / swift image entry."""
    images = list(images)
    if visual_prompt:
        if len(images) != 2:
            raise ValueError(f"a row with a visual_prompt needs 2 images (template, search), got {len(images)}")
        prompt = VisualPrompt.from_json(visual_prompt)
        images = list(render(load(images[0]), load(images[1]), prompt))
    if crops:
        if len(crops) != len(images):
            raise ValueError(f"a row's crops must list one region or null per image: {len(crops)} for {len(images)}")
        for i, region in enumerate(crops):
            if region is not None:
                images[i] = load(images[i]).convert("RGB").crop(tuple(round(v) for v in region))
    if max_pixels:

        for i, image in enumerate(images):
            image = (image if hasattr(image, "resize") else load(image)).convert("RGB")
            size = smart_resize(*image.size, family, max_pixels=int(max_pixels))
            images[i] = image if image.size == size else image.resize(size)
    return images


def _with_rendering(base_cls: type, family: str) -> type:
    class VisualPromptTemplate(base_cls):
        """``{base}`` that renders the row's visual prompt / crops before swift loads the images."""

        def _preprocess_inputs(self, inputs):
            extra = inputs.extra_kwargs
            visual_prompt = extra.pop("visual_prompt", None)
            crops = extra.pop("crops", None)
            max_pixels = extra.pop("max_pixels", None)
            if (visual_prompt or crops or max_pixels) and inputs.images:
                inputs.images = render_row_images(inputs.images, visual_prompt, crops,
                                                  lambda image: self._load_image(image, True), max_pixels,
                                                  family)
            return super()._preprocess_inputs(inputs)

        def init_processor(self, processor) -> None:
            super().init_processor(processor)
            tokenizer = getattr(self, "tokenizer", None)
            for attr, token in FAMILIES[family].media_tokens.items():
                if tokenizer is not None and isinstance(getattr(type(self), attr, None), int):
                    token_id = tokenizer.convert_tokens_to_ids(token)
                    if isinstance(token_id, int) and token_id != tokenizer.unk_token_id:
                        setattr(self, attr, token_id)

    VisualPromptTemplate.__name__ = f"VPTracker{base_cls.__name__}"
    VisualPromptTemplate.__doc__ = VisualPromptTemplate.__doc__.format(base=base_cls.__name__)
    return VisualPromptTemplate


def register_templates() -> list[str]:
    """Registers ``vptracker_<template>`` for the rendering families' templates swift knows; returns their names."""
    from swift.template import TEMPLATE_MAPPING, register_template

    names = []
    for family in FAMILIES.values():
        for template in family.templates if family.render_plugin else ():
            name = TEMPLATE_PREFIX + template
            if template not in TEMPLATE_MAPPING:
                continue
            if name not in TEMPLATE_MAPPING:
                meta = TEMPLATE_MAPPING[template]
                register_template(dataclasses.replace(
                    meta, template_type=name, template_cls=_with_rendering(meta.template_cls, family.name)))
            names.append(name)
    return names


TEMPLATES = register_templates()
