"""Tracking-loop logic on a deterministic scripted engine: every rule a user relies on."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image

from vptracker.boxes import render_bbox, render_qwen_box, render_trajectory, render_vptracker
from vptracker.datasets.base import Sequence, Track
from vptracker.infer import CallableEngine, TaskOptions, run_batched, run_task
from vptracker.infer.engine import Request
from vptracker.infer.multi import OmniMOT, OmniReferring
from vptracker.infer.sot import OmniSOTTracker, VPTrackerSOTTracker
from vptracker.models.families import coord_map
from vptracker.prompts.texts import MOT_QUERY_DETECT, MOT_QUERY_NEW, MOT_QUERY_TRACK, vptracker_prompt

W, H = 96, 64


def make_sequence(root, name="seq", n=6, box=(20, 10, 16, 12), language="a red square", with_box=True, **kw):
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    frames = []
    for t in range(n):
        path = folder / f"{t + 1:04d}.png"
        Image.new("RGB", (W, H), (10 * t % 255, 40, 90)).save(path)
        frames.append(str(path))
    tracks = [Track(1, np.tile(box, (n, 1)), np.ones(n, bool))] if with_box else []
    return Sequence(name, "test", frames, W, H, tracks, language=language, **kw)


def answers(*texts):
    """An engine answering each sequence's calls with ``texts`` in order (then garbage)."""
    state: dict[str, int] = {}

    def fn(request: Request) -> str:
        key = request.audit.get("sequence", "")
        i = state.get(key, 0)
        state[key] = i + 1
        return texts[i] if i < len(texts) else "garbage"
    return CallableEngine(fn)


def vp(box):
    return render_vptracker(box)


# VPTracker's rules are the released ones, tested against the released code in tests/test_released_vptracker.py
OPTS = TaskOptions(family="qwen2_5_vl", box_scale="abs")


def run_one(tracker, engine):
    run_batched(engine, [tracker], concurrency=4)
    return tracker


def test_vptracker_keeps_previous_box_on_unusable_answers(tmp_path):
    seq = make_sequence(tmp_path, n=9)
    script = [vp((30, 12, 50, 30)),                              # valid: taken
              '```json\n{"visible": "no", "bbox": [1, 1, 20, 20]}\n```',  # not visible: keep
              "I cannot see it",                                 # garbage: keep
              vp((50, 30, 40, 20)),                              # inverted: keep
              vp((200, 100, 300, 200)),                          # outside the image: keep
              vp((80, 50, 120, 90)),                             # partly outside: keep (released check_bbox)
              "<None>",                                          # OmniPT's absent token: keep
              vp((40, 20, 40, 20))]                              # zero-size: taken, as released
    tracker = run_one(VPTrackerSOTTracker(seq, OPTS), answers(*script))
    got = tracker.result()
    assert got.shape == (9, 4)
    np.testing.assert_allclose(got[0], (20, 10, 16, 12))        # first line: the initial box
    np.testing.assert_allclose(got[1], (30, 12, 20, 18))
    for t in range(2, 8):
        np.testing.assert_allclose(got[t], got[1])
    np.testing.assert_allclose(got[8], (40, 20, 0, 0))
    assert len(tracker.responses) == 8 and tracker.responses[2]["answer"] == "I cannot see it"


def test_vptracker_request_is_the_released_prompt_template_and_outline(tmp_path):
    seq = make_sequence(tmp_path, n=2, language="  a red square ")
    tracker = VPTrackerSOTTracker(seq, OPTS)
    request = tracker.next_request()
    assert request.prompt == vptracker_prompt("  a red square ", "red", visual_prompt=True)   # not stripped
    template, search = request.images
    # template: square of side ceil(sqrt(16*12)*2) = 28 around the box centre (28, 16)
    assert request.audit["template_region"] == [14, 2, 42, 30]
    assert template.size == (28, 28)
    # search: red outline of 4x the previous box about its centre: (28-32, 16-24, 28+32, 16+24) raised to 0,
    # drawn by PIL with x2, y2 inclusive
    assert request.audit["outline"] == [0, 0, 60, 40]
    px = np.asarray(search)
    assert tuple(px[39, 30]) == (255, 0, 0) and tuple(px[20, 59]) == (255, 0, 0)
    assert tuple(px[20, 30]) != (255, 0, 0)


