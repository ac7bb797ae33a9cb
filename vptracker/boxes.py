"""The one box grammar: formats, coordinate scales, resize maps, answer renderers and parsers, IoU.

Every coordinate that enters or leaves a model passes through this module. Conventions:

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
"""
from __future__ import annotations

import enum
import json
import math
import re
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

Box = tuple[float, float, float, float]

SCALES = ("abs", "resized", "norm1", "norm1000")
# Box grammars an OmniPT answer (or a prompt's box reference) can be rendered in: OmniPT's own
# <bbox>x,y,w,h</bbox>, or Qwen's native grounding tokens (what the base model was pre-trained on).
GRAMMARS = ("bbox", "qwen")
DEFAULT_MIN_PIXELS = 4 * 28 * 28
DEFAULT_MAX_PIXELS = 16384 * 28 * 28


# --------------------------------------------------------------------------- conversions

def xywh_to_xyxy(box: Sequence[float]) -> Box:
    x, y, w, h = (float(v) for v in box)
    return (x, y, x + w, y + h)


def xyxy_to_xywh(box: Sequence[float]) -> Box:
    x1, y1, x2, y2 = (float(v) for v in box)
    return (x1, y1, x2 - x1, y2 - y1)


def clip_xyxy(box: Sequence[float], width: float, height: float) -> Box:
    x1, y1, x2, y2 = (float(v) for v in box)
    return (min(max(x1, 0.0), width), min(max(y1, 0.0), height),
            min(max(x2, 0.0), width), min(max(y2, 0.0), height))


def is_valid_xyxy(box: Sequence[float] | None, width: float | None = None,
                  height: float | None = None) -> bool:
    """Finite, not inverted, non-empty and, when the image size is given, overlapping the image."""
    if box is None or len(box) != 4:
        return False
    x1, y1, x2, y2 = box
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)) or x2 <= x1 or y2 <= y1:
        return False
    if width is not None and height is not None:
        return x2 > 0 and y2 > 0 and x1 < width and y1 < height
    return True


def smart_resize(width: int, height: int, family: str = "qwen2_5_vl",
                 min_pixels: int = DEFAULT_MIN_PIXELS, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """The model-input size ``(width, height)`` the family's processor produces for a frame.

    Only families with a pixel-multiple resize rule (the Qwen-VL ones, :mod:`vptracker.families`)
    have one; InternVL2.5 tiles and LLaVA-NeXT's any-resolution grid are refused here.
    """
    from qwen_vl_utils.vision_process import smart_resize as qwen_smart_resize

    from vptracker.families import get_family

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
                   min_pixels: int = DEFAULT_MIN_PIXELS, max_pixels: int = DEFAULT_MAX_PIXELS) -> "CoordMap":
        """The family's own convention (:mod:`vptracker.families`) unless ``scale`` overrides it.

        The resized size is known only for families that resize to a pixel multiple, so ``resized``
        is refused for the others.
        """
        from vptracker.families import get_family

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


# --------------------------------------------------------------------------- IoU

