"""OmniPT builders (SOT, MOT, RMOT, CRMOT, captions, pretexts, GRPO variants): every emitted box lies in
its image and maps back to the source annotation through the box grammar."""
from __future__ import annotations

import layouts as fx
import numpy as np
import pytest

from vptracker.boxes import CoordMap, parse_box, parse_trajectories, parse_trajectory
from vptracker.datasets import load
from vptracker.models.families import smart_resize
from vptracker.prompts.texts import IMAGE, no_objects_answer
from vptracker.tasks import get_task
from vptracker.tasks.base import generate

W, H, T = 96, 64, 20


def _people():
    walk = {tid: {f: (5 + 10 * tid + f, 5 + 5 * tid, 12, 20) for f in range(1, T + 1)} for tid in (1, 2)}
    walk[3] = {f: (60, 30, 10, 18) for f in range(1, 9)}          # leaves after frame 8
    walk[4] = {f: (70 + f, 2, 10, 18) for f in range(6, T + 1)}   # enters at frame 6, crosses the border
    return walk


@pytest.fixture(scope="module")
def mot(tmp_path_factory):
    root = tmp_path_factory.mktemp("dance")
    fx.write_mot(root, "train", "dancetrack0001", T, fx.mot_rows(_people()), size=(W, H), pad=8)
    return load("dancetrack", root, split="train")


def _rows(name, seqs, n=40, seed=0, **options):
    task = get_task(name, **options)
    return [row for _, row in generate(task, {"s": task.index(seqs)}, {"s": 1}, n, seed)]


def _frame_of(seqs):
    return {f: (s, i) for s in seqs for i, f in enumerate(s.frames)}


def _check_box(model_box, track, t, seq, coord, tol=0.6):
    x, y, w, h = track.boxes[t]
    expected = (max(x, 0), max(y, 0), min(x + w, seq.width), min(y + h, seq.height))
    back = coord.to_frame(model_box)
    assert 0 <= back[0] < back[2] <= seq.width + 1e-6 and 0 <= back[1] < back[3] <= seq.height + 1e-6
    fx_, fy_ = seq.width / 1000 if coord.scale == "norm1000" else 1, seq.height / 1000 if coord.scale == "norm1000" else 1
    if coord.scale == "resized":
        fx_, fy_ = seq.width / coord.resized_width, seq.height / coord.resized_height
    assert np.allclose(back, expected, atol=tol * max(fx_, fy_) + 1e-6)


@pytest.mark.parametrize("grammar", ["bbox", "qwen"])
def test_omnipt_sot_trajectory_maps_back(mot, grammar):
    where = _frame_of(mot)
    coord = CoordMap("norm1000", W, H)
    for row in _rows("omnipt_sot", mot, frames=8, stride=2, grammar=grammar):
        assert len(row["images"]) == 8 and row["messages"][0]["content"].count(IMAGE) == 8
        seq, t0 = where[row["images"][0]]
        frames = [where[p][1] for p in row["images"]]
        assert frames == list(range(t0, t0 + 16, 2))
        traj = parse_trajectory(row["messages"][1]["content"])
        assert len(traj) == 8 and traj[0].box is not None
        first = parse_box(row["messages"][0]["content"])
        assert first.box == traj[0].box
        def clipped(b):
            return b[0], b[1], min(b[0] + b[2], W), min(b[1] + b[3], H)

        match = [tr for tr in seq.tracks
                 if tr.visible[t0] and np.allclose(coord.to_frame(first.box), clipped(tr.boxes[t0]), atol=0.1)]
        track = match[0]
        for t, parsed in zip(frames, traj):
            if track.visible[t]:
                _check_box(parsed.box, track, t, seq, coord)
            else:
                assert parsed.box is None


