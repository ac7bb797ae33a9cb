"""The VPTracker behaviour equals the released code (jcwang0602/VPTracker at 4e5555c).

Each rule is restated here, in the test's own words, from the released files: the fork's
``ms-swift/swift/llm/template/base.py`` (``sample_target``, ``Template._draw_bbox``),
``evaluation/infer_tracking_qwen_vlt_crop_absent.py`` (prompt, ``check_bbox``, answer reading),
``dataset/sampling_dataset.py`` + ``dataset/track_dataset.py`` (training rows), ``train.sh`` /
``infer.sh``. The project's code is compared with these restatements on real OTB frames and on the
real TNL2K test annotations.
"""
from __future__ import annotations

import json
import math
import random
import re
import tarfile

import layouts as fx
import numpy as np
import pytest
from PIL import Image, ImageDraw

from vptracker.boxes import parse_vptracker_released, released_box_accepted, xywh_to_xyxy
from vptracker.config import load_config
from vptracker.datasets import load
from vptracker.datasets.base import DatasetFormatError
from vptracker.infer import CallableEngine, TaskOptions, run_batched
from vptracker.infer.common import truncate
from vptracker.infer.sot import VPTrackerSOTTracker
from vptracker.prompts import visual as released
from vptracker.prompts.texts import vptracker_prompt, vptracker_training_prompt
from vptracker.prompts.visual import VisualPrompt, crop_template, render
from vptracker.tasks import get_task
from vptracker.tasks.base import generate
from vptracker.tasks.vptracker_released import released_boxes

RED = np.array([255, 0, 0], dtype=np.uint8)

# ----------------------------------------------------------------------------- restated released rules


def sample_target_window(box, width, height, factor=2.0):
    """sample_target: the numpy slice bounds im[top:bottom, left:right] it cuts."""
    x, y, w, h = box[0], box[1], box[2] - box[0], box[3] - box[1]
    crop_sz = math.ceil(math.sqrt(w * h) * factor)
    x1 = int(round(x + 0.5 * w - crop_sz * 0.5))  # noqa: RUF046 (as released)
    y1 = int(round(y + 0.5 * h - crop_sz * 0.5))  # noqa: RUF046
    x2, y2 = x1 + crop_sz, y1 + crop_sz
    xs, xe = x1 + max(0, -x1), x2 - max(x2 - width + 1, 0)
    ys, ye = y1 + max(0, -y1), y2 - max(y2 - height + 1, 0)
    return ys, ye, xs, xe


def draw_bbox_rect(box, scale, width, height, dx=0.0, dy=0.0):
    """_draw_bbox: the rectangle handed to PIL (int() corners, x2/y2 clipped to W/H)."""
    cx, cy = (box[0] + box[2]) / 2 + dx, (box[1] + box[3]) / 2 + dy
    nw, nh = (box[2] - box[0]) * scale, (box[3] - box[1]) * scale
    return (max(0, int(cx - nw / 2)), max(0, int(cy - nh / 2)), min(width, int(cx + nw / 2)),
            min(height, int(cy + nh / 2)))


def outline_pixels(rect, width, height, line=3):
    """PIL's rectangle(outline, width=3): corners inclusive, three lines inward, off-image pixels dropped.

    Rectangles narrower than two lines (an outline around a zero-size box) get PIL's own shape."""
    x1, y1, x2, y2 = rect
    if x2 - x1 < 2 * line or y2 - y1 < 2 * line:
        small = Image.new("1", (width, height))
        ImageDraw.Draw(small).rectangle(rect, outline=1, width=line)
        return np.asarray(small)
    mask = np.zeros((height + line, width + line), dtype=bool)
    mask[y1:y2 + 1, x1:x2 + 1] = True
    mask[y1 + line:y2 - line + 1, x1 + line:x2 - line + 1] = False
    return mask[:height, :width]


