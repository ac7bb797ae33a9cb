"""Inputs that reach past their bounds, on the official layouts: annotation paths that leave the
dataset root or name missing images, referring answers with hundreds of trajectories, link loops
inside dataset folders, and CRMOT result files written as x,y,w,h instead of corners.
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import layouts as fx
import pytest
from test_readers import FAMILIES, summary

from vptracker.cli import main
from vptracker.datasets import DatasetFormatError, load
from vptracker.infer import CallableEngine, run_task

# ------------------------------------------------------------------ paths from annotation files


def _synth_pedes_with(root: Path, file_path: str) -> Path:
    fx.write_synth_pedes(root, [(1, "a man in a red coat"), (2, "a woman with a bag")])
    ann = root / "synthpedes_dataset.json"
    entries = json.loads(ann.read_text())
    entries[1]["file_path"] = file_path
    ann.write_text(json.dumps(entries))
    return ann


@pytest.mark.parametrize("file_path", ["../../../../../etc/hostname", "/etc/hostname", "Part1/../../outside.jpg"])
def test_a_synth_pedes_path_that_leaves_the_root_is_refused(tmp_path, file_path):
    ann = _synth_pedes_with(tmp_path, file_path)
    with pytest.raises(DatasetFormatError) as err:
        load("synth_pedes", tmp_path)
    assert str(err.value).startswith(f'{ann}: expected entry 1 with "file_path" a path inside {tmp_path}, ')
    assert file_path in str(err.value) and "\n" not in str(err.value)


def test_a_synth_pedes_entry_with_a_missing_image_is_one_error_or_counted_when_allowed(tmp_path):
    ann = _synth_pedes_with(tmp_path, "Part1/2/missing.jpg")
    with pytest.raises(DatasetFormatError, match=rf'^{ann}: expected entry 1 with "file_path" naming an existing '
                       r"image file \(.*missing\.jpg is missing\)$"):
        load("synth_pedes", tmp_path)
    with pytest.warns(UserWarning, match=r"skipped 1 entries whose image is missing .* e\.g\. entry 1"):
        seqs = load("synth_pedes", tmp_path, allow_missing=True)
    assert [s.name for s in seqs] == ["1"]


@pytest.mark.parametrize("file_path", ["Part1/2/missing.jpg", "../../../../../etc/hostname"])
def test_prepare_reports_a_bad_synth_pedes_entry_in_one_line_and_exits_2(tmp_path, capsys, file_path):
    """Before: a FileNotFoundError (missing) or UnidentifiedImageError (/etc/hostname) traceback, exit 1."""
    ann = _synth_pedes_with(tmp_path / "data", file_path)
    code = main(["prepare", "--dataset", "synth_pedes", "--root", str(tmp_path / "data"), "--task", "pretext_clip",
                 "--out", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"vptracker prepare: error: {ann}: expected entry 1 ") and err.count("\n") == 1


def test_a_crtrack_query_whose_gt_folder_leaves_the_root_is_refused(tmp_path):
    files = FAMILIES["crtrack"].build(tmp_path)
    queries = files["queries"]
    queries.write_text(queries.read_text() + "Gate2_../../../../../etc:1\n")
    with pytest.raises(DatasetFormatError, match=rf"^{queries}:3: expected a query whose ground-truth folder is a "
                       r"path inside .*gt_test, got 'Gate2_\.\./\.\./\.\./\.\./\.\./etc'$"):
        load("crtrack", tmp_path, split="test")


def test_a_refer_kitti_video_name_that_leaves_the_root_is_refused(tmp_path):
    FAMILIES["refer_kitti_v2"].build(tmp_path)
    with pytest.raises(DatasetFormatError, match=r"a video \(videos option\) naming a path inside .*, got '\.\./\.\.'"):
        load("refer_kitti_v2", tmp_path, videos=["../.."])


# ------------------------------------------------------------------ referring answers: capped

HEADINGS = 500


def _many_trajectories(request, n_images: int) -> str:
    """500 trajectory headings, each with its own box on every image of the request."""
    return ", ".join(f"the trajectory of the {i + 1}th people are: " +
                     "".join(f"<bbox>{i % 60},{(i // 60) % 30},6,6</bbox>" for _ in range(n_images))
                     for i in range(HEADINGS))


def _ids(out: Path) -> tuple[int, int]:
    """(distinct ids, rows) over every result file under ``out``."""
    ids, rows = set(), 0
    for path in out.rglob("*.txt"):
        for line in path.read_text().splitlines():
            ids.add((path.parent.name, int(line.split(",")[1])))
            rows += 1
    return len(ids), rows


def _referring(tmp_path, task):
    labels = {0: {3: (8, 4, 16, 8)}}
    if task == "omnipt_rmot":
        fx.write_refer_kitti(tmp_path, "0005", 7, labels, {"cars": {0: [3]}})
        return load("refer_kitti_v2", tmp_path, split="test")
    rows = fx.mot_rows({1: {1: (1, 1, 5, 9)}})
    fx.write_crtrack(tmp_path, "test", "Gate2", {"View1": rows, "View2": rows}, 7, {"a man": [1]}, per_query_gt=True)
    return load("crtrack", tmp_path, split="test")


@pytest.mark.parametrize("task", ["omnipt_rmot", "omnipt_crmot"])
def test_a_referring_answer_with_500_trajectories_adds_at_most_max_objects_per_round(tmp_path, task, caplog):
    """7 frames; 3 images per round (RMOT: 3 rounds) or 2 per view (CRMOT, 2 views: 6 rounds).
    Uncapped (as before) every heading became an id; capped, at most max_objects per round."""
    seqs = _referring(tmp_path / "data", task)
    engine = CallableEngine(lambda r: _many_trajectories(r, len(r.images)))
    opts = {"family": "qwen2_5_vl", "box_scale": "abs", "frames_per_sample": 3 if task == "omnipt_rmot" else 4}
    run_task(task, engine, seqs, tmp_path / "uncapped", {**opts, "max_objects": 10 ** 6}, progress=False)
    uncapped_ids, uncapped_rows = _ids(tmp_path / "uncapped")
    with caplog.at_level("WARNING"):
        run_task(task, engine, seqs, tmp_path / "capped", {**opts, "max_objects": 40}, progress=False)
    ids, rows = _ids(tmp_path / "capped")
    rounds = 3 if task == "omnipt_rmot" else 6      # CRMOT: 2 frames per view and round
    assert uncapped_ids >= HEADINGS and ids <= 40 * rounds, (uncapped_ids, ids)   # ids are shared across views
    assert rows < uncapped_rows / 10, (rows, uncapped_rows)
    left_out = rounds * (HEADINGS - 40)
    assert f"{left_out} trajectories beyond max_objects=40 left out" in caplog.text
    print(task, "ids before/after:", uncapped_ids, ids, "rows before/after:", uncapped_rows, rows)


# ------------------------------------------------------------------ link loops in dataset folders

# family -> (folder holding the loop, relative to the layout's root; where it points)
LOOPS = {"tnl2k": ("train", "."), "lasot": ("bird", ".."), "otb": (".", "."), "mot17": ("train", "."),
         "bensmot": ("train/dancing", ".."), "crtrack": ("CRTrack_In-domain/images/test", "."),
         "refer_kitti_v2": ("expression", ".")}


@pytest.mark.parametrize("family", sorted(LOOPS))
def test_a_link_loop_in_a_dataset_folder_is_left_out_and_named_once(tmp_path, family):
    """Before: CRTrack refused the loop as a malformed sequence folder; the others read into it."""
    clean, looped = tmp_path / "clean", tmp_path / "looped"
    FAMILIES[family].build(clean)
    FAMILIES[family].build(looped)
    folder, target = LOOPS[family]
    os.symlink(target, looped / folder / "loop")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        seqs = FAMILIES[family].read(looped)
    named = [str(w.message) for w in caught if "(a loop, not a sequence)" in str(w.message)]
    assert len(named) == 1 and f"{looped / folder}: left out loop:" in named[0], named
    assert summary(seqs, looped) == summary(FAMILIES[family].read(clean), clean)


@pytest.mark.parametrize("where", ["test/loop", "test/seqA/loop"])
def test_tnl2k_evaluation_does_not_walk_into_a_link_loop(tmp_path, capsys, where):
    """Before: the loop made ``*/*/groundtruth.txt`` match, the folder was read as LaSOT and the
    error named ``seqA/loop/full_occlusion.txt``."""
    boxes = [(10, 8, 20, 16), (12, 9, 20, 16), (14, 10, 18, 15)]
    fx.write_tnl2k(tmp_path / "tnl2k", "test", "seqA", boxes, "a green car")
    os.symlink(".", tmp_path / "tnl2k" / where)
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "seqA.txt").write_text("".join(",".join(map(str, b)) + "\n" for b in boxes))
    code = main(["eval", "sot", "--protocol", "ostrack", "--gt-root", str(tmp_path / "tnl2k" / "test"),
                 "--results", str(tmp_path / "results"), "--out", str(tmp_path / "out"), "--no-plots"])
    assert code == 0, capsys.readouterr().err
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["num_sequences"] == 1


# ------------------------------------------------------------------ CRMOT results as x,y,w,h

def _crmot_results(tmp_path, as_xywh: bool) -> tuple[Path, Path]:
    """Ground truth in the CRTrack gt_test layout; results = the gt boxes as corners (or x,y,w,h)."""
    v1 = fx.mot_rows({1: {f: (20 + 3 * f, 5, 8, 12) for f in range(1, 6)}, 2: {f: (40, 20, 6, 10) for f in range(1, 6)}})
    v2 = fx.mot_rows({1: {f: (30, 25 - f, 8, 12) for f in range(1, 6)}})
    base = fx.write_crtrack(tmp_path / "data", "test", "Gate2", {"View1": v1, "View2": v2}, 5, {"people walking": [1, 2]},
                            per_query_gt=True)
    results = tmp_path / "results" / "Gate2_people walking"
    results.mkdir(parents=True)
    for view, rows in (("View1", v1), ("View2", v2)):
        lines = [f"{int(r[0])},{int(r[1])},{r[2]},{r[3]},{r[4] if as_xywh else r[2] + r[4]},"
                 f"{r[5] if as_xywh else r[3] + r[5]},1,-1,-1,-1\n" for r in rows]
        (results / f"{view}.txt").write_text("".join(lines))
    return base / "gt_test", tmp_path / "results"


def test_crmot_results_written_as_xywh_are_named_with_their_count_and_refused_when_strict(tmp_path, capsys):
    from vptracker.eval.crmot import evaluate_crmot

    gt, results = _crmot_results(tmp_path, as_xywh=True)
    with pytest.warns(UserWarning, match=r"2 CRMOT prediction files have rows with x2 < x1 or y2 < y1 \(15 of 15 rows\), "
                      r"e\.g\. .*View1\.txt: 10 of 10"):
        scored = evaluate_crmot(gt, results)
    assert [(Path(f["file"]).name, f["inverted_rows"], f["rows"]) for f in scored["not_corners"]] == \
           [("View1.txt", 10, 10), ("View2.txt", 5, 5)]
    view1 = results / "Gate2_people walking" / "View1.txt"
    with pytest.raises(DatasetFormatError, match=rf"^{view1}: expected x1,y1,x2,y2 corners .* 10 of 10 rows are not"):
        evaluate_crmot(gt, results, strict=True)
    code = main(["eval", "crmot", "--gt-root", str(gt), "--results", str(results), "--out", str(tmp_path / "o"),
                 "--strict"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"vptracker eval crmot: {view1}: expected x1,y1,x2,y2") and err.count("\n") == 1


def test_crmot_results_written_as_corners_score_without_a_note(tmp_path):
    from vptracker.eval.crmot import evaluate_crmot

    gt, results = _crmot_results(tmp_path, as_xywh=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scored = evaluate_crmot(gt, results, strict=True)
    assert scored["not_corners"] == [] and scored["cvridf1"] == pytest.approx(100.0)