def test_omnipt_sot_prior_jitter_moves_only_the_prompt_box(mot):
    """The prompt's box is off by at most the jitter fraction; the answer keeps the true boxes."""
    coord = CoordMap("norm1000", W, H)
    where = _frame_of(mot)
    shifts = []
    for row in _rows("omnipt_sot", mot, frames=2, prior_jitter=0.3):
        seq, t0 = where[row["images"][0]]
        answer = parse_trajectory(row["messages"][1]["content"])[0].box
        true = np.array(coord.to_frame(answer))
        assert any(np.allclose(true, (max(b[0], 0), max(b[1], 0), min(b[0] + b[2], W), min(b[1] + b[3], H)), atol=0.1)
                   for b in (tr.boxes[t0] for tr in seq.tracks if tr.visible[t0]))
        prior = np.array(coord.to_frame(parse_box(row["messages"][0]["content"]).box))
        w, h = true[2] - true[0], true[3] - true[1]
        centre = (prior[:2] + prior[2:]) / 2 - (true[:2] + true[2:]) / 2
        assert abs(centre[0]) <= 0.3 * w + 1.5 and abs(centre[1]) <= 0.3 * h + 1.5
        assert 0 <= prior[0] < prior[2] <= W and 0 <= prior[1] < prior[3] <= H
        shifts.append(np.abs(centre).sum())
    assert np.mean(shifts) > 1.0                      # it does move the prior
    with pytest.raises(ValueError, match="prior_jitter"):
        get_task("omnipt_sot", prior_jitter=1.5).validate()


def test_omnipt_mot_three_queries(mot):
    where = _frame_of(mot)
    rows = _rows("omnipt_mot", mot, n=30, frames=10)
    saw_new = False
    for row in rows:
        msgs = row["messages"]
        assert [m["role"] for m in msgs] == ["user", "assistant"] * 3
        seq, t0 = where[row["images"][0]]
        frames = [where[p][1] for p in row["images"]]
        first = parse_trajectory(msgs[1]["content"])
        assert len(first) == sum(tr.visible[t0] for tr in seq.tracks)
        assert msgs[1]["content"] in msgs[2]["content"]
        tracked = parse_trajectories(msgs[3]["content"])
        assert len(tracked) == len(first) and all(len(tr) == len(frames) for tr in tracked)
        assert [tr[0].box for tr in tracked] == [b.box for b in first]
        n_new = sum((not tr.visible[t0]) and tr.visible[frames].any() for tr in seq.tracks)
        if n_new:
            saw_new = True
            assert len(parse_trajectories(msgs[5]["content"])) == n_new
        else:
            assert msgs[5]["content"] == no_objects_answer()
    assert saw_new


def test_omnipt_mot_prior_jitter_moves_only_the_track_query_boxes(mot):
    """Under prior_jitter the track query's given boxes move (by at most the fraction of each box's
    size, same order as the first answer); the first answer and the trajectories keep the true boxes."""
    coord = CoordMap("norm1000", W, H)
    plain = _rows("omnipt_mot", mot, n=30, frames=4)
    shifts = []
    for row, true_row in zip(_rows("omnipt_mot", mot, n=30, frames=4, prior_jitter=0.3), plain):
        msgs = row["messages"]
        first = [b.box for b in parse_trajectory(msgs[1]["content"])]
        # the prompt also names <None> (how to write an absent object)
        given = [b.box for b in parse_trajectory(msgs[2]["content"]) if b.box is not None]
        assert len(given) == len(first)
        assert [tr[0].box for tr in parse_trajectories(msgs[3]["content"])] == first   # answers stay true
        for g, t in zip(given, first):
            prior, true = np.array(coord.to_frame(g)), np.array(coord.to_frame(t))
            w, h = true[2] - true[0], true[3] - true[1]
            centre = (prior[:2] + prior[2:]) / 2 - (true[:2] + true[2:]) / 2
            assert abs(centre[0]) <= 0.3 * w + 1.5 and abs(centre[1]) <= 0.3 * h + 1.5
            shifts.append(np.abs(centre).sum())
    assert np.mean(shifts) > 1.0                                  # it does move the given boxes
    for row in plain:                                             # without it they are the first answer's
        assert row["messages"][1]["content"] in row["messages"][2]["content"]
    with pytest.raises(ValueError, match="prior_jitter"):
        get_task("omnipt_mot", prior_jitter=1.0).validate()


