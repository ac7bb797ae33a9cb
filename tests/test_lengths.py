"""Length budgets: token counts of prepared rows from real frame sizes, the policies, the card, and
the check that refuses data a stage's max_length would cut.

Text is counted with the real Qwen tokenizer (:mod:`vptracker.models.qwen_tokenizer`, written by
scripts/setup.sh); the tests whose numbers depend on it skip, saying so, where it is absent."""
from __future__ import annotations

import json
import logging
import random

import layouts as fx
import pytest

from vptracker.boxes import render_box, render_trajectories
from vptracker.datasets import synthetic
from vptracker.models.qwen_tokenizer import find_tokenizer
from vptracker.tasks import get_task
from vptracker.tasks import lengths as lengths_module
from vptracker.tasks.lengths import (
    LengthBudget,
    OverBudget,
    check_cards,
    estimate_tokens,
    image_tokens,
    text_counter,
    trajectory_objects_within,
)
from vptracker.tasks.prepare import prepare

MAX_PIXELS = 28 * 28 * 646
FRAMES = 34


def test_image_tokens_hand_computed():
    # 1920x1080 under 28x28x646: smart_resize gives 924x532 = 33 x 19 patches of 28 px, +2 wrap tokens
    assert image_tokens(1920, 1080, "qwen2_5_vl", MAX_PIXELS) == 33 * 19 + 2
    # a 56x56 frame is 2 x 2 merged patches
    assert image_tokens(56, 56, "qwen2_5_vl", MAX_PIXELS) == 4 + 2
    # Qwen3-VL's patch is 16 (32 px merged)
    assert image_tokens(64, 64, "qwen3_vl", MAX_PIXELS) == 4 + 2
    assert estimate_tokens("There are no objects.") == 5


@pytest.fixture(scope="module")
def qwen():
    """The real Qwen tokenizer's counter (the default for Qwen families), or a skip naming the fix."""
    if find_tokenizer() is None:
        pytest.skip("the real Qwen tokenizer is not built: `python -m vptracker.models.qwen_tokenizer` (scripts/setup.sh "
                    "runs it; or set VPTRACKER_QWEN_TOKENIZER to a folder it wrote)")
    count, what = text_counter("qwen2_5_vl")
    assert what.startswith("qwen (")
    return count


def test_qwen_families_count_with_the_real_tokenizer_by_default(qwen):
    assert qwen("Hello, world!") == 4                       # [9707, 11, 1879, 0]
    assert qwen("<bbox>123,456,166,178</bbox>") == 21        # every digit is a token
    budget = LengthBudget(family="qwen3_vl")
    assert budget.counted_with.startswith("qwen (") and budget.summary()["counted_with"] == budget.counted_with
    row = {"messages": [{"role": "user", "content": "Hello, world!"}, {"role": "assistant", "content": "<None>"}]}
    assert budget.row_tokens(row) == 4 + qwen("<None>") + 2 * lengths_module.TURN_OVERHEAD
    assert LengthBudget(family="qwen3_vl", tokenizer="estimate").counted_with == "estimate"


def test_without_the_tokenizer_counts_are_estimated_with_a_message(tmp_path, monkeypatch, caplog):
    import vptracker.models.qwen_tokenizer as qt

    monkeypatch.delenv(qt.ENV, raising=False)
    monkeypatch.setattr(qt, "default_dir", lambda: tmp_path / "absent")
    lengths_module._resolve.cache_clear()
    lengths_module._fallback_note.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="vptracker.tasks.lengths"):
            assert LengthBudget(family="qwen2_5_vl").counted_with == "estimate"
        assert "token counts for qwen2_5_vl are estimated" in caplog.text and "vptracker.models.qwen_tokenizer" in caplog.text
        monkeypatch.setenv(qt.ENV, str(tmp_path / "absent"))
        with pytest.raises(FileNotFoundError, match="no tokenizer.json there"):
            text_counter("qwen2_5_vl")
    finally:
        lengths_module._resolve.cache_clear()


