"""`vptracker sweep`: the grid of each ablation table, stage prefixes trained once, resuming, seeds."""
from __future__ import annotations

import json

import pytest

from vptracker.config import ConfigError
from vptracker.sweep import run_sweep, toy
from vptracker.sweep.grid import stage_runs, sweep_rows
from vptracker.sweep.results import seed_summary


def _fake_stage(calls: list):
    """Stands in for the demo's train_stage: records (stage, start weights) and writes what a finished
    stage leaves (its manifest with status and output)."""
    def train_stage(cfg, model_dir, weights, stage, files, run_dir, echo, stream):
        calls.append((stage, str(weights), run_dir.name))
        output = run_dir / stage / "merged"
        output.mkdir(parents=True, exist_ok=True)
        (run_dir / stage / "manifest.json").write_text(json.dumps({"status": "complete", "output": str(output)}))
        return output
    return train_stage


def test_table6_rows_train_each_stage_prefix_once_and_a_resumed_sweep_trains_nothing(tmp_path, monkeypatch):
    from vptracker.demo import mot

    calls: list = []
    monkeypatch.setattr(mot, "train_stage", _fake_stage(calls))
    rows = [(r.key, r.stages) for r in sweep_rows("table6", (), "qwen3_vl_4b", 2)]
    done = mot.train_rows({}, tmp_path / "model", {}, tmp_path, print, None, rows)
    assert stage_runs(sweep_rows("table6", (), "qwen3_vl_4b", 2), 1) == (6, 12)
    assert len(calls) == 6   # s1; s1->s3; s1->s2; s1->s2->s3; s1->s3->s4; s1->s2->s3->s4
    assert [c[0] for c in calls].count("stage1_format_grpo") == 1
    runs = tmp_path / "runs"
    # each prefix starts from the weights of the prefix before it
    assert ("stage3_sft", str(runs / "from-s1" / "stage2_midtrain" / "merged"), "from-s1-s2") in calls
    assert ("stage4_iou_grpo", str(runs / "from-s1-s2" / "stage3_sft" / "merged"), "from-s1-s2-s3") in calls
    assert done["SFT+RL"][0] == runs / "from-s1-s3" / "stage4_iou_grpo" / "merged"
    assert done["SFT"][1]["stage3_sft"] == runs / "from-s1" / "stage3_sft"
    # resumed: every prefix is finished on disk
    calls.clear()
    assert mot.train_rows({}, tmp_path / "model", {}, tmp_path, print, None, rows) == done
    assert calls == []
    # a stage that did not finish (no complete manifest) is trained again, and only it
    (runs / "from-s1-s2-s3" / "stage4_iou_grpo" / "manifest.json").write_text(json.dumps({"status": "failed"}))
    mot.train_rows({}, tmp_path / "model", {}, tmp_path, print, None, rows)
    assert [c[0] for c in calls] == ["stage4_iou_grpo"]


def _summary(hota: float) -> dict:
    return {"task": "mot", "benchmark": "MOT17", "name": "x", "parse_rate": 90.0, "per_sequence": {},
            "COMBINED": {"HOTA": hota, "DetA": hota, "AssA": hota, "MOTA": hota, "IDF1": hota}}


def test_finished_rows_are_not_rerun_and_seeds_give_mean_and_spread(tmp_path, monkeypatch):
    from vptracker.eval.report import load_summaries, markdown_report

    out = tmp_path / "sweep"
    for i, row in enumerate(("SFT", "MT+SFT", "SFT+RL", "MT+SFT+RL")):
        for seed in range(2):
            path = seed_summary(out, row, seed)
            path.parent.mkdir(parents=True)
            path.write_text(json.dumps(_summary(10.0 * i + 2.0 * seed)))

    def refuse(*args, **kwargs):
        raise AssertionError("a finished row ran again")

    monkeypatch.setattr(toy, "run_rows", refuse)
    manifest = run_sweep("table6", ["quick=true", f"out={out}", "seeds=2", "tasks=[mot]"], echo=lambda line: None)
    assert list(manifest["rows"]) == ["SFT", "MT+SFT", "SFT+RL", "MT+SFT+RL"]
    entry = manifest["rows"]["MT+SFT"]
    assert entry["settings"]["stages"] == ["stage1_format_grpo", "stage2_midtrain", "stage3_sft"]
    assert entry["seeds"] == 2 and len(entry["per_seed"]) == 2 and entry["commit"]
    mean = json.loads((out / entry["summaries"][0]).read_text())
    assert mean["COMBINED"]["HOTA"] == pytest.approx(11.0) and mean["spread"]["HOTA"] == pytest.approx(2 ** 0.5)
    assert "| MT+SFT | s1 -> s2 -> s3 | qwen3_vl_4b | 2 | 11.00 ± 1.41 |" in (out / "table.md").read_text()
    # the report reads the manifest: one summary per row fills Table 6's MOT column
    report = markdown_report(load_summaries([str(out / "manifest.json")]))
    assert "11.00" in report
    # the same out with other settings is refused: its finished rows were made with these
    with pytest.raises(ConfigError, match="holds a sweep with other settings"):
        run_sweep("table6", ["quick=true", f"out={out}", "seeds=2", "frames=4", "tasks=[mot]"], echo=lambda line: None)


