"""Answer parsers: every grammar :mod:`vptracker.boxes.render` writes, and the other forms a model
may answer in, read back to model-scale corners with the :class:`Form` they were written in.

Part of :mod:`vptracker.boxes` (import from there). Parsers never raise: they return what they
found and in which :class:`Form` it was written, which is what the GRPO format reward needs.
"""
from __future__ import annotations

import enum
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from vptracker.boxes.geometry import Box, xywh_to_xyxy
from vptracker.boxes.render import NONE_TOKEN, _bbox_token


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
_BBOX_ANY = re.compile(r"<bbox>(.{0,200}?)</bbox>", re.DOTALL)
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
_VISIBLE = re.compile(r"[\"']?visible[\"']?\s*+:\s*+[\"']?\s*+(yes|no|true|false)", re.IGNORECASE)
_JSON_BBOX = re.compile(rf"[\"']?bbox[\"']?\s*+:\s*+\[\s*+({_NUM}){_SEP}({_NUM}){_SEP}({_NUM}){_SEP}({_NUM})\s*+\]",
                        re.IGNORECASE)


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


_TRAJ_HEAD = re.compile(r"trajectory of the [\w-]{1,20} [\w-]{1,20} (?:are|is)\s*:?", re.IGNORECASE)


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

