"""The one box grammar: formats, coordinate scales, resize maps, answer renderers and parsers, IoU.

Every coordinate that enters or leaves a model passes through this package; import every name from
``vptracker.boxes``. Conventions:

* A *frame box* is ``(x1, y1, x2, y2)`` in absolute pixels of the original frame (continuous
  coordinates, ``x2 = x + w``). Dataset files hold ``x, y, w, h``; use :func:`xywh_to_xyxy`.
* A *scale* says how a box is written for a model: ``abs`` (original-frame pixels), ``resized``
  (pixels of the model-resized image, Qwen2.5-VL's pre-training convention), ``norm1`` (0-1) and
  ``norm1000`` (0-1000, Qwen2-VL / Qwen3-VL). :class:`CoordMap` converts both ways.
* Answer grammars: OmniPT ``<bbox>x,y,w,h</bbox>`` / ``<None>`` (single boxes, trajectories,
  several trajectories), VPTracker fenced JSON with ``visible``, Qwen
  ``<|box_start|>(x1,y1),(x2,y2)<|box_end|>`` and the plain ``[x1, y1, x2, y2]`` list.

Parsers never raise: they return what they found and in which :class:`Form` it was written, which
is what the GRPO format reward needs.

One module per idea, each rule in exactly one of them: :mod:`~vptracker.boxes.geometry` (box type,
conversions, clipping, validity, IoU), :mod:`~vptracker.boxes.coords` (scales,
``CoordMap``), :mod:`~vptracker.boxes.render` (answer text from boxes) and
:mod:`~vptracker.boxes.parse` (boxes from answer text).
"""
from vptracker.boxes.coords import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS, SCALES, CoordMap, smart_resize
from vptracker.boxes.geometry import (
    Box,
    clip_xyxy,
    iou_xywh,
    iou_xywh_arrays,
    iou_xywh_matrix,
    iou_xyxy,
    iou_xyxy_matrix,
    is_valid_xyxy,
    xywh_in_image,
    xywh_to_xyxy,
    xyxy_to_xywh,
)
from vptracker.boxes.parse import (
    Form,
    ParsedBox,
    VPAnswer,
    has_qwen_token,
    parse_box,
    parse_list,
    parse_qwen_boxes,
    parse_slots,
    parse_trajectories,
    parse_trajectory,
    parse_vptracker,
    parse_vptracker_released,
    released_box_accepted,
    strip_trajectory_tokens,
    swap_bbox_and_qwen,
    trajectory_texts,
)
from vptracker.boxes.render import (
    GRAMMARS,
    NONE_TOKEN,
    ORDINALS,
    check_grammar,
    join_trajectories,
    ordinal,
    render_bbox,
    render_box,
    render_list,
    render_qwen_box,
    render_trajectories,
    render_trajectory,
    render_trajectory_array,
    render_vptracker,
    render_vptracker_released,
)

# every public name of the four modules, so that ``from vptracker.boxes import X`` is the one way in
__all__ = [
    "DEFAULT_MAX_PIXELS", "DEFAULT_MIN_PIXELS", "GRAMMARS", "NONE_TOKEN", "ORDINALS", "SCALES",
    "Box", "CoordMap", "Form", "ParsedBox", "VPAnswer", "check_grammar", "clip_xyxy",
    "has_qwen_token", "iou_xywh", "iou_xywh_arrays", "iou_xywh_matrix", "iou_xyxy",
    "iou_xyxy_matrix", "is_valid_xyxy", "join_trajectories", "ordinal", "parse_box", "parse_list", "parse_qwen_boxes",
    "parse_slots", "parse_trajectories", "parse_trajectory", "parse_vptracker",
    "parse_vptracker_released", "released_box_accepted", "render_bbox", "render_box", "render_list",
    "render_qwen_box", "render_trajectories", "render_trajectory", "render_trajectory_array", "render_vptracker",
    "render_vptracker_released", "smart_resize", "strip_trajectory_tokens", "swap_bbox_and_qwen",
    "trajectory_texts", "xywh_in_image", "xywh_to_xyxy", "xyxy_to_xywh",
]