def iou_xyxy(a: Sequence[float], b: Sequence[float]) -> float:
    """Continuous IoU of two ``x1,y1,x2,y2`` boxes; 0 for empty or invalid boxes."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def iou_xywh(a: Sequence[float], b: Sequence[float]) -> float:
    return iou_xyxy(xywh_to_xyxy(a), xywh_to_xyxy(b))


def iou_xywh_arrays(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise IoU of two ``(N, 4)`` x,y,w,h arrays (continuous, the toolkits' ``+1`` reading)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    iw = np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2]) - np.maximum(a[:, 0], b[:, 0])
    ih = np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3]) - np.maximum(a[:, 1], b[:, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    union = a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(union > 0, inter / union, 0.0)
    return out


# --------------------------------------------------------------------------- rendering

def _num(v: float, decimals: int) -> str:
    if decimals == 0:
        return str(int(round(v)))
    return f"{v:.{decimals}f}"


def render_bbox(model_xyxy: Sequence[float], decimals: int = 0) -> str:
    """OmniPT ``<bbox>x,y,w,h</bbox>`` from a box already in model scale (x1,y1,x2,y2).

    Corners are rounded first and w, h derived from them, so ``x + w`` is the rounded ``x2``.
    """
    x1, y1, x2, y2 = (round(float(v), decimals) for v in model_xyxy)
    vals = (x1, y1, x2 - x1, y2 - y1)
    return _bbox_token(_num(v, decimals) for v in vals)


def _bbox_token(values: Iterable[str]) -> str:
    """The one place ``<bbox>`` is written: x,y,w,h already formatted as text."""
    return "<bbox>" + ",".join(values) + "</bbox>"


NONE_TOKEN = "<None>"


def check_grammar(grammar: str) -> str:
    if grammar not in GRAMMARS:
        raise ValueError(f"unknown box grammar {grammar!r}; expected one of {GRAMMARS}")
    return grammar


def render_box(model_xyxy: Sequence[float], decimals: int = 0, grammar: str = "bbox") -> str:
    """One box in the chosen grammar: ``bbox`` (OmniPT) or ``qwen`` (``<|box_start|>`` corners)."""
    if check_grammar(grammar) == "qwen":
        return render_qwen_box(model_xyxy, decimals)
    return render_bbox(model_xyxy, decimals)


def render_trajectory(boxes: Iterable[Sequence[float] | None], decimals: int = 0,
                      grammar: str = "bbox") -> str:
    """One box or ``<None>`` per image, concatenated (OmniPT SOT / trajectory answer).

    ``<None>`` marks an absent object in every grammar, so trajectories stay one entry per image.
    """
    check_grammar(grammar)  # also when every entry is <None>, so a typo never passes silently
    return "".join(NONE_TOKEN if b is None else render_box(b, decimals, grammar) for b in boxes)


ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
            "tenth")


def ordinal(i: int) -> str:
    return ORDINALS[i] if i < len(ORDINALS) else f"{i + 1}th"


def render_trajectories(trajectories: Sequence[Sequence[Sequence[float] | None]], decimals: int = 0,
                        noun: str = "people", grammar: str = "bbox") -> str:
    """Several trajectories, in the wording of the paper's Fig. 4."""
    check_grammar(grammar)
    parts = [f"the trajectory of the {ordinal(i)} {noun} are: {render_trajectory(t, decimals, grammar)}"
             for i, t in enumerate(trajectories)]
    text = ", ".join(parts)
    return text[:1].upper() + text[1:] if text else NONE_TOKEN


def render_vptracker(model_xyxy: Sequence[float] | None, decimals: int = 0) -> str:
    """VPTracker's fenced JSON answer; ``None`` means the target is not visible."""
    if model_xyxy is None:
        visible, coords = "no", "[0, 0, 0, 0]"
    else:
        visible = "yes"
        coords = "[" + ", ".join(_num(v, decimals) for v in model_xyxy) + "]"
    return f'```json\n{{\n  "visible": "{visible}",\n  "bbox": {coords}\n}}\n```'


def render_vptracker_released(box: Sequence[int] | None, visible: bool, outline_note: bool = True) -> str:
    """The released sampler's answer: the box as Python writes the list (``[12, 34, 56, 78]``).

    With the visual prompt the ``"bbox"`` line has one leading space, without it two, as released
    (``dataset/sampling_dataset.py``); an absent target still carries its annotated box.
    """
    coords = "[" + ", ".join(repr(v) for v in box) + "]"
    pad = " " if outline_note else "  "
    return f'```json\n{{\n  "visible": "{"yes" if visible else "no"}",\n{pad}"bbox": {coords}\n}}\n```'


def render_qwen_box(model_xyxy: Sequence[float], decimals: int = 0) -> str:
    x1, y1, x2, y2 = (_num(v, decimals) for v in model_xyxy)
    return f"<|box_start|>({x1},{y1}),({x2},{y2})<|box_end|>"


def render_list(model_xyxy: Sequence[float], decimals: int = 0) -> str:
    return "[" + ", ".join(_num(v, decimals) for v in model_xyxy) + "]"