def test_resized_scale_for_qwen2_5_vl_maps_back(mot):
    where = _frame_of(mot)
    rw, rh = smart_resize(W, H, "qwen2_5_vl", max_pixels=28 * 28 * 646)
    coord = CoordMap("resized", W, H, rw, rh)
    for row in _rows("pretext_detection", mot, n=20, scale="family", family="qwen2_5_vl"):
        seq, t = where[row["images"][0]]
        boxes = [p.box for p in parse_trajectory(row["messages"][1]["content"])]
        visible = [tr for tr in seq.tracks if tr.visible[t]]
        assert len(boxes) == len(visible)
        for box in boxes:
            assert any(np.allclose(coord.to_frame(box), (max(b[0], 0), max(b[1], 0), min(b[0] + b[2], W),
                                                         min(b[1] + b[3], H)), atol=1.0)
                       for b in (tr.boxes[t] for tr in visible))


def test_location_prediction_includes_disappearing_objects(mot):
    rows = _rows("pretext_location", mot, n=60, frames=6, disappear_ratio=1.0)
    ends_none = 0
    for row in rows:
        traj = parse_trajectory(row["messages"][1]["content"])
        assert len(traj) == 5 and len(row["images"]) == 6
        ends_none += traj[-1].box is None
    assert ends_none > 30


def test_rmot_tracks_every_referred_object(tmp_path):
    labels = {f: {3: (8 + f, 4, 16, 8), 5: (40, 10, 20, 10)} for f in range(6)}
    fx.write_refer_kitti(tmp_path, "0005", 6, labels, {"cars": {f: [3, 5] for f in range(6)},
                                                       "left car": {f: [3] for f in range(3)}}, size=(W, H))
    seqs = load("refer_kitti_v2", tmp_path, split="test")
    for row in _rows("omnipt_rmot", seqs, n=20, frames=4):
        text = row["messages"][0]["content"]
        trajs = parse_trajectories(row["messages"][1]["content"])
        if "cars" in text:
            assert len(trajs) == 2 and all(len(t) == 4 for t in trajs)
        else:
            assert len(trajs) <= 1


def test_crmot_views_split_frames_evenly_with_shared_ids(tmp_path):
    v1 = fx.mot_rows({1: {f: (5 + f, 5, 10, 20) for f in range(1, 9)}, 2: {f: (40, 5, 10, 20) for f in range(1, 9)}})
    v2 = fx.mot_rows({1: {f: (50, 20, 10, 20) for f in range(1, 9)}})
    v3 = fx.mot_rows({2: {f: (20, 30, 10, 20) for f in range(4, 9)}})
    fx.write_crtrack(tmp_path, "train", "Gate2", {"View1": v1, "View2": v2, "View3": v3}, 8,
                     {"two people": [1, 2]}, size=(W, H))
    seqs = load("crtrack", tmp_path, split="train")
    where = _frame_of(seqs)
    for row in _rows("omnipt_crmot", seqs, n=10, frames=9):
        assert len(row["images"]) == 9
        assert row["messages"][0]["content"].startswith("There are three views of the same scene")
        views = [where[p][0].view for p in row["images"]]
        assert views == ["View1"] * 3 + ["View2"] * 3 + ["View3"] * 3
        times = [where[p][1] for p in row["images"]]
        assert times[:3] == times[3:6] == times[6:]
        trajs = parse_trajectories(row["messages"][1]["content"])
        assert len(trajs) == 2 and all(len(t) == 9 for t in trajs)
        person1, person2 = trajs
        assert all(b.box is None for b in person1[6:]) and all(b.box is None for b in person2[3:6])


