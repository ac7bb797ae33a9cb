"""The box grammar: round trips for every (grammar, scale, family, resize), forms, IoU, fuzzing."""
from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vptracker import boxes as B
from vptracker.models.families import FAMILIES, coord_map, get_family, smart_resize


@st.composite
def frame_and_box(draw):
    width = draw(st.integers(16, 4000))
    height = draw(st.integers(max(16, width // 20), min(4000, width * 20)))
    x1 = draw(st.floats(0, width - 2, allow_nan=False))
    y1 = draw(st.floats(0, height - 2, allow_nan=False))
    x2 = draw(st.floats(x1 + 1, width, allow_nan=False))
    y2 = draw(st.floats(y1 + 1, height, allow_nan=False))
    return width, height, (x1, y1, x2, y2)


def _coord_map(family, scale, width, height, max_pixels):
    return coord_map(family, width, height, scale=scale, max_pixels=max_pixels)


def _tolerance(cmap: B.CoordMap) -> tuple[float, float]:
    """Largest frame-pixel error the rendering's rounding can cause, per axis."""
    unit = 0.5 * 10 ** (-cmap.decimals)
    fx, fy = cmap._factors()
    return unit / fx + 1e-6, unit / fy + 1e-6


def _close(a, b, tol):
    tx, ty = tol
    return all(abs(p - q) <= (tx if i % 2 == 0 else ty) for i, (p, q) in enumerate(zip(a, b)))


GRAMMARS = {
    # name: (render model-scale xyxy -> text, parse text -> model-scale xyxy)
    "bbox": (lambda b, d: B.render_bbox(b, d), lambda t: B.parse_box(t).box),
    "vptracker": (lambda b, d: B.render_vptracker(b, d), lambda t: B.parse_vptracker(t).box),
    "qwen": (lambda b, d: B.render_qwen_box(b, d), lambda t: B.parse_qwen_boxes(t)[0]),
    "list": (lambda b, d: B.render_list(b, d), lambda t: B.parse_list(t)),
}


@pytest.mark.parametrize("grammar", sorted(GRAMMARS))
@pytest.mark.parametrize("scale", B.SCALES)
@pytest.mark.parametrize("family", sorted(FAMILIES))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fb=frame_and_box(), max_pixels=st.sampled_from([64 * 28 * 28, 256 * 28 * 28, 1024 * 28 * 28,
                                                      B.DEFAULT_MAX_PIXELS]))
def test_round_trip_is_exact_up_to_rounding(grammar, scale, family, fb, max_pixels):
    width, height, frame_box = fb
    if scale == "resized" and get_family(family).resize_factor is None:   # InternVL / LLaVA-NeXT tile
        with pytest.raises(ValueError, match="tiles the image"):
            _coord_map(family, scale, width, height, max_pixels)
        return
    cmap = _coord_map(family, scale, width, height, max_pixels)
    render, parse = GRAMMARS[grammar]
    text = render(cmap.to_model(frame_box), cmap.decimals)
    parsed = parse(text)
    assert parsed is not None, text
    back = cmap.to_frame(parsed)
    # <bbox> rounds corners too (w = round(x2) - round(x1)), so one rounding per corner for all.
    assert _close(back, frame_box, _tolerance(cmap)), (text, back, frame_box)


@pytest.mark.parametrize("grammar, form", [("bbox", B.Form.EXACT), ("qwen", B.Form.OTHER)])
@settings(max_examples=60, deadline=None)
@given(fb=frame_and_box(), family=st.sampled_from(sorted(FAMILIES)), pattern=st.lists(st.booleans(), min_size=1,
                                                                                max_size=12))
def test_trajectory_round_trip_keeps_none_positions(grammar, form, fb, family, pattern):
    width, height, frame_box = fb
    cmap = coord_map(family, width, height)
    model = cmap.to_model(frame_box)
    text = B.render_trajectory([model if p else None for p in pattern], cmap.decimals, grammar)
    parsed = B.parse_trajectory(text)
    assert [p.form for p in parsed] == [form if p else B.Form.NONE for p in pattern]
    for p in parsed:
        if p.box is not None:
            assert _close(cmap.to_frame(p.box), frame_box, _tolerance(cmap))


def test_several_trajectories_round_trip():
    trajs = [[(10, 20, 30, 40), None, (11, 21, 31, 41)], [None, (100, 100, 200, 220), (101, 99, 201, 219)]]
    text = B.render_trajectories(trajs)
    assert text.startswith("The trajectory of the first people are: <bbox>10,20,20,20</bbox><None>")
    parsed = B.parse_trajectories(text)
    assert [[p.box for p in t] for t in parsed] == [[tuple(map(float, b)) if b else None for b in t]
                                                   for t in trajs]
    qwen = B.render_trajectories(trajs, grammar="qwen")
    assert qwen.startswith("The trajectory of the first people are: "
                           "<|box_start|>(10,20),(30,40)<|box_end|><None>")
    assert [[p.box for p in t] for t in B.parse_trajectories(qwen)] == [[p.box for p in t] for t in parsed]
    assert B.render_trajectories(trajs) == B.render_trajectories(trajs, grammar="bbox")  # the default


def test_grammars_mix_in_written_order_and_unknown_ones_are_refused():
    text = "<|box_start|>(1,2),(3,4)<|box_end|><None><bbox>5,6,1,1</bbox><|box_start|>(7,8)<|box_end|>"
    parsed = B.parse_trajectory(text)
    assert [p.form for p in parsed] == [B.Form.OTHER, B.Form.NONE, B.Form.EXACT, B.Form.NO_BOX]
    assert [p.box for p in parsed[:3]] == [(1.0, 2.0, 3.0, 4.0), None, (5.0, 6.0, 6.0, 7.0)]
    assert B.render_box((1, 2, 3, 4)) == "<bbox>1,2,2,2</bbox>"
    assert B.render_box((1, 2, 3, 4), grammar="qwen") == "<|box_start|>(1,2),(3,4)<|box_end|>"
    for render in (B.render_box, B.render_trajectory, B.render_trajectories):
        with pytest.raises(ValueError, match="unknown box grammar 'xyxy'"):
            render([], grammar="xyxy")


def test_norm_scales_and_resize_match_family_conventions():
    cmap = coord_map("qwen2_5_vl", 1280, 720, max_pixels=1280 * 28 * 28)
    assert cmap.scale == "resized"
    assert cmap.resized_width % 28 == 0 and cmap.resized_height % 28 == 0
    assert cmap.resized_width * cmap.resized_height <= 1280 * 28 * 28
    assert coord_map("qwen3_vl", 1280, 720).resized_width % 32 == 0
    n = coord_map("qwen2_vl", 1000, 500)
    assert n.scale == "norm1000"
    assert n.to_model((100, 50, 500, 250)) == (100.0, 100.0, 500.0, 500.0)
    assert B.CoordMap("norm1", 200, 100).to_model((20, 10, 40, 30)) == (0.1, 0.1, 0.2, 0.3)
    with pytest.raises(ValueError, match="unknown box scale"):
        B.CoordMap("pixels", 10, 10)
    with pytest.raises(ValueError, match="unknown model family"):
        coord_map("llava", 10, 10)
    # the tiling families: their own convention, relative to the frame, and no resized size to map to
    assert coord_map("internvl2_5", 1000, 500).to_model((100, 50, 500, 250)) == (100.0, 100.0, 500.0, 500.0)
    assert coord_map("llava_next", 200, 100).to_model((20, 10, 40, 30)) == (0.1, 0.1, 0.2, 0.3)
    with pytest.raises(ValueError, match="'internvl2_5' tiles the image"):
        coord_map("internvl2_5", 1000, 500, "resized")
    with pytest.raises(ValueError, match="'llava_next' has no smart_resize rule"):
        smart_resize(1000, 500, "llava_next")


@pytest.mark.parametrize("text,form,box", [
    ("<bbox>10,20,30,40</bbox>", B.Form.EXACT, (10, 20, 40, 60)),
    ("  <bbox> 1.5 , 2 ,3,4 </bbox>\n", B.Form.EXACT, (1.5, 2, 4.5, 6)),
    ("<|box_start|>(10,20),(40,60)<|box_end|>", B.Form.OTHER, (10, 20, 40, 60)),
    ("the box is (10, 20), (40, 60)", B.Form.OTHER, (10, 20, 40, 60)),
    ("(10,20,40,60)", B.Form.OTHER, (10, 20, 40, 60)),
    ("[10, 20, 40, 60]", B.Form.OTHER, (10, 20, 40, 60)),
    ('{"bbox": [10, 20, 40, 60]}', B.Form.OTHER, (10, 20, 40, 60)),
    ("<bbox>x1=10 y1=20</bbox> 10,20,40,60", B.Form.UNTAGGED, (10, 20, 50, 80)),
    ("10,20,30,40", B.Form.UNTAGGED, (10, 20, 40, 60)),
    ("<None>", B.Form.NONE, None),
    ("I cannot see it.", B.Form.NO_BOX, None),
    ("<bbox>10,20,30</bbox>", B.Form.NO_BOX, None),
    ("", B.Form.NO_BOX, None),
])
def test_parse_box_forms(text, form, box):
    parsed = B.parse_box(text)
    assert parsed.form == form
    assert parsed.box == (None if box is None else tuple(float(v) for v in box))


def test_vptracker_answers():
    yes = B.parse_vptracker('```json\n{\n  "visible": "yes", \n  "bbox":[12, 34, 56, 78]\n}\n```')
    assert (yes.visible, yes.box, yes.form) == (True, (12.0, 34.0, 56.0, 78.0), B.Form.EXACT)
    no = B.parse_vptracker(B.render_vptracker(None))
    assert no.visible is False and no.box == (0.0, 0.0, 0.0, 0.0)
    assert not B.is_valid_xyxy(no.box)
    garbage = B.parse_vptracker("visible: maybe; box unknown")
    assert (garbage.visible, garbage.box, garbage.form) == (None, None, B.Form.NO_BOX)


def test_validity_and_clipping():
    assert B.is_valid_xyxy((0, 0, 5, 5), 10, 10)
    assert not B.is_valid_xyxy((5, 5, 4, 9))             # inverted
    assert not B.is_valid_xyxy((20, 20, 30, 30), 10, 10)  # outside the image
    assert not B.is_valid_xyxy((0, 0, math.inf, 5))
    assert B.clip_xyxy((-5, -5, 15, 8), 10, 10) == (0, 0, 10, 8)


def test_iou_values_and_vectorised_agreement():
    assert B.iou_xywh((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert B.iou_xywh((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert B.iou_xywh((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0
    assert B.iou_xywh((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 100, (500, 4))
    b = rng.uniform(0, 100, (500, 4))
    want = [B.iou_xywh(p, q) for p, q in zip(a, b)]
    np.testing.assert_allclose(B.iou_xywh_arrays(a, b), want, atol=1e-12)


ADVERSARIAL = [
    "<bbox>" * 5000, "</bbox>" * 5000, "<bbox>" + "1," * 20000 + "</bbox>", "9" * 100000,
    "<bbox>1e999,1,1,1</bbox>", "<bbox>nan,nan,nan,nan</bbox>", "<bbox>-0,-0,-0,-0</bbox>",
    "<bbox>1,2,3,4", "<bbox>\x00\x01,2,3,4</bbox>", "((((((((((" * 1000, "[" * 10000 + "1,2,3,4",
    '{"visible": "yes", "bbox": [1,2,3]}', "```json\n{" * 1000, "<|box_start|>(1,2),(3" * 500,
    "The trajectory of the first people are: " * 2000, "\u202e<bbox>١,٢,٣,٤</bbox>", "<None>" * 10000,
    "1." * 50000, "-" * 100000, "1,2,3,4" + ",5" * 10000,
]
PARSERS = [B.parse_box, B.parse_trajectory, B.parse_trajectories, B.parse_vptracker, B.parse_qwen_boxes,
           B.parse_list, B.parse_slots]


@pytest.mark.parametrize("parser", PARSERS, ids=lambda p: p.__name__)
def test_parsers_never_raise_on_adversarial_text(parser):
    for text in ADVERSARIAL + [None, 123, b"<bbox>1,2,3,4</bbox>"]:
        parser(text)


_alphabet = st.sampled_from(list("<>bbox/None0123456789,.-+ ()[]{}\"':|_startend\n\tjsonvisibleyesno"))
_fragments = st.sampled_from(["<bbox>", "</bbox>", "<None>", "<|box_start|>", "<|box_end|>", '"bbox":',
                              '"visible": "yes"', "(", ")", "[", "]", ",", "12", "3.5", "-7", "1e5",
                              "trajectory of the first people are:"])


@pytest.mark.parametrize("parser", PARSERS, ids=lambda p: p.__name__)
@settings(max_examples=400, deadline=None)
@given(text=st.one_of(st.text(max_size=300), st.text(_alphabet, max_size=300),
                      st.lists(_fragments, max_size=40).map("".join)))
def test_parsers_never_raise_on_random_text(parser, text):
    result = parser(text)
    if parser is B.parse_box:
        assert isinstance(result.form, B.Form)
        assert (result.box is None) == (result.form in (B.Form.NONE, B.Form.NO_BOX))
        if result.box is not None:
            assert all(math.isfinite(v) for v in result.box)


def test_random_boxes_survive_through_text_with_noise():
    rng = random.Random(0)
    for _ in range(200):
        box = tuple(float(rng.randint(0, 999)) for _ in range(2))
        box = box + (box[0] + rng.randint(1, 50), box[1] + rng.randint(1, 50))
        text = f"Sure! {B.render_bbox(box)} is where it is."
        assert B.parse_box(text).box == box


# --------------------------------------------------------------------------- slots, tokens, arrays

def test_parse_slots_reads_each_form_once():
    slots = B.parse_slots("(1,2),(3,4) then [1, 2, 3, 4] then 5,6,7,8 and <None>")
    assert [s.form.value for s in slots] == ["other_form", "other_form", "untagged", "none"]
    assert slots[0].box == (1.0, 2.0, 3.0, 4.0)          # a corner pair is one slot, not two
    assert slots[2].box == (5.0, 6.0, 12.0, 14.0)        # bare numbers are x,y,w,h
    assert [s.box for s in B.parse_slots("<bbox>1,2,3,4</bbox> [x] <bbox>oops</bbox>")] == [(1.0, 2.0, 4.0, 6.0)]
    assert B.parse_slots(None) == []


def test_trajectory_texts_split_at_each_heading():
    text = ("The trajectory of the first people are: <bbox>1,2,3,4</bbox>, "
            "the trajectory of the second people are: <None>")
    assert B.trajectory_texts(text) == [" <bbox>1,2,3,4</bbox>, the ", " <None>"]
    assert B.trajectory_texts("<bbox>1,2,3,4</bbox>") == []
    assert [len(t) for t in B.parse_trajectories(text)] == [1, 1]


def test_strip_trajectory_tokens_keeps_what_else_was_said():
    text = "a<bbox>1,2,3,4</bbox> b<None>c<|box_start|>(1,2),(3,4)<|box_end|>"
    assert B.strip_trajectory_tokens(text) == "a bc"
    too_long = "<bbox>" + "1" * 201 + "</bbox>"  # not a token: the parsers skip it, so it is leftover text
    assert B.strip_trajectory_tokens(too_long) == too_long
    assert B.parse_trajectory(too_long) == []


def test_has_qwen_token_counts_malformed_tokens():
    assert B.has_qwen_token("<|box_start|>(1,2),(3,4)<|box_end|>")
    assert B.has_qwen_token("<|box_start|>somewhere<|box_end|>")
    assert not B.has_qwen_token("<bbox>1,2,3,4</bbox> <|box_start|>(1,2)")


def test_swap_bbox_and_qwen_exchanges_the_exact_form_unrounded():
    swapped = B.swap_bbox_and_qwen("<bbox>1,2,3,4</bbox><|box_start|>(1,2),(4,6)<|box_end|>")
    assert swapped == "(1.0,2.0),(4.0,6.0)<bbox>1.0,2.0,3.0,4.0</bbox>"
    assert [s.form for s in B.parse_slots(swapped)] == [B.Form.OTHER, B.Form.EXACT]
    # w = 0.4 - 0.1 and h = 0.3 - 0.2 in floating point: written as computed, so x + w gives 0.4 back
    assert (B.swap_bbox_and_qwen("<|box_start|>(0.1,0.2),(0.4,0.3)<|box_end|>")
            == "<bbox>0.1,0.2,0.30000000000000004,0.09999999999999998</bbox>")
    for malformed in ("<bbox>a,b</bbox>", "<|box_start|>(1,2)<|box_end|>"):
        assert B.swap_bbox_and_qwen(malformed) == malformed


def test_xywh_in_image_per_box_and_for_one_box():
    boxes = np.array([[0, 0, 5, 5], [-5, -5, 5, 5], [10, 0, 5, 5], [9.5, 0, 1, 1], [0, 0, 0, 5], [-1, -1, 2, 2],
                      [0, 10, 5, 5], [0, -5, 5, 5.5]])
    assert B.xywh_in_image(boxes, 10, 10).tolist() == [True, False, False, True, False, True, False, True]
    assert B.xywh_in_image(np.array([1.0, 1.0, 2.0, 2.0]), 10, 10)
    assert not B.xywh_in_image(np.array([1.0, 1.0, 2.0, -2.0]), 10, 10)
    assert not B.xywh_in_image(np.array([np.nan, 1.0, 2.0, 2.0]), 10, 10)


def test_iou_xywh_matrix_hand_values():
    a = [(0, 0, 10, 10), (5, 0, 10, 10)]
    b = [(0, 0, 10, 10), (20, 20, 5, 5), (0, 0, 0, 0)]
    np.testing.assert_array_equal(B.iou_xywh_matrix(a, b), [[1.0, 0.0, 0.0], [50 / 150, 0.0, 0.0]])
    assert B.iou_xywh_matrix(np.empty((0, 4)), b).shape == (0, 3)
    assert B.iou_xywh_matrix(a, np.empty((0, 4))).shape == (2, 0)


def test_iou_xyxy_matrix_hand_values_and_equal_to_the_scalar():
    np.testing.assert_array_equal(B.iou_xyxy_matrix([(0, 0, 10, 10)], [(5, 5, 15, 15), (0, 0, 10, 10), (10, 0, 20, 10)]),
                                  [[25 / 175, 1.0, 0.0]])
    rng = np.random.default_rng(1)
    a = rng.uniform(0, 100, (40, 4))       # some boxes inverted on purpose
    b = rng.uniform(0, 100, (30, 4))
    want = [[B.iou_xyxy(p, q) for q in b] for p in a]
    np.testing.assert_array_equal(B.iou_xyxy_matrix(a, b), want)
    xywh = np.column_stack([a[:, :2], np.abs(a[:, 2:] - a[:, :2])])
    np.testing.assert_allclose(B.iou_xywh_matrix(xywh, xywh).diagonal(), 1.0)


# --------------------------------------------------------------------------- the package's layout

BOX_MODULES = ("geometry", "coords", "render", "parse")


def _public_top_level(path) -> set[str]:
    import ast

    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return {n for n in names if not n.startswith("_")}


def test_every_box_rule_has_one_home_and_is_exported_from_the_package():
    from pathlib import Path

    folder = Path(B.__file__).parent
    assert sorted(p.stem for p in folder.glob("*.py")) == sorted(("__init__",) + BOX_MODULES)
    homes: dict[str, list[str]] = {}
    for module in BOX_MODULES:
        for name in _public_top_level(folder / f"{module}.py"):
            homes.setdefault(name, []).append(module)
    assert {n: m for n, m in homes.items() if len(m) > 1} == {}     # defined once
    assert sorted(B.__all__) == sorted(homes)                       # and importable from vptracker.boxes
    for name, (module,) in homes.items():
        assert getattr(B, name) is getattr(getattr(B, module), name)


def test_smart_resize_is_qwen_vl_utils_rule():
    """Every frame size of the real datasets' range and the edges of both caps resize as qwen-vl-utils
    resizes them, and the same sizes are refused."""
    import random

    from qwen_vl_utils.vision_process import smart_resize as reference

    from vptracker.boxes import smart_resize

    rng = random.Random(0)
    sizes = [(rng.randint(1, 4000), rng.randint(1, 4000)) for _ in range(20000)]
    sizes += [(h, w) for h in (1, 13, 14, 27, 28, 29, 42, 56, 1080) for w in (1, 14, 28, 1920, 2800, 5600)]
    caps = [(3136, 1003520), (3136, 506464), (56 * 56, 28 * 28 * 646), (200704, 200704), (None, None)]
    for factor in (28, 32):
        for height, width in sizes:
            min_pixels, max_pixels = caps[(height + width) % len(caps)]
            try:
                expected = reference(height, width, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels)
            except ValueError:
                with pytest.raises(ValueError, match="aspect ratio"):
                    smart_resize(height, width, factor, min_pixels, max_pixels)
                continue
            assert smart_resize(height, width, factor, min_pixels, max_pixels) == expected, (height, width, factor)