def draw_bbox_training(box, scale, width, height, ratio, rnd):
    """_draw_bbox with add_noise=True, the random draws in the released order, then the fallback."""
    w, h = box[2] - box[0], box[3] - box[1]
    nw, nh = w * scale, h * scale
    if rnd.random() < ratio:
        dx, dy = rnd.uniform(-(nw - w) / 2, (nw - w) / 2), rnd.uniform(-(nh - h) / 2, (nh - h) / 2)
    else:
        mn_x, mn_y = (nw - w) / 2, (nh - h) / 2
        mx_x, mx_y = width - nw - mn_x, height - nh - mn_y
        dx = rnd.choice([rnd.uniform(mn_x, mx_x), rnd.uniform(-mx_x, -mn_x)])
        dy = rnd.choice([rnd.uniform(mn_y, mx_y), rnd.uniform(-mx_y, -mn_y)])
    rect = draw_bbox_rect(box, scale, width, height, dx, dy)
    if rect[2] < rect[0] or rect[3] < rect[1]:  # PIL raises: a random rectangle instead
        xa, xb = sorted([rnd.randint(1, width - 1), rnd.randint(1, width - 1)])
        ya, yb = sorted([rnd.randint(1, height - 1), rnd.randint(1, height - 1)])
        rect = (xa, ya, xb, yb)
    return rect


def released_answer(response, width, height):
    """run_model + check_bbox: the new box, or None when the previous one is kept."""
    try:
        answer = json.loads(re.search(r"```json\s*(.*?)\s*```", response, re.DOTALL).group(1).strip())
        visible, bbox = answer["visible"], answer["bbox"]
        if visible == "no":
            return None
        if isinstance(bbox, str):
            bbox = json.loads(bbox)
        assert len(bbox) == 4
        if min(bbox[0], bbox[1], bbox[2], bbox[3]) < 0 or bbox[2] < bbox[0] or bbox[3] < bbox[1]:
            return None
        if bbox[0] > width or bbox[1] > height or bbox[2] > width or bbox[3] > height:
            return None
        return bbox
    except Exception:  # noqa: BLE001 (the released loop's own catch-all)
        return None


INFER_TEXT = ("You are a visual object tracker.\nGiven the visual information of the target object, including an "
              "initial visual template <template><image></template>, \nand the language description of the target "
              "object, including an initial language description <ref>{language}</ref>.\n\nThen, detect the target "
              "object is in search image <search><image></search>.\n    1. determine whether the target is visible "
              "in the search image.\n    2. return the bounding box of its current position in the search image in "
              "the format [x_min, y_min, x_max, y_max]. \n\nPlease return the answer in JSON format, for example: "
              "```json\n{{\n  \"visible\": \"yes/no\", \n  \"bbox\":[x_min, y_min, x_max, y_max]\n}}\n```.")
NOTE = ("\n\nPlease note that you should first search for the target within the {color} rectangular bounding box. "
        "If you cannot find it, then search for the target outside the rectangular bounding box.")
SAMPLER_HEAD = ("You are a visual object tracker.\nGiven the visual information of the target object "
                "<template><image></template>, and the language description of the target object <ref> {language} "
                "</ref>.\n")

# ----------------------------------------------------------------------------- real frames


@pytest.fixture(scope="module")
def otb(shared_data):
    return load("otb", shared_data / "otb")