def test_rows_of_each_table_and_bad_keys():
    assert [r.preset for r in sweep_rows("table5", ("stage3_sft",), "x", 2)] == [
        "llava_next_8b", "internvl2_5_4b", "qwen2_vl_2b", "qwen2_5_vl_3b", "qwen2_5_vl_7b", "qwen2_5_vl_72b"]
    assert [r.frames for r in sweep_rows("table7", ("stage3_sft",), "x", 2)] == [2, 4, 8, 16, 32]
    with pytest.raises(ConfigError, match="rows=\\['64'\\] are not rows"):
        sweep_rows("table7", (), "x", 2, ["64"])
    with pytest.raises(ConfigError, match="unknown key"):
        run_sweep("table6", ["quick=true", "stage3_sft.max_stepz=2"], dry_run=True, echo=lambda line: None)


def test_table7_rows_answer_budget_grows_with_their_frames():
    """A 32-frame track answer is 16 times a 2-frame one: the toy rows' tracking budget and GRPO
    completions grow with the frames, so longer rows are not scored on answers cut at the demo's length."""
    from vptracker.demo import demo_config

    cfg = demo_config(False, ["task=omnipt_mot"])
    rows = sweep_rows("table7", tuple(cfg["stages"]), "qwen3_vl_4b", 2)
    by_frames = {r.frames: toy.group_config(cfg, r, 0) for r in rows}
    base = cfg["infer"]["max_tokens"]
    assert [by_frames[f]["infer"]["max_tokens"] for f in (2, 4, 8, 16, 32)] == [base * k for k in (1, 2, 4, 8, 16)]
    for stage in ("stage1_format_grpo", "stage4_iou_grpo"):
        assert by_frames[32][stage]["max_completion_length"] == 16 * cfg[stage]["max_completion_length"]
        assert by_frames[2][stage]["max_completion_length"] == cfg[stage]["max_completion_length"]
    lines: list[str] = []
    run_sweep("table7", ["rows=[2,32]"], dry_run=True, echo=lines.append)
    tracks = [line for line in lines if line.startswith("#   track:")]
    assert f"answers up to {base} tokens (GRPO completions: stage1_format_grpo 160, stage4_iou_grpo 160)" in tracks[0]
    assert f"answers up to {16 * base} tokens, captions {base} (GRPO completions: stage1_format_grpo 2560, " in tracks[1]


def test_table7_equal_images_gives_an_n_frame_row_base_over_n_of_the_sft_rows_and_steps():
    from vptracker.demo import demo_config

    cfg = demo_config(False, ["task=omnipt_mot", "sweep.equal_images=true"])
    rows = sweep_rows("table7", tuple(cfg["stages"]), "qwen3_vl_4b", 2)
    by = {r.frames: toy.group_config(cfg, r, 0) for r in rows}
    assert [by[f]["stage3_sft"]["max_steps"] for f in (2, 4, 8, 16, 32)] == [7600, 3800, 1900, 950, 475]
    assert [by[f]["prepare"]["samples"]["stage3_sft"] for f in (2, 32)] == [30400, 1900]
    assert by[32]["stage2_midtrain"]["max_steps"] == 125 and by[32]["prepare"]["samples"]["stage2_midtrain"] == 1000
    # the GRPO stages keep their steps; without the key every row trains the same steps
    assert by[32]["stage1_format_grpo"]["max_steps"] == cfg["stage1_format_grpo"]["max_steps"]
    plain = demo_config(False, ["task=omnipt_mot"])
    assert toy.group_config(plain, rows[-1], 0)["stage3_sft"]["max_steps"] == 7600


def test_a_resumed_row_tracks_only_the_tasks_without_a_score(tmp_path, monkeypatch):
    """A sweep killed in a row's caption loop resumes there: the row's MOT tracks are scored on disk,
    so only the caption loop runs again."""
    from vptracker.demo import demo_config

    cfg = demo_config(True, ["task=omnipt_mot"])
    row = sweep_rows("table7", ("stage3_sft",), "qwen3_vl_4b", 2, ["2"])[0]
    made = {"data": str(tmp_path / "data"), "models": str(tmp_path / "model")}

    def once(marker, make, *args):   # data, model and rows made by an earlier run
        if marker.name == "text_done.json":
            return {"smot": str(tmp_path)} if marker.parent.name == "data" else {"stage3_sft": []}
        return made.get(marker.parent.name) or made.get(marker.parent.parent.name) or {"stage3_sft": []}

    tracked, captioned = [], []
    monkeypatch.setattr(toy, "_once", once)
    monkeypatch.setattr(toy, "load", lambda *args: [])
    monkeypatch.setattr(toy, "train_rows", lambda cfg, model, files, out, echo, stream, rows: {
        key: (tmp_path / "weights", {}) for key, _ in rows})
    monkeypatch.setattr(toy.mot, "track", lambda cfg, weights, test, results: tracked.append(results))
    monkeypatch.setattr(toy, "write_summary", lambda root, results, path, name: path.parent.mkdir(parents=True)
                        or path.write_text(json.dumps(_summary(1.0))))
    monkeypatch.setattr(toy.toy_text, "track_and_score", lambda *args: captioned.append(args[-1]))
    for _ in range(2):   # the second time the MOT score is on disk: the caption loop alone runs again
        toy.run_rows(cfg, [row], 1, tmp_path, lambda line: None, None, lambda r, s: True, ("mot", "smot"))
    assert len(tracked) == 1 and captioned == ["2", "2"]