def test_mot_answers_within_2048_tokens_at_the_training_default(qwen, tmp_path):
    """The real builder's MOT rows on a 12-person scene: every answer fits the paper's 2,048 output
    tokens at the default max_objects, even with the longest boxes (four 3-digit values); 7 objects
    never fit."""
    task = get_task("omnipt_mot")
    assert int(task.frames) == 16
    rng = random.Random(0)
    boxes = [(x, y, x + rng.randint(10, 200), y + rng.randint(10, 200)) for x, y in
             ((rng.randint(100, 790), rng.randint(100, 790)) for _ in range(16))]
    per_object = trajectory_objects_within(2048, 16, qwen, "<bbox>123,456,166,178</bbox>",
                                           "The trajectory of the twentieth people are: , ")
    assert per_object == int(task.max_objects) == 5
    assert qwen(render_trajectories([boxes] * 6)) <= 2048 < qwen(render_trajectories([boxes] * 7))
    short = [(x, y, x + 99, y + 99) for x, y, _, _ in boxes]              # two-digit sizes: 19 tokens a box
    assert trajectory_objects_within(2048, 16, qwen, render_box(short[0]), "The trajectory of "
                                     "the twentieth people are: , ") == 6
    root = tmp_path / "crowd"
    cfg = synthetic.SyntheticConfig(width=320, height=180, frames=18, occluder_prob=0.0)
    synthetic.write_mot(root, {"train": 1}, seed=3, cfg=cfg, people=12)
    index = task.index(synthetic.read_mot(root, "train"))
    rows = [row for row in (task.sample(index, random.Random(seed)) for seed in range(20)) if row]
    assert len(rows) >= 10
    longest = max(qwen(m["content"]) for row in rows for m in row["messages"] if m["role"] == "assistant")
    assert 1200 < longest <= 2048, longest


@pytest.fixture(scope="module")
def hd_bensmot(tmp_path_factory):
    root = tmp_path_factory.mktemp("bensmot_1080p")
    walk = {tid: {f: (100 * tid + 5 * f, 200, 120, 300) for f in range(1, FRAMES + 1)} for tid in (1, 2, 3)}
    fx.write_bensmot(root, "train", "dance", "v1", FRAMES, fx.mot_rows(walk), "Three people walk.",
                     [(f"p{i}", f"A person number {i}.") for i in range(3)], size=(1920, 1080))
    return root


def _config(root, out, policy, max_length=16384):
    source = {"bensmot": {"dataset": "bensmot", "root": str(root), "split": "train"}}
    jobs = {"smot": {"task": "omnipt_mot", "options": {"frames": 32}, "sources": source, "samples": {"train": 2}},
            "video_caption": {"task": "omnipt_video_caption", "options": {"frames": 32}, "sources": source,
                              "samples": {"train": "all"}}}
    return {"out": str(out), "workers": 1, "jobs": jobs,
            "length_budget": {"max_length": max_length, "policy": policy}}


def _rows(out, job):
    return [json.loads(line) for path in sorted(out.glob(f"train-{job}-*.jsonl")) for line in path.read_text().splitlines()]


def test_stop_policy_stops_with_the_counts(hd_bensmot, tmp_path):
    with pytest.raises(OverBudget, match=r"2 of 2 rows are over length_budget.max_length 16384 tokens \(longest 2"):
        prepare(_config(hd_bensmot, tmp_path, "stop"), progress=False)


def test_fewer_frames_policy_keeps_rows_under_budget(hd_bensmot, tmp_path):
    card = prepare(_config(hd_bensmot, tmp_path, "fewer_frames"), progress=False)
    stats = card["lengths"]["train"]["smot"]
    assert stats["rows"] == 2 and stats["changed_by_policy"] == 2 and stats["max"] <= 16384
    # 24 frames: 15,096 image tokens plus three 24-box trajectories is still over; 18 fit
    assert {len(r["images"]) for r in _rows(tmp_path, "smot")} == {18}
    assert card["lengths"]["train"]["video_caption"]["max"] <= 16384
    assert {len(r["images"]) for r in _rows(tmp_path, "video_caption")} == {24}
    assert json.loads((tmp_path / "card.json").read_text())["lengths"]["train"]["smot"]["histogram"]


def test_lower_max_pixels_policy_keeps_32_frames(hd_bensmot, tmp_path):
    card = prepare(_config(hd_bensmot, tmp_path, "lower_max_pixels"), progress=False)
    rows = _rows(tmp_path, "video_caption")
    assert {len(r["images"]) for r in rows} == {32}
    assert all(r["max_pixels"] < MAX_PIXELS for r in rows)
    budget = LengthBudget(16384, "lower_max_pixels")
    assert all(budget.row_tokens(r) <= 16384 for r in rows)
    assert card["lengths"]["train"]["video_caption"]["changed_by_policy"] == 1


def test_no_budget_still_writes_the_distribution(hd_bensmot, tmp_path):
    card = prepare(_config(hd_bensmot, tmp_path, "stop", max_length=None), progress=False)
    stats = card["lengths"]["train"]["video_caption"]
    assert stats["rows"] == 1 and stats["max_length"] is None and stats["over_max_length"] == 0
    assert 32 * (33 * 19 + 2) < stats["max"] < 32 * (33 * 19 + 2) + 200  # images + a short prompt and caption
    # the stage runner's check refuses these rows for max_length 16384, and lets them through for 32768
    cards = [{"path": str(tmp_path / "train-video_caption-00000.jsonl"), "card": card}]
    with pytest.raises(OverBudget, match="ms-swift would drop these rows"):
        check_cards(cards, 16384, "stage3_sft")
    check_cards(cards, 32768, "stage3_sft")
