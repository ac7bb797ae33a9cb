"""Length budgets: token counts of prepared rows from real frame sizes, the policies, the card, and
the check that refuses data a stage's max_length would cut."""
from __future__ import annotations

import json

import layouts as fx
import pytest

from vptracker.tasks.lengths import LengthBudget, OverBudget, check_cards, estimate_tokens, image_tokens
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