def test_crmot_with_fewer_frames_than_views_takes_one_frame_per_view(tmp_path):
    rows = {f"View{k}": fx.mot_rows({1: {f: (5 + f, 5 * k, 10, 20) for f in range(1, 5)}}) for k in (1, 2, 3)}
    fx.write_crtrack(tmp_path, "train", "Gate2", rows, 4, {"a person": [1]}, size=(W, H))
    seqs = load("crtrack", tmp_path, split="train")
    where = _frame_of(seqs)
    for row in _rows("omnipt_crmot_grpo", seqs, n=6, frames=2):
        assert [where[p][0].view for p in row["images"]] == ["View1", "View2", "View3"]
        assert len({where[p][1] for p in row["images"]}) == 1
        assert [len(t) for t in parse_trajectories(row["solution"])] == [3]


def test_captions_enumerate_each_unit_once(tmp_path):
    rows = fx.mot_rows({2: {f: (30, 10, 8, 16) for f in range(3, 11)}, 1: {f: (5, 5, 10, 20) for f in range(1, 11)}})
    fx.write_bensmot(tmp_path, "train", "dance", "v1", 10, rows, "Two people dance.",
                     [("woman0", "A woman in red."), ("man1", "A man in a suit.")], size=(W, H))
    seqs = load("bensmot", tmp_path, split="train")
    task = get_task("omnipt_video_caption", frames=4)
    video = [r for _, r in generate(task, {"b": task.index(seqs)}, {}, None, 0)]
    assert len(video) == 1 and video[0]["messages"][1]["content"] == "Two people dance."
    assert [p.rsplit("/", 1)[1] for p in video[0]["images"]] == ["001.jpg", "004.jpg", "007.jpg", "010.jpg"]
    task = get_task("omnipt_instance_caption", frames=4)
    inst = [r for _, r in generate(task, {"b": task.index(seqs)}, {}, None, 0)]
    assert sorted(r["messages"][1]["content"] for r in inst) == ["A man in a suit.", "A woman in red."]
    man = next(r for r in inst if "suit" in r["messages"][1]["content"])
    assert man["images"][0].endswith("003.jpg")
    box = CoordMap("norm1000", W, H).to_frame(parse_box(man["messages"][0]["content"]).box)
    assert np.allclose(box, (30, 10, 38, 26), atol=0.1)


def test_grounding_finds_the_captioned_person(tmp_path):
    """Stage 1's proxy task: one BenSMOT frame, one caption, that person's box as the solution."""
    from vptracker.train.rewards import iou_reward

    walk = {2: {f: (30 + f, 10, 8, 16) for f in range(3, 11)}, 1: {f: (5, 5, 10, 20) for f in range(1, 11)}}
    fx.write_bensmot(tmp_path, "train", "dance", "v1", 10, fx.mot_rows(walk), "Two people dance.",
                     [("woman0", "A woman in red."), ("man1", "A man in a suit.")], size=(W, H))
    seqs = load("bensmot", tmp_path, split="train")
    where = _frame_of(seqs)
    rows = _rows("omnipt_grounding_grpo", seqs, n=20)
    assert {("suit" in r["messages"][0]["content"]) for r in rows} == {True, False}
    for row in rows:
        assert len(row["images"]) == 1 and row["messages"][0]["content"].startswith(IMAGE)
        _, t = where[row["images"][0]]
        tid = 2 if "suit" in row["messages"][0]["content"] else 1
        x, y, w, h = walk[tid][t + 1]
        box = CoordMap("norm1000", W, H).to_frame(parse_box(row["solution"]).box)
        assert np.allclose(box, (x, y, x + w, y + h), atol=0.1)
        assert row["reward_matching"] == "order"
        assert iou_reward(row["solution"], row["solution"]) == pytest.approx(2.0)