def test_vptracker_maps_the_family_convention_back_to_frame_pixels(tmp_path):
    seq = make_sequence(tmp_path, n=2)
    opts = TaskOptions(family="qwen2_vl")           # 0-1000 relative coordinates
    cmap = coord_map("qwen2_vl", W, H)
    model_box = cmap.to_model((48, 16, 72, 40))
    tracker = run_one(VPTrackerSOTTracker(seq, opts), answers(vp(model_box)))
    np.testing.assert_allclose(tracker.result()[1], (48, 16, 24, 24), atol=0.1)


def test_vptracker_language_only_initialisation(tmp_path):
    seq = make_sequence(tmp_path, n=3, with_box=False)
    tracker = VPTrackerSOTTracker(seq, OPTS)
    first = tracker.next_request()
    assert first.prompt == vptracker_prompt("a red square", visual_prompt=False)
    assert [im.size for im in first.images] == [(W, H), (W, H)]
    run_one(tracker, answers(vp((10, 10, 30, 20)), "garbage", vp((12, 10, 32, 20))))
    np.testing.assert_allclose(tracker.result(), [(10, 10, 20, 10), (10, 10, 20, 10), (12, 10, 20, 10)])
    # an unusable first answer starts from the whole frame
    other = run_one(VPTrackerSOTTracker(make_sequence(tmp_path, "b", n=2, with_box=False), OPTS), answers("??"))
    np.testing.assert_allclose(other.result()[0], (0, 0, W, H))


def test_batched_loop_sends_one_request_per_active_sequence_per_call(tmp_path):
    seqs = [make_sequence(tmp_path, f"s{i}", n=3 + i) for i in range(5)]
    engine = CallableEngine(lambda r: vp((20, 10, 36, 22)))
    trackers = [VPTrackerSOTTracker(s, OPTS) for s in seqs]
    finished = []
    stats = run_batched(engine, trackers, concurrency=3, on_finish=lambda t: finished.append(t.name))
    assert max(engine.batch_sizes) == 3
    assert stats.requests == sum(len(s.frames) - 1 for s in seqs)
    assert engine.calls < stats.requests                 # batched, not one call per request
    assert sorted(finished) == sorted(s.name for s in seqs)
    assert stats.frames == sum(len(s.frames) for s in seqs)


def test_omnipt_sot_rounds_share_a_frame_and_carry_the_prior(tmp_path):
    seq = make_sequence(tmp_path, n=7)
    opts = TaskOptions(family="qwen2_5_vl", box_scale="abs", frames_per_sample=4)
    tracker = OmniSOTTracker(seq, opts)
    first = tracker.next_request()
    assert first.images == seq.frames[0:4]
    assert "Track the object located at <bbox>20,10,16,12</bbox> in the first image." in first.prompt
    tracker.update("<bbox>20,10,16,12</bbox><bbox>22,10,16,12</bbox><None><bbox>900,900,5,5</bbox>")
    second = tracker.next_request()
    assert second.images == seq.frames[3:7]                 # starts on the previous round's last frame
    assert "located at <bbox>22,10,16,12</bbox>" in second.prompt   # <None>, outside: previous box kept
    tracker.update("<bbox>22,10,16,12</bbox><bbox>30,20,10,10</bbox>")  # short answer: the rest kept
    assert tracker.next_request() is None
    np.testing.assert_allclose(tracker.result()[4:], [(30, 20, 10, 10)] * 3)
    assert len(tracker.result()) == 7


def test_omnipt_sot_in_the_qwen_grammar_recovers_the_scripted_boxes(tmp_path):
    seq = make_sequence(tmp_path, n=7)
    opts = TaskOptions(family="qwen2_5_vl", box_scale="abs", frames_per_sample=4, grammar="qwen")
    script = [render_trajectory([(20, 10, 36, 22), (22, 10, 38, 22), None, (24, 12, 40, 24)], grammar="qwen"),
              render_trajectory([(24, 12, 40, 24), (30, 20, 40, 30), (31, 20, 41, 30), None], grammar="qwen")]
    prompts = []

    def engine(request: Request) -> str:
        prompts.append(request.prompt)
        return script[len(prompts) - 1]

    tracker = run_one(OmniSOTTracker(seq, opts), CallableEngine(engine))
    np.testing.assert_allclose(tracker.result(), [(20, 10, 16, 12), (22, 10, 16, 12), (22, 10, 16, 12),
                                                  (24, 12, 16, 12), (30, 20, 10, 10), (31, 20, 10, 10),
                                                  (31, 20, 10, 10)])
    # each round's prior is written in the qwen grammar: the last box of the previous round
    priors = [(20, 10, 36, 22), (24, 12, 40, 24)]
    assert len(prompts) == 2 and all(render_qwen_box(b) in p for b, p in zip(priors, prompts))
    assert not any("<bbox>" in p for p in prompts)
    with pytest.raises(ValueError, match="grammar='xyxy'"):
        TaskOptions(grammar="xyxy")


