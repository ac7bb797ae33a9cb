"""Hostile model answers: through every parser, the writer and every tracking loop.

A model can answer anything: nothing, 10,000 characters, any Unicode, lone surrogates (text decoded
from broken bytes), nested tags, 1e308, NaN, boxes far outside the image. The parsers must stay
linear in the answer's length and return only finite boxes; the loops must write valid UTF-8 and
no box outside the image.
"""
from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_infer_loops import H, W, make_sequence

from vptracker import boxes as B
from vptracker.boxes import parse_box, parse_list, parse_qwen_boxes, parse_trajectories, parse_trajectory
from vptracker.infer import CallableEngine, run_task
from vptracker.infer.outputs import json_text, merge, write_responses_part

PARSERS = (parse_box, parse_trajectory, parse_trajectories, parse_qwen_boxes, parse_list)
HOSTILE = {
    "empty": "",
    "spaces_10k": " " * 10_000,
    "chars_10k": "x" * 10_000,
    "digits_10k": "7" * 10_000,
    "unicode": "目标在 <bbox>１２,３４,５６,７８</bbox> ☃ \u202e<None>\u200b 𝟙𝟚𝟛",
    "lone_surrogates": "\ud800<bbox>20,10,16,12</bbox>\udfff \udc80",
    "nested_tags": "<bbox><bbox><bbox>20,10,16,12</bbox></bbox></bbox><None<None>>",
    "huge": "<bbox>1e308,1e308,1e308,1e308</bbox> [1e308, 0, 1e309, 5] 1e308,1,1,1",
    "nan_text": '<bbox>nan,nan,nan,nan</bbox> {"visible": "yes", "bbox": [NaN, Infinity, -inf, 1]} NaN',
    "outside": '```json\n{"visible": "yes", "bbox": [-500, -500, 5000, 5000]}\n```<bbox>-10,-10,500,500</bbox>',
    "edge": '{"visible": "yes", "bbox": [90, 60, 190, 160]}<bbox>90,60,100,100</bbox><bbox>95,63,100,100</bbox>',
    "many_boxes": "".join(f"<bbox>{i % 90},{i % 60},5,5</bbox>" for i in range(300)),
    "twelve_digits": "<bbox>999999999999,999999999999,999999999999,999999999999</bbox>",
    "open_tags": "<bbox>" * 3000 + "[1," * 3000 + "(1,2)" * 2000,
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_parsers_never_raise_and_return_only_finite_boxes(name):
    text = HOSTILE[name]
    for parse in PARSERS:
        result = parse(text)
        found = result if isinstance(result, list) else [result]
        for item in found:
            for entry in item if isinstance(item, list) else [item]:
                box = getattr(entry, "box", entry)
                assert box is None or (len(box) == 4 and all(math.isfinite(v) for v in box)), (parse.__name__, box)


# --------------------------------------------------------------------------- linear parsers

def _char_set(item, probe: str) -> set[str] | None:
    """The probe characters a one-character regex item matches, or None for anything longer."""
    from re import _constants as c

    op, av = item

    def category(cat) -> set[str]:
        pattern = {c.CATEGORY_SPACE: r"\s", c.CATEGORY_NOT_SPACE: r"\S", c.CATEGORY_DIGIT: r"\d",
                   c.CATEGORY_NOT_DIGIT: r"\D", c.CATEGORY_WORD: r"\w", c.CATEGORY_NOT_WORD: r"\W"}[cat]
        return {ch for ch in probe if re.match(pattern, ch)}
    if op is c.LITERAL:
        return {chr(av)}
    if op is c.NOT_LITERAL:
        return set(probe) - {chr(av)}
    if op is c.ANY:
        return set(probe)
    if op is c.CATEGORY:
        return category(av)
    if op is c.IN:
        chars, negate = set(), False
        for sub_op, sub_av in av:
            if sub_op is c.NEGATE:
                negate = True
            elif sub_op is c.LITERAL:
                chars.add(chr(sub_av))
            elif sub_op is c.RANGE:
                chars |= {ch for ch in probe if sub_av[0] <= ord(ch) <= sub_av[1]}
            elif sub_op is c.CATEGORY:
                chars |= category(sub_av)
        return set(probe) - chars if negate else chars
    return None


def ambiguous_repeats(pattern: re.Pattern) -> list[str]:
    """Places where a backtracking regex can split one run of characters between two unbounded
    repeats (``\\s*[,;\\s]\\s*``, ``\\s*,?\\s*``) or nest them (``(a+)+``): what makes matching
    super-linear. Possessive repeats (``\\s*+``) never give characters back, so they are safe."""
    from re import _constants as c
    from re import _parser

    probe = "".join(chr(i) for i in range(32, 127)) + " \t\n\r\x0b\x0cé\u3000"
    found = []

    def repeat(item):
        op, av = item
        if op in (c.MAX_REPEAT, c.MIN_REPEAT) and len(av[2]) == 1:
            chars = _char_set(av[2][0], probe)
            if chars is not None:
                return av[0], av[1], chars
        return None

    def unbounded_inside(sub) -> bool:
        for op, av in sub:
            if op in (c.MAX_REPEAT, c.MIN_REPEAT) and av[1] == c.MAXREPEAT:
                return True
            if op is c.SUBPATTERN and unbounded_inside(av[3]):
                return True
            if op is c.BRANCH and any(unbounded_inside(alt) for alt in av[1]):
                return True
        return False

    def walk(items):
        items = list(items)
        for i, item in enumerate(items):
            op, av = item
            if op in (c.MAX_REPEAT, c.MIN_REPEAT):
                if av[1] == c.MAXREPEAT and unbounded_inside(av[2]):
                    found.append(f"nested unbounded repeats at item {i}")
                walk(av[2])
            elif op is c.SUBPATTERN:
                walk(av[3])
            elif op is c.BRANCH:
                for alt in av[1]:
                    walk(alt)
            first = repeat(item)
            if first is None or first[1] != c.MAXREPEAT:
                continue
            for later in items[i + 1:]:
                nxt = repeat(later)
                chars = nxt[2] if nxt else _char_set(later, probe)
                if chars is None or not chars & first[2]:
                    if nxt and nxt[0] == 0:      # optional and disjoint (",?"): look past it
                        continue
                    break
                if nxt and nxt[1] == c.MAXREPEAT:
                    found.append(f"two unbounded repeats over {''.join(sorted(chars & first[2]))[:12]!r}")
                    break
    walk(_parser.parse(pattern.pattern, pattern.flags))
    return found


def test_the_ambiguity_check_finds_what_made_parsing_quadratic():
    for bad in (r"\s*[,;\s]\s*", r"\)\s*,?\s*\(", r"(a+)+b", r"x\d*\d*y"):
        assert ambiguous_repeats(re.compile(bad)), bad
    for good in (r"(?:\s*+[,;]|\s)\s*+", r"\)\s*+,?\s*+\(", r"\d*,\d*", r"<bbox>.{0,200}?</bbox>"):
        assert not ambiguous_repeats(re.compile(good)), good


@pytest.mark.parametrize("name", ["_BBOX_EXACT", "_BBOX_ANY", "_QWEN_BOX", "_PAIRS", "_BRACKET4", "_BARE4", "_TOKEN",
                                  "_BBOX_TOKEN", "_QWEN_TOKEN", "_SLOT", "_JSON_BBOX", "_TRAJ_HEAD",
                                  "_VISIBLE"])
def test_every_parser_pattern_is_linear_by_construction(name):
    assert ambiguous_repeats(getattr(B.parse, name)) == []


LINEAR_PROBE = """
import time
from vptracker.boxes import parse_box, parse_list, parse_qwen_boxes, parse_trajectories, parse_trajectory
run = " " * 200_000
for prefix in ("[1", "(1", "bbox: [1", "<|box_start|>(1", "[1,2", "(1,2)", "1", "1,2,3", "<bbox>1", "[1 2"):
    for parse in (parse_box, parse_trajectory, parse_trajectories, parse_qwen_boxes, parse_list):
        parse(prefix + run + "x")
"""


def test_parsers_finish_a_200k_character_run_where_quadratic_would_take_an_hour():
    """``"[1" + " " * 20_000`` took 21.5 s with the old separator (quadratic): at 200,000 characters that
    is ~36 minutes per call; linear parsing takes milliseconds. The limit only guards against a hang."""
    subprocess.run([sys.executable, "-c", LINEAR_PROBE], check=True, timeout=120,
                   cwd=Path(__file__).resolve().parents[2])


# --------------------------------------------------------------------------- the writer

def test_any_answer_is_written_as_valid_utf8_and_reads_back_the_same(tmp_path):
    responses = [{"sequence": "s", "step": i, "answer": text} for i, text in enumerate(HOSTILE.values())]
    write_responses_part(tmp_path, "s\ud800/..", responses)
    merge(tmp_path)
    raw = (tmp_path / "responses.jsonl").read_bytes()
    lines = raw.decode("utf-8").splitlines()     # strict: raises on anything that is not UTF-8
    assert [json.loads(line) for line in lines] == responses
    assert "目标" in raw.decode("utf-8")          # readable text stays readable, not \\u-escaped
    assert json.loads(json_text({"a": "\udfff"})) == {"a": "\udfff"}


# --------------------------------------------------------------------------- every tracking loop

TASKS = ("vptracker_sot", "omnipt_sot", "omnipt_mot", "omnipt_rmot", "omnipt_crmot", "omnipt_caption")
OPTS = {"family": "qwen2_5_vl", "box_scale": "abs", "frames_per_sample": 3, "caption_frames": 3}


def sequences(root: Path, task: str, box=(20, 10, 16, 12)):
    if task == "omnipt_crmot":
        return [make_sequence(root / f"v{k}", f"S_{k}", n=4, box=box, scene="S", view=f"View{k}", language="a man")
                for k in (1, 2)]
    return [make_sequence(root, "seq", n=4, box=box, scene="0001", expression="a man")]


def written_boxes(out: Path, task: str) -> list[tuple[float, float, float, float]]:
    """Every box in the result files, as x1,y1,x2,y2."""
    found = []
    for path in out.rglob("*.txt"):
        for line in path.read_bytes().decode("utf-8").splitlines():
            values = [float(v) for v in line.split(",")]
            if task in ("vptracker_sot", "omnipt_sot"):
                x, y, w, h = values
                found.append((x, y, x + w, y + h))
            elif task == "omnipt_crmot":
                found.append(tuple(values[2:6]))
            else:
                x, y, w, h = values[2:6]
                found.append((x, y, x + w, y + h))
    return found


@pytest.mark.parametrize("task", TASKS)
def test_every_loop_survives_hostile_answers_and_writes_no_box_outside_the_image(tmp_path, task):
    names = sorted(HOSTILE)
    for name in names:
        out = tmp_path / "out" / name
        answer = HOSTILE[name]
        summary = run_task(task, CallableEngine(lambda r, a=answer: a), sequences(tmp_path / "data" / name, task),
                           out, OPTS, progress=False)
        assert summary.finished, (task, name)
        for x1, y1, x2, y2 in written_boxes(out, task):
            assert all(math.isfinite(v) for v in (x1, y1, x2, y2)), (task, name)
            assert 0 <= x1 < x2 <= W and 0 <= y1 < y2 <= H, (task, name, (x1, y1, x2, y2))
        log = [json.loads(line) for line in (out / "responses.jsonl").read_bytes().decode("utf-8").splitlines()]
        assert log and all(entry["answer"] == answer for entry in log if "answer" in entry), (task, name)
        if task == "omnipt_caption":
            captions = json.loads((out / "captions.json").read_bytes().decode("utf-8"))
            assert captions["seq"]["video_caption"] == answer.strip()


@pytest.mark.parametrize("task", ["vptracker_sot", "omnipt_sot", "omnipt_mot", "omnipt_caption"])
def test_a_first_box_partly_outside_the_image_is_tracked_inside_it(tmp_path, task):
    box = (80, 50, 40, 40)          # x + w = 120 > 96, y + h = 90 > 64
    out = tmp_path / "out"
    answer = '{"visible": "yes", "bbox": [80, 50, 120, 90]}' if task == "vptracker_sot" else \
        "<bbox>80,50,40,40</bbox>" * 4
    run_task(task, CallableEngine(lambda r: answer), sequences(tmp_path / "data", task, box=box), out, OPTS,
             progress=False)
    boxes = written_boxes(out, task)
    assert boxes or task == "omnipt_caption"
    for x1, y1, x2, y2 in boxes:
        assert (x1, y1) == (80, 50) and x2 <= W and y2 <= H
    if task in ("vptracker_sot", "omnipt_sot"):
        np.testing.assert_allclose(boxes[0], (80, 50, W, H))
    if task == "omnipt_caption":          # the box the instance query shows is the part inside the image
        prompts = [json.loads(line)["request"]["messages"][-1]["content"]
                   for line in (out / "responses.jsonl").read_text(encoding="utf-8").splitlines()]
        assert any("<bbox>80,50,16,14</bbox>" in p for p in prompts)
