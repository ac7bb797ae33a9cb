"""Readers -> inference loops -> evaluation, with an oracle engine that answers the ground truth.

An oracle that knows the annotations must score (near) perfectly; anything less means the loops
and the evaluation disagree on a layout, a frame number, an id or a coordinate convention.
"""
from __future__ import annotations

from vptracker.boxes import CoordMap, render_trajectories, xywh_to_xyxy
from vptracker.datasets import load
from vptracker.datasets.fixtures import write_crtrack, write_refer_kitti
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