def mot_answer(*trajectories):
    return ", ".join(f"the trajectory of the {n} people are: {render_trajectory(t)}"
                     for n, t in zip(("first", "second", "third"), trajectories))


def test_omnipt_mot_keeps_ids_across_rounds_and_numbers_new_objects(tmp_path):
    seq = make_sequence(tmp_path, n=5)
    opts = TaskOptions(family="qwen2_5_vl", box_scale="abs", frames_per_sample=3, redetect=False)
    tracker = OmniMOT(seq, opts)
    a, b, c = (10, 10, 20, 20), (50, 30, 70, 50), (60, 5, 80, 20)
    req = tracker.next_request()
    assert req.prompt.endswith(MOT_QUERY_DETECT) and len(req.images) == 3
    tracker.update(render_bbox(a) + render_bbox(b))
    req = tracker.next_request()
    assert req.prompt.startswith(MOT_QUERY_TRACK) and render_bbox(a) + render_bbox(b) in req.prompt
    assert [m["role"] for m in req.messages] == ["user", "assistant", "user"]
    tracker.update(mot_answer([a, a, a], [b, b, None]))
    req = tracker.next_request()
    assert req.prompt.startswith(MOT_QUERY_NEW) and len(req.messages) == 5
    tracker.update(mot_answer([None, c, c]))               # a new object from the 2nd frame: id 3
    # round 2: the prior (tracks alive on frame 2) answers the first query without a model call
    req = tracker.next_request()
    assert req.prompt.startswith(MOT_QUERY_TRACK) and req.images == seq.frames[2:5]
    assert req.messages[1] == {"role": "assistant", "content": render_bbox(a) + render_bbox(c)}
    tracker.update(mot_answer([a, a, None], [c, c, c]))
    tracker.next_request()
    tracker.update("There are no objects.")
    assert tracker.next_request() is None
    rows = tracker.rows()
    ids_by_frame = {}
    for frame, track_id, _ in rows:
        ids_by_frame.setdefault(frame, []).append(track_id)
    assert ids_by_frame == {1: [1, 2], 2: [1, 2, 3], 3: [1, 3], 4: [1, 3], 5: [3]}


def test_rmot_and_crmot_associate_ids_across_rounds_and_views(tmp_path):
    seq = make_sequence(tmp_path, n=5, frame_ids=[0, 1, 2, 3, 4])
    opts = TaskOptions(family="qwen2_5_vl", box_scale="abs", frames_per_sample=3)
    tracker = OmniReferring("vid/expr", [seq], "the cars", opts)
    a, b = (10, 10, 20, 20), (50, 30, 70, 50)
    req = tracker.next_request()
    assert "Track objects that meet the following descriptions: the cars" in req.prompt
    tracker.update(mot_answer([a, a, a], [b, b, b]))
    tracker.next_request()
    tracker.update(mot_answer([b, b, b], [None, a, a], [a, a, a]))   # order changed: ids follow the boxes
    assert tracker.next_request() is None
    rows = tracker.rows(0, image_index=True)
    assert {(f, i) for f, i, box in rows if box == b} == {(1, 2), (2, 2), (3, 2), (4, 2), (5, 2)}
    assert {i for f, i, box in rows if box == a and f >= 4} == {1, 3}    # the duplicate gets a new id

    views = [make_sequence(tmp_path / f"v{k}", n=4, view=f"View{k}", scene="S") for k in (1, 2)]
    cr = OmniReferring("S_man", views, "a man", TaskOptions(family="qwen2_5_vl", box_scale="abs",
                                                              frames_per_sample=4))
    req = cr.next_request()
    assert req.prompt.startswith("There are two views of the same scene: the first view are <image><image>")
    assert req.images == views[0].frames[0:2] + views[1].frames[0:2]
    cr.update(mot_answer([a, a, b, b]))                      # one person, seen in both views
    while cr.next_request() is not None:
        cr.update(mot_answer([a, a, b, b]))
    assert {i for _, i, _ in cr.rows(0)} == {i for _, i, _ in cr.rows(1)} == {1}


