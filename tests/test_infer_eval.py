"""Readers -> inference loops -> evaluation, with an oracle engine that answers the ground truth.

An oracle that knows the annotations must score (near) perfectly; anything less means the loops
and the evaluation disagree on a layout, a frame number, an id or a coordinate convention.
"""
from __future__ import annotations

import numpy as np
from layouts import write_crtrack, write_refer_kitti

from vptracker.boxes import CoordMap, render_trajectories, xywh_to_xyxy
from vptracker.datasets import load
from vptracker.infer import CallableEngine, run_task


def oracle(units_by_key, per_view_tracks):
    """Answers every request with the trajectories of the unit's annotated tracks (norm1000)."""
    def fn(request):
        views = units_by_key[request.audit["sequence"]]
        start, end = request.audit["frames"]
        trajectories = []
        for track_id in sorted({t.id for v in views for t in v.tracks}):
            traj = []
            for view in views:
                cmap = CoordMap("norm1000", view.width, view.height)
                track = per_view_tracks(view).get(track_id)
                for t in range(start, end):
                    visible = track is not None and track.visible[t]
                    traj.append(cmap.to_model(xywh_to_xyxy(track.boxes[t])) if visible else None)
            trajectories.append(traj)
        return render_trajectories(trajectories)
    return fn


def test_rmot_oracle_scores_perfectly_on_refer_kitti_layout(tmp_path):
    from vptracker.eval.rmot import evaluate_rmot

    n = 7
    labels = {f: {1: (4 + 2 * f, 5, 20, 12), 2: (50, 20 - f, 16, 14)} for f in range(n)}
    write_refer_kitti(tmp_path, "0005", n, labels, {"moving-cars": {f: [1, 2] for f in range(n)},
                                                   "left-car": {f: [1] for f in range(1, n)}})
    seqs = load("refer_kitti_v2", tmp_path, split="test")
    engine = CallableEngine(oracle({s.name: [s] for s in seqs}, lambda v: {t.id: t for t in v.tracks}))
    out = tmp_path / "results"
    run_task("omnipt_rmot", engine, seqs, out, {"family": "qwen2_5_vl", "frames_per_sample": 3}, progress=False)
    assert (out / "0005" / "left-car" / "predict.txt").is_file()
    result = evaluate_rmot(tmp_path, out, videos=("0005",))
    assert result["num_expressions"] == 2
    assert result["COMBINED"]["HOTA"] > 95 and result["COMBINED"]["IDSW"] == 0


def test_crmot_oracle_scores_perfectly_on_crtrack_layout(tmp_path):
    from vptracker.eval.crmot import evaluate_crmot

    n = 6
    rows = {view: [[f + 1, tid, x + f + k, y, 12, 16, 1, 1, 1] for f in range(n)
                   for tid, (x, y) in ((1, (5, 5)), (2, (40, 20)))] for k, view in enumerate(("View1", "View2"))}
    base = write_crtrack(tmp_path, "test", "Gate", rows, n, {"a man in red": [1], "two people": [1, 2]},
                         per_query_gt=True)
    seqs = load("crtrack", base, split="test")
    groups = {}
    for s in seqs:
        groups.setdefault(f"{s.scene}_{s.language}", []).append(s)
    for views in groups.values():
        views.sort(key=lambda v: v.view)
    engine = CallableEngine(oracle(groups, lambda v: {t.id: t for t in v.tracks}))
    out = tmp_path / "results"
    run_task("omnipt_crmot", engine, seqs, out, {"family": "qwen2_5_vl", "frames_per_sample": 6}, progress=False)
    result = evaluate_crmot(base / "gt_test", out)
    assert result["num_pairs"] == 2
    assert result["cvridf1"] == 100.0 and result["cvrma"] == 100.0


def test_sot_oracle_on_real_otb_frames_scores_perfectly(tmp_path, shared_data):
    from vptracker.boxes import render_vptracker
    from vptracker.eval.sot_eval import evaluate_sot
    from vptracker.infer.common import truncate

    seqs = [truncate(s, 25) for s in load("otb", shared_data / "otb")]
    by_name = {s.name: s for s in seqs}

    def fn(request):   # VPTracker answers in original-frame pixels (the released convention)
        seq = by_name[request.audit["sequence"]]
        return render_vptracker(xywh_to_xyxy(seq.tracks[0].boxes[request.audit["frame"]]))
    out = tmp_path / "sot"
    run_task("vptracker_sot", CallableEngine(fn), seqs, out, {"family": "qwen3_vl"}, progress=False)
    result = evaluate_sot(seqs, out, protocol="otb")
    # IoU 1 everywhere: every threshold but the last (IoU > 1) succeeds, 20 of 21
    assert np.isclose(result["auc"], 100 * 20 / 21) and result["precision"] == 100


def test_mot_oracle_scores_perfectly_on_motchallenge_layout(tmp_path):
    from layouts import write_mot

    from vptracker.eval.mot import evaluate_mot

    n = 8
    rows = [[f + 1, tid, x + 2 * f, y, 14, 20, 1, 1, 1] for f in range(n) for tid, (x, y) in ((1, (4, 4)), (2, (40, 20)))]
    rows += [[f + 1, 3, 20, 2, 10, 10, 1, 1, 1] for f in range(4, n)]          # enters midway: a new id
    write_mot(tmp_path / "dance", "val", "dancetrack0001", n, rows, size=(96, 64))
    seqs = load("dancetrack", tmp_path / "dance", split="val")
    engine = CallableEngine(mot_oracle({s.name: s for s in seqs}))
    out = tmp_path / "mot"
    run_task("omnipt_mot", engine, seqs, out, {"family": "qwen2_5_vl", "frames_per_sample": 4}, progress=False)
    result = evaluate_mot(tmp_path / "dance" / "val", out)
    assert result["COMBINED"]["HOTA"] > 95 and result["COMBINED"]["IDSW"] == 0


def mot_oracle(by_name):
    """The three MOT queries answered from the annotations, in the order the prompt gives."""
    from vptracker.boxes import parse_trajectory, render_trajectory
    from vptracker.prompts.texts import MOT_QUERY_DETECT, MOT_QUERY_NEW

    def fn(request):
        seq = by_name[request.audit["sequence"]]
        cmap = CoordMap("norm1000", seq.width, seq.height)
        start, end = request.audit["frames"]

        def box(track, t):
            return cmap.to_model(xywh_to_xyxy(track.boxes[t])) if track.visible[t] else None
        if request.prompt.endswith(MOT_QUERY_DETECT):
            return render_trajectory([box(t, start) for t in seq.tracks if t.visible[start]])
        if request.prompt.startswith(MOT_QUERY_NEW):
            fresh = [t for t in seq.tracks if not t.visible[start] and t.visible[start:end].any()]
            return render_trajectories([[box(t, f) for f in range(start, end)] for t in fresh]) if fresh else \
                "There are no objects."
        given = [p.box for p in parse_trajectory(request.prompt) if p.box is not None]  # not the note
        order = []
        for b in given:   # the prompt's first-frame boxes, matched back to the annotated tracks
            order.append(min(seq.tracks, key=lambda t: np.abs(np.subtract(box(t, start) or (1e9,) * 4, b)).sum()))
        return render_trajectories([[box(t, f) for f in range(start, end)] for t in order])
    return fn