# --------------------------------------------------------------------------- parsing

class Form(str, enum.Enum):
    """How a box was written; the format reward scores exact 2, other 0.6, untagged 0.4, else 0."""

    EXACT = "exact"          # <bbox>x,y,w,h</bbox>
    OTHER = "other_form"     # a box in another form: (x1,y1,x2,y2), [..], Qwen box tokens, JSON bbox
    UNTAGGED = "untagged"    # four bare numbers without any enclosing tags or brackets
    NONE = "none"            # the <None> token: the object is not in that image
    NO_BOX = "no_box"


@dataclass(frozen=True)
class ParsedBox:
    """A box found in text, in model scale as ``x1,y1,x2,y2`` (``None`` for ``<None>``/no box)."""

    box: Box | None
    form: Form


_NUM = r"[-+]?(?:\d{1,12}(?:\.\d{0,12})?|\.\d{1,12})"
# Answers are model text of any length, so every pattern must be linear in it: whitespace runs are
# matched possessively (``\s*+``: no backtracking into them), and no two unbounded repeats that
# can match the same characters are adjacent (``\s*[,;\s]\s*`` took 21.5 s on 20,000 spaces).
_SEP = r"(?:\s*+[,;]|\s)\s*+"
_BBOX_EXACT = re.compile(rf"<bbox>\s*+({_NUM})\s*+,\s*+({_NUM})\s*+,\s*+({_NUM})\s*+,\s*+({_NUM})\s*+</bbox>")
_BBOX_ANY = re.compile(r"<bbox>(.{0,200}?)</bbox>", re.S)
_QWEN_BOX = re.compile(rf"<\|box_start\|>\s*+\(\s*+({_NUM})\s*+,\s*+({_NUM})\s*+\)\s*+,?\s*+\(\s*+({_NUM})\s*+,"
                       rf"\s*+({_NUM})\s*+\)\s*+<\|box_end\|>")
_PAIRS = re.compile(rf"\(\s*+({_NUM})\s*+,\s*+({_NUM})\s*+\)\s*+,?\s*+\(\s*+({_NUM})\s*+,\s*+({_NUM})\s*+\)")
_BRACKET4 = re.compile(rf"[\[(]\s*+({_NUM}){_SEP}({_NUM}){_SEP}({_NUM}){_SEP}({_NUM})\s*+[\])]")
_BARE4 = re.compile(rf"(?<![\w.\-+])({_NUM})\s*+,\s*+({_NUM})\s*+,\s*+({_NUM})\s*+,\s*+({_NUM})(?![\w.])")
# One entry per image: an OmniPT box, a Qwen box-token box or the absent marker, in written order.
_BBOX_TOKEN = re.compile(r"<bbox>.{0,200}?</bbox>", re.DOTALL)
_QWEN_TOKEN = re.compile(r"<\|box_start\|>.{0,200}?<\|box_end\|>", re.DOTALL)
_TOKEN = re.compile(rf"{_BBOX_TOKEN.pattern}|{_QWEN_TOKEN.pattern}|<None>", re.DOTALL)
# Pieces of an answer that hold at most one box each, whatever form (parse_slots): the tokens,
# corner pairs, any bracketed run, four bare numbers. parse_box decides what each one means.
_SLOT_NUM = r"[-+]?[\d.]{1,20}"
_SLOT = re.compile(
    rf"{_BBOX_TOKEN.pattern}|<None>|{_QWEN_TOKEN.pattern}"
    rf"|\(\s*+{_SLOT_NUM}\s*+,\s*+{_SLOT_NUM}\s*+\)\s*+,?\s*+\(\s*+{_SLOT_NUM}\s*+,\s*+{_SLOT_NUM}\s*+\)"
    r"|\[[^\[\]]{1,120}\]|\([^()]{1,120}\)"
    rf"|{_SLOT_NUM}\s*+,\s*+{_SLOT_NUM}\s*+,\s*+{_SLOT_NUM}\s*+,\s*+{_SLOT_NUM}", re.DOTALL)
