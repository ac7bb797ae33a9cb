"""`vptracker sweep table5` at smoke size: all seven model presets (the paper's six and Qwen3-VL 4B)
each train stage 3 on the MOT demo's synthetic rows with a tiny model of the preset's family, track
the held-out sequence with the MOT loop and are scored, into one table and manifest."""
from __future__ import annotations

import json

import pytest

from vptracker.models.families import get_family
from vptracker.sweep import run_sweep
from vptracker.sweep.grid import model_presets
from vptracker.sweep.toy import preset_family
from vptracker.train import last_checkpoint

PRESETS = ("llava_next_8b", "internvl2_5_4b", "qwen2_vl_2b", "qwen2_5_vl_3b", "qwen2_5_vl_7b", "qwen2_5_vl_72b",
           "qwen3_vl_4b")


@pytest.mark.slow
def test_table5_sweep_runs_all_seven_presets(tmp_path):
    assert sorted(PRESETS) == model_presets()
    out = tmp_path / "table5"
    lines: list[str] = []
    manifest = run_sweep("table5", ["quick=true", f"out={out}", "stages=[stage3_sft]", "stage3_sft.max_steps=2",
                                    f"rows=[{','.join(PRESETS)}]"], echo=lines.append)
    assert list(manifest["rows"]) == list(PRESETS)
    for preset in PRESETS:
        entry = manifest["rows"][preset]
        assert entry["settings"] == {"stages": ["stage3_sft"], "model_preset": preset, "frames": 2}
        summary = json.loads((out / entry["summaries"][0]).read_text())
        assert summary["task"] == "mot" and 0 <= summary["COMBINED"]["HOTA"] <= 100
        family = preset_family(preset)
        run = out / "groups" / f"{preset}-f2-seed0" / "runs" / "from-base" / "stage3_sft" / "train"
        args = json.loads((last_checkpoint(run) / "args.json").read_text())
        model_type = json.loads((out / "models" / f"{family}-seed0" / "model" / "config.json").read_text())["model_type"]
        assert args["model_type"] == get_family(family).swift_names(model_type)[0], preset
    table = (out / "table.md").read_text()
    assert all(f"| {p} | s3 | {p} | 2 |" in table for p in PRESETS)
    # resumed: nothing runs again
    lines.clear()
    run_sweep("table5", ["quick=true", f"out={out}", "stages=[stage3_sft]", "stage3_sft.max_steps=2",
                         f"rows=[{','.join(PRESETS)}]"], echo=lines.append)
    assert "0 to run" in lines[0]