def test_reid_rows_point_at_the_same_person(mot, tmp_path):
    for row in _rows("pretext_reid", mot, n=30, negatives=2, min_gap=3):
        assert len(row["images"]) == len(row["crops"]) == 4
        k = int(row["messages"][1]["content"].split()[-1])
        anchor, positive = row["crops"][0], row["crops"][k]
        for x1, y1, x2, y2 in row["crops"]:
            assert 0 <= x1 < x2 <= W and 0 <= y1 < y2 <= H
        assert anchor[3] - anchor[1] == positive[3] - positive[1]  # same person, same height here
        assert row["messages"][0]["content"].count(IMAGE) == 4


def test_clip_pairs_embedding_format(tmp_path):
    fx.write_synth_pedes(tmp_path, [(1, "a man in a red coat"), (2, "a woman")])
    seqs = load("synth_pedes", tmp_path)
    task = get_task("pretext_clip")
    rows = [r for _, r in generate(task, {"p": task.index(seqs)}, {}, None, 0)]
    assert rows[0] == {"messages": [{"role": "user", "content": "<image><CLS>"}], "images": [seqs[0].frames[0]],
                       "positive_messages": [[{"role": "user", "content": "a man in a red coat<CLS>"}]]}


def test_grpo_variants_move_the_answer_to_solution(mot):
    sft = _rows("omnipt_sot", mot, n=10, seed=4, frames=4)
    grpo = _rows("omnipt_sot_grpo", mot, n=10, seed=4, frames=4)
    for a, b in zip(sft, grpo):
        assert b["messages"] == a["messages"][:1] and b["solution"] == a["messages"][1]["content"]
        assert b["images"] == a["images"]
    assert all(b["reward_matching"] == "order" for b in grpo)


def test_mot_grpo_rewards_every_query(mot):
    """One GRPO row per query: earlier turns (with their true answers) as context, this answer as solution."""
    from vptracker.train.rewards import iou_reward

    sft = _rows("omnipt_mot", mot, n=5, seed=2, frames=6)
    grpo = _rows("omnipt_mot_grpo", mot, n=5, seed=2, frames=6)
    assert len(grpo) == 3 * len(sft)
    for k, dialogue in enumerate(sft):
        rows = grpo[3 * k: 3 * k + 3]
        assert [len(r["messages"]) for r in rows] == [1, 3, 5]
        assert [r["reward_matching"] for r in rows] == ["set", "order", "set"]
        for q, row in enumerate(rows):
            assert row["messages"] == dialogue["messages"][:2 * q + 1] and row["images"] == dialogue["images"]
            assert row["solution"] == dialogue["messages"][2 * q + 1]["content"]
            # the true answer earns full marks, whatever the matching
            assert iou_reward(row["solution"], row["solution"], row["reward_matching"]) == pytest.approx(2.0)
    assert any(r["solution"] == no_objects_answer() for r in grpo[2::3])


def test_rmot_grpo_rows_score_any_order_of_the_objects(tmp_path):
    from vptracker.boxes import render_trajectories
    from vptracker.train.rewards import iou_reward

    labels = {f: {3: (8 + f, 4, 16, 8), 5: (40, 10, 20, 10)} for f in range(6)}
    fx.write_refer_kitti(tmp_path, "0005", 6, labels, {"cars": {f: [3, 5] for f in range(6)}}, size=(W, H))
    rows = _rows("omnipt_rmot_grpo", load("refer_kitti_v2", tmp_path, split="test"), n=5, frames=4)
    for row in rows:
        trajs = [[p.box for p in t] for t in parse_trajectories(row["solution"])]
        assert len(trajs) == 2 and row["reward_matching"] == "set"
        swapped = render_trajectories(trajs[::-1])
        assert swapped != row["solution"]
        assert iou_reward(swapped, row["solution"], row["reward_matching"]) == pytest.approx(2.0)