_VISIBLE = re.compile(r"[\"']?visible[\"']?\s*+:\s*+[\"']?\s*+(yes|no|true|false)", re.I)
_JSON_BBOX = re.compile(rf"[\"']?bbox[\"']?\s*+:\s*+\[\s*+({_NUM}){_SEP}({_NUM}){_SEP}({_NUM}){_SEP}({_NUM})\s*+\]",
                        re.I)


def _floats(match: re.Match) -> Box | None:
    try:
        vals = tuple(float(g) for g in match.groups()[:4])
    except (TypeError, ValueError):
        return None
    return vals if all(math.isfinite(v) for v in vals) else None


def _xywh_to_xyxy_or_none(vals: Box | None) -> Box | None:
    return None if vals is None else xywh_to_xyxy(vals)


def parse_box(text: str) -> ParsedBox:
    """The first box in ``text``, read in the OmniPT grammar (``<bbox>`` holds x,y,w,h).

    Other enclosures are read as corners (x1,y1,x2,y2), bare number quadruples as x,y,w,h.
    """
    if not isinstance(text, str):
        return ParsedBox(None, Form.NO_BOX)
    m = _BBOX_EXACT.search(text)
    if m and (box := _xywh_to_xyxy_or_none(_floats(m))) is not None:
        return ParsedBox(box, Form.EXACT)
    for pattern in (_QWEN_BOX, _PAIRS, _JSON_BBOX, _BRACKET4):
        m = pattern.search(text)
        if m and (box := _floats(m)) is not None:
            return ParsedBox(box, Form.OTHER)
    m = _BBOX_ANY.search(text)  # <bbox> tags holding something other than x,y,w,h
    if m:
        inner = _BARE4.search(m.group(1))
        if inner and (box := _floats(inner)) is not None:
            return ParsedBox(box, Form.OTHER)
    m = _BARE4.search(text)
    if m and (box := _xywh_to_xyxy_or_none(_floats(m))) is not None:
        return ParsedBox(box, Form.UNTAGGED)
    if NONE_TOKEN in text:
        return ParsedBox(None, Form.NONE)
    return ParsedBox(None, Form.NO_BOX)


def parse_trajectory(text: str) -> list[ParsedBox]:
    """Every ``<bbox>``, ``<|box_start|>...<|box_end|>`` and ``<None>`` token in order, one per image.

    Qwen box tokens hold corners and parse as :attr:`Form.OTHER`; malformed tokens parse as NO_BOX.
    """
    if not isinstance(text, str):
        return []
    out = []
    for m in _TOKEN.finditer(text):
        token = m.group(0)
        out.append(ParsedBox(None, Form.NONE) if token == NONE_TOKEN else parse_box(token))
    return out


_TRAJ_HEAD = re.compile(r"trajectory of the [\w-]{1,20} [\w-]{1,20} (?:are|is)\s*:?", re.I)


def parse_trajectories(text: str) -> list[list[ParsedBox]]:
    """Several trajectories ("the trajectory of the first people are: ..."); one if no heading."""
    if not isinstance(text, str):
        return []
    pieces = trajectory_texts(text)
    if not pieces:
        single = parse_trajectory(text)
        return [single] if single else []
    return [parse_trajectory(piece) for piece in pieces]


def trajectory_texts(text: str) -> list[str]:
    """The text after each trajectory heading, up to the next one; ``[]`` without a heading."""
    heads = list(_TRAJ_HEAD.finditer(text))
    bounds = [h.end() for h in heads]
    starts = [h.start() for h in heads[1:]] + [len(text)]
    return [text[bounds[i]:starts[i]] for i in range(len(heads))]


@dataclass(frozen=True)
class VPAnswer:
    """A parsed VPTracker answer; ``visible`` is None when the answer does not say."""

    visible: bool | None
    box: Box | None
    form: Form