def _variants(box, width, height):
    """The box itself, fractional shifts, and copies pushed against each border."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    yield box
    yield (x1 + 0.7, y1 + 0.3, x2 + 0.7, y2 + 0.3)
    yield (x1 + 0.5, y1 + 0.5, x2 + 0.5, y2 + 0.5)
    yield (width - w, height - h, width, height)              # touching the right/bottom border
    yield (width - w - 0.4, y1, width - 0.4, y2)
    yield (0.0, 0.0, w, h)                                     # touching the left/top border
    yield (width - w * 0.6, height - h * 0.6, width, height)  # centre near the corner


def test_outline_pixels_equal_the_released_rule_on_every_otb_frame(otb):
    compared = border_two_px = 0
    for seq in otb:
        W, H = seq.width, seq.height
        for t in range(1, len(seq.frames)):
            frame = Image.open(seq.frames[t]).convert("RGB")
            pixels = np.asarray(frame)
            for prev in _variants(xywh_to_xyxy(seq.target.boxes[t - 1]), W, H):
                prompt = released.test_time_prompt(xywh_to_xyxy(seq.target.boxes[0]), prev, W, H)
                got = np.asarray(render(frame, frame, prompt)[1])
                rect = draw_bbox_rect(prev, 4, W, H)
                assert tuple(prompt.outline) == rect
                expected = pixels.copy()
                expected[outline_pixels(rect, W, H)] = RED
                assert np.array_equal(got, expected), (seq.name, t, prev)
                compared += 1
                if rect[2] == W:  # the released right edge: 2 px, the third line falls off the image
                    red = (got[:, :, 0] == 255) & (got[:, :, 1] == 0) & (got[:, :, 2] == 0)
                    rows = slice(rect[1] + 3, rect[3] - 2)
                    border_two_px += bool(red[rows, W - 2:].all() and not red[rows, W - 3].all())
    print(f"outline frames compared: {compared}; 2-px right edge on {border_two_px}")
    assert compared > 2000 and border_two_px > 300


def test_template_crop_pixels_equal_sample_target_on_real_frames(otb):
    cv2 = pytest.importorskip("cv2")
    for seq in otb:
        W, H = seq.width, seq.height
        for t in range(0, len(seq.frames), 7):
            path = seq.frames[t]
            im = np.asarray(Image.open(path).convert("RGB"))
            # the released crop decodes with OpenCV; our renderer with PIL: the same pixels
            assert np.array_equal(cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB), im)
            for box in _variants(xywh_to_xyxy(seq.target.boxes[t]), W, H):
                ys, ye, xs, xe = sample_target_window(box, W, H)
                region = released.template_region(box, W, H)
                crop = crop_template(Image.fromarray(im), region)
                assert np.array_equal(np.asarray(crop), im[ys:ye, xs:xe]), (seq.name, t, box)


def test_template_origins_over_all_tnl2k_test_first_boxes(shared_data):
    firsts = {}
    with tarfile.open(shared_data / "tnl2k" / "test_annos.tar.gz") as tar:
        for member in tar.getmembers():
            if member.isfile() and "/gt_rect/" in member.name:
                line = tar.extractfile(member).read().decode().splitlines()[0]
                firsts[member.name] = [float(v) for v in re.split(r"[,\s]+", line.strip())]
    assert len(firsts) == 700
    big = 10**6  # no right/bottom border: the origin alone
    for x, y, w, h in firsts.values():
        box = (x, y, x + w, y + h)
        ys, _, xs, _ = sample_target_window(box, big, big)
        assert released.template_region(box, big, big)[:2] == (xs, ys)


# ----------------------------------------------------------------------------- prompts and answers


@pytest.mark.parametrize("language", ["the man in red\n", "  a dog  ", "two\nlines\r\n"])
def test_prompt_bytes(language):
    assert vptracker_prompt(language) == INFER_TEXT.format(language=language) + NOTE.format(color="red")
    assert vptracker_prompt(language, visual_prompt=False) == INFER_TEXT.format(language=language) + "\n"
    body = INFER_TEXT[INFER_TEXT.index("\n\nThen"):].replace("{{", "{").replace("}}", "}")
    sampler = SAMPLER_HEAD.format(language=language.strip()) + body[1:]
    assert vptracker_training_prompt(language) == sampler + NOTE.format(color="red") + "\n"
    assert vptracker_training_prompt(language, visual_prompt=False) == sampler + "\n"


def _fenced(body):
    return f"```json\n{body}\n```"


PROBES = [
    _fenced('{\n  "visible": "yes",\n  "bbox": [10, 20, 50, 60]\n}'),
    '{"visible": "yes", "bbox": [10, 20, 50, 60]}',                      # unfenced
    '```json\n{\n  "visible": "yes",\n  "bbox": [10, 20, 5',             # truncated
    _fenced("{'visible': 'yes', 'bbox': [10, 20, 50, 60]}"),              # python quotes
    _fenced('{"bbox": [10, 20, 50, 60]}'),                                 # no visible key
    _fenced('{"visible": "No", "bbox": [10, 20, 50, 60]}'),
    _fenced('{"visible": "false", "bbox": [10, 20, 50, 60]}'),
    _fenced('{"visible": false, "bbox": [10, 20, 50, 60]}'),
    _fenced('{"visible": true, "bbox": [10, 20, 50, 60]}'),
    _fenced('{"visible": "no", "bbox": [10, 20, 50, 60]}'),
    _fenced('{"visible": "no"}'),
    _fenced('{"visible": "yes", "bbox": [300, 200, 330, 250]}'),          # partly outside
    _fenced('{"visible": "yes", "bbox": [-1, 20, 50, 60]}'),              # negative x1
    _fenced('{"visible": "yes", "bbox": [30, 30, 30, 30]}'),              # zero size
    _fenced('{"visible": "yes", "bbox": [0, 0, 0, 0]}'),
    _fenced('{"visible": "yes", "bbox": [50, 60, 10, 20]}'),              # inverted
    _fenced('{"visible": "yes", "bbox": [0, 0, 320, 240]}'),              # the whole frame
    _fenced('{"visible": "yes", "bbox": [10.5, 20.25, 60.75, 80.0]}'),
    _fenced('{"visible": "yes", "bbox": "[1, 2, 3, 4]"}'),
    _fenced('{"visible": "yes", "bbox": [1, 2, 3, 4, 5]}'),
    _fenced('{"visible": "yes", "bbox": [1, null, 3, 4]}'),
    _fenced('{"visible": "yes", "bbox": {"a": 1, "b": 2, "c": 3, "d": 4}}'),
    _fenced('{"visible": "yes", "bbox": [1, 2, 3, 1' + "0" * 400 + ']}'),   # beyond a float
    _fenced('{"visible": "yes", "bbox": [true, true, true, true]}'),
    "```JSON\n" + '{"visible": "yes", "bbox": [10, 20, 50, 60]}' + "\n```",
    'Sure. ```json{"visible": "yes", "bbox": [1, 2, 3, 4]}``` and ```json\n{"visible": "yes", "bbox": [5, 6, 7, 8]}\n```',
    _fenced('[10, 20, 50, 60]') + "\n" + _fenced('{"visible": "yes", "bbox": [10, 20, 50, 60]}'),
]


@pytest.mark.parametrize("text", PROBES)
def test_keep_or_move_equals_the_released_loop(text):
    expected = released_answer(text, 320, 240)
    parsed = parse_vptracker_released(text)
    moved = bool(parsed.visible) and released_box_accepted(parsed.box, 320, 240)
    assert moved == (expected is not None)
    if moved:
        assert parsed.box == tuple(float(v) for v in expected)


def test_nan_box_is_kept_here_where_the_released_loop_fails_on_the_next_frame():
    text = _fenced('{"visible": "yes", "bbox": [NaN, 1, 2, 3]}')
    assert released_answer(text, 320, 240) is not None  # accepted there; int(nan) then raises in _draw_bbox
    parsed = parse_vptracker_released(text)
    assert parsed.visible and not released_box_accepted(parsed.box, 320, 240)


def test_tracker_loop_equals_the_released_loop_on_real_frames(otb):
    seq = truncate(next(s for s in otb if s.name == "Couple"), len(PROBES) + 1)
    W, H = seq.width, seq.height
    requests = []

    def answer(request):
        requests.append(request)
        return PROBES[request.audit["frame"] - 1]
    tracker = VPTrackerSOTTracker(seq, TaskOptions(family="qwen3_vl", box_scale="abs"))
    run_batched(CallableEngine(answer), [tracker], concurrency=1)
    current = xywh_to_xyxy(seq.target.boxes[0])
    frame0 = np.asarray(Image.open(seq.frames[0]).convert("RGB"))
    ys, ye, xs, xe = sample_target_window(current, W, H)
    for t, request in enumerate(requests, start=1):
        assert request.prompt == INFER_TEXT.format(language="") + NOTE.format(color="red")  # OTB: no language.txt
        template, search = request.images
        assert np.array_equal(np.asarray(template), frame0[ys:ye, xs:xe])
        expected = np.asarray(Image.open(seq.frames[t]).convert("RGB")).copy()
        expected[outline_pixels(draw_bbox_rect(current, 4, W, H), W, H)] = RED
        assert np.array_equal(np.asarray(search), expected), t
        new = released_answer(PROBES[t - 1], W, H)
        current = current if new is None else tuple(float(v) for v in new)
        x1, y1, x2, y2 = current
        np.testing.assert_allclose(tracker.result()[t], (x1, y1, x2 - x1, y2 - y1))


def test_raw_language_goes_into_the_prompt(tmp_path):
    fx.write_tnl2k(tmp_path, "test", "s1", [(4, 4, 10, 8)] * 3, "x")
    (tmp_path / "test" / "s1" / "language.txt").write_bytes(b"  the bird \r\n")
    seq = load("tnl2k", tmp_path, split="test")[0]
    request = VPTrackerSOTTracker(seq, TaskOptions(family="qwen3_vl")).next_request()
    assert request.prompt == INFER_TEXT.format(language="  the bird \n") + NOTE.format(color="red")


# ----------------------------------------------------------------------------- training rows


def test_training_outline_draws_equal_the_released_draws(otb):
    boxes = [xywh_to_xyxy(b) for s in otb for b in s.target.boxes[::5]]
    boxes += [(0, 0, 0, 0), (300, 200, 320, 240), (0.0, 0.0, 5.0, 3.0)]
    for i, box in enumerate(boxes):
        for seed in range(4):
            scale = 2 + (i + seed) % 7
            ours, _ = released.training_outline(box, scale, 320, 240, 0.9, random.Random(seed))
            assert ours == draw_bbox_training(box, scale, 320, 240, 0.9, random.Random(seed)), (box, scale, seed)


def test_absent_frame_outlines_and_off_target_share(otb):
    rng = random.Random(0)
    kinds = {"corner": 0, "point": 0, "fallback": 0}
    n = 20000
    for _ in range(n):
        rect, kind = released.training_outline((0, 0, 0, 0), rng.randint(2, 8), 320, 240, 0.9, rng)
        kinds["fallback" if kind == "fallback" else "corner" if rect == (0, 0, 0, 0) else "point"] += 1
    share = {k: v / n for k, v in kinds.items()}
    print(f"absent-frame outlines around [0,0,0,0]: {share}")
    assert abs(share["corner"] - 0.9) < 0.01 and abs(share["fallback"] - 0.075) < 0.01
    missed = total = 0
    for seq in otb:
        for b in seq.target.boxes:
            box = xywh_to_xyxy(np.trunc(b))
            rect, _ = released.training_outline(box, rng.randint(2, 8), seq.width, seq.height, 0.9, rng)
            total += 1
            missed += not (rect[0] <= box[0] and rect[1] <= box[1] and box[2] <= rect[2] and box[3] <= rect[3])
    print(f"OTB outlines that do not hold the whole target: {missed} of {total} ({missed / total:.3f})")
    assert 0.05 < missed / total < 0.15  # seeded: 38 of 334


def test_released_boxes_truncate_like_track_dataset():
    gt = np.array([[-3.7, 5.9, 20.5, 0.8], [10.2, 3.3, 5.9, 7.1], [0, 0, 0, 0]])
    b = np.array(gt, dtype=np.int32)  # TNLLTDataset: np.array(..., dtype=np.int32)
    xyxy, visible = released_boxes(gt)
    assert xyxy.tolist() == [[0, 5, 17, 5], [10, 3, 15, 10], [0, 0, 0, 0]]
    assert visible.tolist() == ((b[:, 2] > 0) & (b[:, 3] > 0)).tolist() == [False, True, False]


def test_released_rows_on_real_sequences(otb):
    task = get_task("vptracker_sot")
    rows = [row for _, row in generate(task, {"otb": task.index(otb)}, {"otb": 1}, 300, 1)]
    where = {f: (s, i) for s in otb for i, f in enumerate(s.frames)}
    for row in rows:
        (seq, t), (_, s) = where[row["images"][0]], where[row["images"][1]]
        xyxy, visible = released_boxes(seq.target.boxes)
        assert t < s and visible[t]
        body = INFER_TEXT[INFER_TEXT.index("\n\nThen"):].replace("{{", "{").replace("}}", "}")
        assert row["messages"][0]["content"] == SAMPLER_HEAD.format(language="") + body[1:] + NOTE.format(
            color="red") + "\n"
        search_box = [int(v) for v in xyxy[s]]
        assert row["messages"][1]["content"] == (f'```json\n{{\n  "visible": "{"yes" if visible[s] else "no"}",\n '
                                                 f'"bbox": {search_box}\n}}\n```')
        vp = row["visual_prompt"]
        ys, ye, xs, xe = sample_target_window(xyxy[t].tolist(), seq.width, seq.height)
        assert vp["template_region"] == [xs, ys, xe, ye] and vp["geometry"] == "released"
        x1, y1, x2, y2 = vp["outline"]
        assert 0 <= x1 <= x2 <= seq.width and 0 <= y1 <= y2 <= seq.height
    for row in rows[:20]:  # what the swift plugin renders (the same call), against the restated rules
        (seq, t), (_, s) = where[row["images"][0]], where[row["images"][1]]
        template, search = render(Image.open(row["images"][0]), Image.open(row["images"][1]),
                                  VisualPrompt.from_json(row["visual_prompt"]))
        xyxy, _ = released_boxes(seq.target.boxes)
        ys, ye, xs, xe = sample_target_window(xyxy[t].tolist(), seq.width, seq.height)
        assert np.array_equal(np.asarray(template), np.asarray(Image.open(seq.frames[t]).convert("RGB"))[ys:ye, xs:xe])
        expected = np.asarray(Image.open(seq.frames[s]).convert("RGB")).copy()
        expected[outline_pixels(row["visual_prompt"]["outline"], seq.width, seq.height)] = RED
        assert np.array_equal(np.asarray(search), expected)


def test_rows_of_another_geometry_are_refused():
    vp = {"template_region": [0, 0, 4, 4], "outline": [1, 1, 3, 3], "color": "red", "line_width": 3}
    assert VisualPrompt.from_json({**vp, "geometry": "released"}).outline == (1, 1, 3, 3)
    with pytest.raises(ValueError, match="visual_prompt key 'geometry' is 'project', expected 'released'"):
        VisualPrompt.from_json({**vp, "geometry": "project"})   # rows of the removed project geometry
    with pytest.raises(ValueError, match="visual_prompt key 'geometry' is None"):
        VisualPrompt.from_json(vp)   # rows from before the key existed were drawn with the project geometry


# ----------------------------------------------------------------------------- recipe


def test_recipe_values_equal_train_sh_and_infer_script():
    from qwen_vl_utils.vision_process import smart_resize

    from vptracker.train.stages import CONFIG_DIR
    stage = load_config(CONFIG_DIR / "stages" / "vptracker_sft.yaml")["swift"]
    assert stage["freeze_vit"] is False and stage["freeze_aligner"] is False and stage["tuner_type"] == "full"
    assert stage["model_kwargs"]["IMAGE_MAX_TOKEN_NUM"] == 1024 and "max_pixels" not in stage
    # one resize by qwen-vl-utils under 1024 tokens of 32 px: 1920x1080 -> 1344x768
    assert smart_resize(1080, 1920, 32, 4 * 32**2, 1024 * 32**2) == (768, 1344)
    infer = load_config(CONFIG_DIR / "infer" / "vptracker_sot.yaml")
    assert infer["max_tokens"] == 1024 and infer["temperature"] == 0.0
    opts = infer["options"]
    assert smart_resize(1080, 1920, 32, opts["min_pixels"], opts["max_visual_tokens"] * 32**2) == (1088, 1920)
    assert opts["min_pixels"] == 4 * 32**2


def test_tnllt_split_is_the_released_150_50(tmp_path):
    from vptracker.datasets.shipped_splits import shipped_split

    train, test = shipped_split("tnllt", "train"), shipped_split("tnllt", "test")
    assert len(train) == 150 and len(test) == 50 and not train & test
    fx.write_tnllt(tmp_path, min(test), [(4, 4, 10, 8)] * 2, [0, 0], "a bird")
    fx.write_tnllt(tmp_path, "not_in_any_list", [(4, 4, 10, 8)] * 2, [0, 0], "a cat")
    # a partial download is refused, naming the shipped list and how many of its sequences are missing
    with pytest.raises(DatasetFormatError, match="tnllt.json.*49 have none"):
        load("tnllt", tmp_path, split="test")
    for name in test:
        fx.write_tnllt(tmp_path, name, [(4, 4, 10, 8)] * 2, [0, 0], "a bird")
    assert sorted(s.name for s in load("tnllt", tmp_path, split="test")) == sorted(test)