def test_run_task_writes_every_task_s_files(tmp_path):
    seqs = [make_sequence(tmp_path / "data", f"s{i}", n=4) for i in range(2)]
    engine = CallableEngine(lambda r: "A man walks." if "Describe" in r.prompt else "<bbox>20,10,16,12</bbox>" * 4)
    out = tmp_path / "out"
    for task in ("vptracker_sot", "omnipt_sot", "omnipt_mot", "omnipt_caption"):
        run_task(task, engine, seqs, out / task, {"box_scale": "abs", "family": "qwen2_5_vl"}, progress=False)
    assert (out / "vptracker_sot" / "s0.txt").read_text().splitlines()[0] == "20,10,16,12"
    assert len((out / "omnipt_sot" / "s1.txt").read_text().splitlines()) == 4
    assert re.match(r"1,1,20\.00,10\.00,16\.00,12\.00,1,-1,-1,-1", (out / "omnipt_mot" / "s0.txt").read_text())
    captions = json.loads((out / "omnipt_caption" / "captions.json").read_text())
    assert captions["s0"] == {"video_caption": "A man walks.", "instance_captions": {"1": "A man walks."}}
    lines = (out / "vptracker_sot" / "responses.jsonl").read_text().splitlines()
    assert len(lines) == 6 and {json.loads(x)["sequence"] for x in lines} == {"s0", "s1"}


def test_engine_geometry_must_match_the_task_options(tmp_path):
    engine = CallableEngine(lambda r: "")
    engine.family, engine.min_pixels, engine.max_pixels = "qwen3_vl", 3136, 50176
    with pytest.raises(ValueError, match="family"):
        run_task("vptracker_sot", engine, [make_sequence(tmp_path)], tmp_path / "o", TaskOptions(family="qwen2_vl"),
                 progress=False)


def test_async_loop_writes_the_same_files_as_the_batched_loop(tmp_path):
    seqs = [make_sequence(tmp_path / "data", f"s{i}", n=3 + i) for i in range(4)]

    def fn(request):  # depends on the request only, so both loops must agree
        t = request.audit.get("frame", 0)
        return vp((20 + t, 10, 36 + t, 22)) if t % 2 else "garbage"
    for loop in ("batched", "async"):
        run_task("vptracker_sot", CallableEngine(fn), seqs, tmp_path / loop, OPTS, loop=loop, concurrency=3,
                 progress=False)
    for s in seqs:
        assert (tmp_path / "async" / f"{s.name}.txt").read_text() == (tmp_path / "batched" / f"{s.name}.txt").read_text()
    assert (tmp_path / "async" / "responses.jsonl").read_bytes() == (tmp_path / "batched" / "responses.jsonl").read_bytes()


def test_smot_captions_follow_the_predicted_tracks(tmp_path):
    seqs = [make_sequence(tmp_path / "data", "s0", n=4)]
    out = tmp_path / "smot"

    def fn(request):
        if "Describe this person" in request.prompt:
            return f"person at {request.prompt.split('There is a people at ')[1].split(' in the first')[0]}"
        if "Describe" in request.prompt:
            return "Two people."
        if MOT_QUERY_NEW in request.prompt:
            return mot_answer([None, (60, 30, 80, 50), (60, 30, 80, 50)])
        return render_bbox((20, 10, 36, 22)) if MOT_QUERY_TRACK not in request.prompt else \
            mot_answer([(20, 10, 36, 22)] * 4)
    run_task("omnipt_mot", CallableEngine(fn), seqs, out, OPTS, progress=False)
    run_task("omnipt_caption", CallableEngine(fn), seqs, out, {**OPTS.__dict__, "tracks_from": str(out)},
             progress=False)
    assert json.loads((out / "video_captions.json").read_text()) == {"s0": "Two people."}
    assert json.loads((out / "instance_captions.json").read_text()) == {
        "s0/1": "person at <bbox>20,10,16,12</bbox>", "s0/2": "person at <bbox>60,30,20,20</bbox>"}
    with pytest.raises(FileNotFoundError, match="omnipt_mot"):
        run_task("omnipt_caption", CallableEngine(fn), seqs, tmp_path / "x",
                 {**OPTS.__dict__, "tracks_from": str(tmp_path / "none")}, progress=False)


def test_a_finished_sequence_s_slot_is_refilled_in_the_same_step(tmp_path):
    seqs = [make_sequence(tmp_path, f"s{i}", n=n) for i, n in enumerate((2, 4, 4, 4))]
    engine = CallableEngine(lambda r: "garbage")
    run_batched(engine, [VPTrackerSOTTracker(s, OPTS) for s in seqs], concurrency=2)
    assert engine.batch_sizes == [2, 2, 2, 2, 1, 1]   # never a step below the limit while sequences wait