def parse_vptracker(text: str) -> VPAnswer:
    """VPTracker's JSON answer (fenced or not, tolerant of spacing and quotes), corners in model scale."""
    if not isinstance(text, str):
        return VPAnswer(None, None, Form.NO_BOX)
    v = _VISIBLE.search(text)
    visible = None if v is None else v.group(1).lower() in ("yes", "true")
    m = _JSON_BBOX.search(text)
    if m and (box := _floats(m)) is not None:
        return VPAnswer(visible, box, Form.EXACT)
    for pattern in (_QWEN_BOX, _PAIRS, _BRACKET4):
        m = pattern.search(text)
        if m and (box := _floats(m)) is not None:
            return VPAnswer(visible, box, Form.OTHER)
    return VPAnswer(visible, None, Form.NO_BOX)


_RELEASED_FENCE = re.compile(r"```json\s*(.*?)\s*```", re.DOTALL)


def parse_vptracker_released(text: str) -> VPAnswer:
    """The released loop's reading of an answer (``infer_tracking_qwen_vlt_crop_absent.py``).

    Only the first ```` ```json ```` fenced block counts, parsed with ``json.loads``; it must be an
    object with both ``visible`` and ``bbox`` keys. ``visible == "no"`` (exactly) is invisible; any
    other value (``"No"``, ``false``, ``"yes"``) counts as visible. ``bbox`` may be a list or a JSON
    string holding one, and must have four numbers. Anything else parses to ``NO_BOX`` (the
    released loop keeps the previous box). Whether the box moves the tracker is
    :func:`released_box_accepted`.
    """
    if not isinstance(text, str):
        return VPAnswer(None, None, Form.NO_BOX)
    m = _RELEASED_FENCE.search(text)
    try:
        answer = json.loads(m.group(1).strip()) if m else None
        visible, box = answer["visible"], answer["bbox"]
    except (TypeError, KeyError, IndexError, ValueError):
        return VPAnswer(None, None, Form.NO_BOX)
    if visible == "no":
        return VPAnswer(False, None, Form.EXACT)
    try:
        if isinstance(box, str):
            box = json.loads(box)
        if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)):
            return VPAnswer(True, None, Form.NO_BOX)
        return VPAnswer(True, tuple(float(v) for v in box), Form.EXACT)
    except OverflowError:  # an integer too large for a float: beyond any image, refused by check_bbox
        return VPAnswer(True, (math.inf,) * 4, Form.EXACT)
    except ValueError:
        return VPAnswer(True, None, Form.NO_BOX)


def released_box_accepted(box: Sequence[float] | None, width: float, height: float) -> bool:
    """The released ``check_bbox``: no negative value, not inverted, no corner beyond the image.

    Zero-size boxes and boxes touching ``x = W`` pass; a box partly outside the image does not.
    Non-finite values are refused here (the released code accepts NaN, then fails on the next
    frame's outline).
    """
    if box is None or len(box) != 4 or not all(math.isfinite(v) for v in box):
        return False
    x1, y1, x2, y2 = box
    return (min(box) >= 0 and x2 >= x1 and y2 >= y1
            and x1 <= width and x2 <= width and y1 <= height and y2 <= height)


def parse_qwen_boxes(text: str) -> list[Box]:
    """All ``<|box_start|>(x1,y1),(x2,y2)<|box_end|>`` boxes, in model scale."""
    if not isinstance(text, str):
        return []
    return [b for m in _QWEN_BOX.finditer(text) if (b := _floats(m)) is not None]


def parse_list(text: str) -> Box | None:
    """The first ``[x1, y1, x2, y2]`` list."""
    if not isinstance(text, str):
        return None
    m = _BRACKET4.search(text)
    return _floats(m) if m else None


# --------------------------------------------------------------------------- answers read as slots

def parse_slots(text: str) -> list[ParsedBox]:
    """Every box or ``<None>`` in ``text``, in written order, whatever form each is written in
    (the rewards' reading: a corner pair or a bare quadruple is a slot too, not only tokens)."""
    if not isinstance(text, str):
        return []
    slots = [parse_box(m.group(0)) for m in _SLOT.finditer(text)]
    return [s for s in slots if s.form != Form.NO_BOX]