def test_prepare_refuses_a_malformed_solution(tmp_path):
    from vptracker.tasks.base import write_jsonl

    rows = [("s", {"messages": [], "solution": "<bbox>1,2,3,4</bbox>", "reward_matching": "order"}),
            ("s", {"messages": [], "solution": "no box here", "reward_matching": "set"})]
    path = tmp_path / "train-x-00000.jsonl"
    with pytest.raises(ValueError, match=r"train-x-00000.jsonl:2: reward solution holds no box"):
        write_jsonl(path, rows)


def test_option_bounds():
    with pytest.raises(ValueError, match="option frames=40, expected 2..32"):
        get_task("omnipt_sot", frames=40)
    with pytest.raises(ValueError, match="option family='llava'"):
        get_task("omnipt_mot", family="llava")
    for name in ("omnipt_sot", "pretext_detection", "omnipt_instance_caption"):
        with pytest.raises(ValueError, match=r"option grammar='xyxy', expected one of \('bbox', 'qwen'\)"):
            get_task(name, grammar="xyxy")


@pytest.mark.parametrize("name, options", [("omnipt_sot", {"frames": 6}), ("pretext_location", {"frames": 6}),
                                           ("omnipt_mot_grpo", {"frames": 6}), ("pretext_detection", {})])
def test_qwen_grammar_rows_carry_the_same_boxes(mot, name, options):
    """Same seed, other grammar: the same rows, every box (and <None>) in the same place."""
    def texts(row):
        return [m["content"] for m in row["messages"]] + [row.get("solution", "")]

    def boxes(text):
        return [[p.box for p in traj] for traj in parse_trajectories(text)]

    bbox = _rows(name, mot, n=12, seed=3, **options)
    qwen = _rows(name, mot, n=12, seed=3, grammar="qwen", **options)
    assert len(bbox) == len(qwen) > 0
    for a, b in zip(bbox, qwen):
        assert a["images"] == b["images"]
        assert "<|box_start|>" in "".join(texts(b)) and "<bbox>" not in "".join(texts(b))
        assert [boxes(t) for t in texts(a)] == [boxes(t) for t in texts(b)]


def test_short_sequences_are_reported(mot):
    task = get_task("omnipt_mot", frames=32)
    with pytest.raises(ValueError, match="no sequence with tracks and at least 32 frames"):
        task.index(mot)


@pytest.fixture(scope="module")
def omnipt_roots(tmp_path_factory):
    from omnipt_data import write_datasets

    return write_datasets(tmp_path_factory.mktemp("omnipt_datasets"))


@pytest.mark.parametrize("frames", [2, 4, 8, 16, 32])
def test_every_table7_frames_value_prepares_every_job(omnipt_roots, tmp_path, frames):
    """Table 7's frames-per-sample ablation through the real stage data configs and every layout."""
    import json

    from omnipt_data import STAGE_CONFIGS, stage_config

    from vptracker.tasks.prepare import prepare

    for stage in STAGE_CONFIGS:
        cfg = stage_config(stage, omnipt_roots, tmp_path / stage, overrides=(f"task_options.frames={frames}",))
        card = prepare(cfg, progress=False)
        for job, out in card["outputs"]["train"].items():
            assert out["rows"] > 0, f"{stage}.{job}: no rows"
            for name in out["files"]:
                for line in (tmp_path / stage / name).read_text().splitlines():
                    row = json.loads(line)
                    if "frames" not in get_task(cfg["jobs"][job]["task"]).options:
                        continue  # one-image tasks (grounding, detection), ReID, CLIP pairs
                    # CRMOT splits the frames among CRTrack's 3 views, at least one each
                    expected = 3 * max(1, frames // 3) if job == "crmot" else frames
                    if "caption" in job:   # the caption rule shows a short span's frames once each
                        assert len(set(row["images"])) == len(row["images"]) <= expected, f"{stage}.{job}"
                        continue
                    assert len(row["images"]) == expected, f"{stage}.{job}"