def strip_trajectory_tokens(text: str) -> str:
    """``text`` without its ``<bbox>``, Qwen box-token and ``<None>`` tokens (what else was said)."""
    return _TOKEN.sub("", text)


def has_qwen_token(text: str) -> bool:
    """Whether ``text`` holds a Qwen ``<|box_start|>...<|box_end|>`` token, well formed or not."""
    return _QWEN_TOKEN.search(text) is not None


def swap_bbox_and_qwen(text: str) -> str:
    """Rewrites ``text`` so that Qwen's grammar reads as the exact form and OmniPT's as another.

    Well-formed Qwen tokens become ``<bbox>x,y,w,h</bbox>``, exact ``<bbox>`` tokens become corner
    pairs ``(x1,y1),(x2,y2)``; values are written unrounded (``repr``) so no IoU changes. Malformed
    tokens are left as they are. The rewards score a Qwen-grammar solution through this.
    """
    def bbox_to_pairs(m: re.Match) -> str:
        parsed = parse_box(m.group(0))
        if parsed.form != Form.EXACT:
            return m.group(0)
        x1, y1, x2, y2 = parsed.box
        return f"({x1!r},{y1!r}),({x2!r},{y2!r})"

    def qwen_to_bbox(m: re.Match) -> str:
        boxes = parse_qwen_boxes(m.group(0))
        if not boxes:
            return m.group(0)
        x1, y1, x2, y2 = boxes[0]
        return _bbox_token(repr(v) for v in (x1, y1, x2 - x1, y2 - y1))

    return _QWEN_TOKEN.sub(qwen_to_bbox, _BBOX_TOKEN.sub(bbox_to_pairs, text))


# --------------------------------------------------------------------------- box arrays

def xywh_in_image(boxes: np.ndarray, width: float, height: float) -> np.ndarray:
    """Per box (the last axis is x,y,w,h): non-empty and overlapping the ``width`` x ``height``
    image, i.e. something is left after :func:`clip_xyxy`. A ``(4,)`` box gives one bool."""
    b = np.asarray(boxes)
    x, y, w, h = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    return (w > 0) & (h > 0) & (x < width) & (y < height) & (x + w > 0) & (y + h > 0)


def _pairwise_iou(a: tuple, b: tuple) -> np.ndarray:
    """IoU of every ``a`` box with every ``b`` box from corner and area columns ``(x1, y1, x2, y2,
    area)``; 0 where the boxes do not overlap or the union is empty."""
    ax1, ay1, ax2, ay2, a_area = (v[:, None] for v in a)
    bx1, by1, bx2, by2, b_area = (v[None, :] for v in b)
    iw = np.clip(np.minimum(ax2, bx2) - np.maximum(ax1, bx1), 0, None)
    ih = np.clip(np.minimum(ay2, by2) - np.maximum(ay1, by1), 0, None)
    inter = iw * ih
    union = a_area + b_area - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def iou_xywh_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(N, M)`` IoU of ``(N, 4)`` and ``(M, 4)`` x,y,w,h arrays (areas ``w * h``, as TrackEval's
    ``_calculate_box_ious``)."""
    return _pairwise_iou(_xywh_columns(a), _xywh_columns(b))


def iou_xyxy_matrix(a: Iterable[Sequence[float]], b: Iterable[Sequence[float]]) -> np.ndarray:
    """``(N, M)`` IoU of two lists of ``x1,y1,x2,y2`` boxes; entry ``[i, j]`` equals
    ``iou_xyxy(a[i], b[j])``."""
    return _pairwise_iou(_xyxy_columns(a), _xyxy_columns(b))


def _xywh_columns(boxes) -> tuple:
    m = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return m[:, 0], m[:, 1], m[:, 0] + m[:, 2], m[:, 1] + m[:, 3], m[:, 2] * m[:, 3]


def _xyxy_columns(boxes) -> tuple:
    m = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return m[:, 0], m[:, 1], m[:, 2], m[:, 3], (m[:, 2] - m[:, 0]) * (m[:, 3] - m[:, 1])
