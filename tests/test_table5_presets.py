"""OmniPT Table 5 on tiny models: every model preset runs prepare -> one SFT step -> inference -> evaluation.

The seven presets (Qwen2-VL 2B, Qwen2.5-VL 3B / 7B / 72B, Qwen3-VL 4B, InternVL2.5 4B, LLaVA-NeXT 8B)
each train one LoRA step of stage 3 (the real stage config, its preset, the tiny CPU profile) on rows
that ``vptracker prepare`` writes from real OTB frames and boxes, on a tiny random model of the
preset's family (one per family, built once by conftest's ``tiny_model_factory``). The trained
checkpoint then tracks the same sequences through ``vptracker infer`` and ``vptracker eval sot``
scores the result files.
A random model tracks nothing, so the numbers are not asserted, only that every stage ran on the
family's own swift model type and template and wrote what the next one reads.

The refusals that belong to the families are here too: the CLIP-style phase for a family it cannot
train, and rows whose visual prompt or crops a tiling family's template would ignore.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from vptracker.models.families import get_family
from vptracker.train.stages import CONFIG_DIR, StageConfigError

PRESETS = ("qwen2_vl_2b", "qwen2_5_vl_3b", "qwen2_5_vl_7b", "qwen2_5_vl_72b", "qwen3_vl_4b", "internvl2_5_4b",
           "llava_next_8b")
FRAMES = 8          # frames kept of each real OTB sequence
ROUND = 3           # frames per sample, in training rows and inference rounds


def _family(preset: str) -> str:
    return yaml.safe_load((CONFIG_DIR / "models" / f"{preset}.yaml").read_text())["family"]


@pytest.fixture(scope="module")
def otb_root(shared_data, tmp_path_factory) -> Path:
    """The first frames of the three real OTB sequences, in OTB's own layout, with their boxes."""
    root = tmp_path_factory.mktemp("otb")
    for seq in sorted(p for p in (shared_data / "otb").iterdir() if (p / "groundtruth_rect.txt").is_file()):
        (root / seq.name / "img").mkdir(parents=True)
        for frame in sorted((seq / "img").iterdir())[:FRAMES]:
            shutil.copy(frame, root / seq.name / "img" / frame.name)
        lines = (seq / "groundtruth_rect.txt").read_text().splitlines()[:FRAMES]
        (root / seq.name / "groundtruth_rect.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="module")
def prepared(otb_root, tmp_path_factory):
    """``factory(family) -> folder``: OmniPT SOT rows from ``vptracker prepare`` for that family."""
    from vptracker.cli import main

    done: dict[str, Path] = {}

    def factory(family: str) -> Path:
        if family not in done:
            out = tmp_path_factory.mktemp(f"rows_{family}")
            assert main(["prepare", "--dataset", "otb", "--root", str(otb_root), "--task", "omnipt_sot",
                         "--num-samples", "4", "--out", str(out), "--workers", "1", "--no-progress",
                         "--option", f"family={family}", "--option", "scale=norm1000",
                         "--option", f"frames={ROUND}"]) == 0
            done[family] = out
        return done[family]

    return factory


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_preset_prepares_trains_infers_and_evaluates(preset, otb_root, tiny_model_factory, prepared, tmp_path):
    from vptracker.cli import main
    from vptracker.datasets import load
    from vptracker.train import last_checkpoint, run_stage

    family = _family(preset)
    model = tiny_model_factory(family)      # conftest.py: one per family for the session
    rows = prepared(family)
    card = json.loads((rows / "card.json").read_text())
    assert card["outputs"]["train"]["omnipt_sot"]["rows"] == 4
    # InternVL2.5 keeps the whole stage-3 recipe, merging the adapter (swift export) as the chain does;
    # the others infer from the adapter on the base model: each swift process costs ~20 s to start here
    merge = family == "internvl2_5"
    notes: list[str] = []
    weights = run_stage("stage3_sft", [f"model_preset={preset}", "profile=tiny", f"model={model}",
                                       f"dataset=[{rows}]", "val_dataset=[]", "max_steps=1",
                                       f"run_dir={tmp_path / 'run'}", f"merge_lora={str(merge).lower()}",
                                       "swift.report_to=none"],   # tensorboard adds ~10 s per run
                        echo=notes.append, stream=lambda line: None)
    stage = tmp_path / "run" / "stage3_sft"
    assert json.loads((stage / "manifest.json").read_text())["status"] == "complete"
    checkpoint = last_checkpoint(stage / "train")
    args = json.loads((checkpoint / "args.json").read_text())
    swift_type, template = get_family(family).swift_names(json.loads((model / "config.json").read_text())["model_type"])
    assert args["model_type"] == swift_type
    assert args["template"] == (f"vptracker_{template}" if get_family(family).render_plugin else template)
    log = json.loads((checkpoint / "trainer_state.json").read_text())["log_history"]
    assert any(entry.get("loss", 0) > 0 for entry in log)
    if family == "internvl2_5":   # the preset names the remote-code release; the folder is transformers' class
        assert any("swift model_type internvl, template internvl_hf" in n for n in notes), notes

    out = tmp_path / "tracks"
    infer = ["infer", "--config", str(CONFIG_DIR / "infer" / "tiny_cpu.yaml"), "--task", "omnipt_sot",
             "--dataset", "otb", "--root", str(otb_root), "--out", str(out), "max_tokens=12", "progress=false",
             f"options.frames_per_sample={ROUND}",
             # tiny_cpu.yaml's 50176 is for untrained models; a trained checkpoint's contract sets the cap
             "options.max_pixels=null"]
    infer += ["--model", str(weights)] if merge else ["--model", str(model), "--adapter", str(weights)]
    assert main(infer) == 0
    record = json.loads((out / "infer_config.omnipt_sot.json").read_text())
    assert record["family"] == family
    sequences = load("otb", otb_root)
    for seq in sequences:
        lines = (out / f"{seq.name}.txt").read_text().splitlines()
        assert len(lines) == FRAMES
        assert [float(v) for v in lines[0].split(",")] == [float(v) for v in seq.tracks[0].boxes[0]]

    scores = tmp_path / "eval"
    assert main(["eval", "sot", "--protocol", "otb", "--gt-root", str(otb_root), "--results", str(out),
                 "--out", str(scores), "--no-plots"]) == 0
    summary = json.loads((scores / "summary.json").read_text())
    assert summary["num_sequences"] == len(sequences) and not summary["skipped"]
    assert 0 <= summary["auc"] <= 100


@pytest.mark.parametrize("preset", ["internvl2_5_4b", "llava_next_8b"])
def test_clip_phase_refuses_a_family_it_cannot_train_before_any_stage_runs(preset, prepared, tmp_path):
    """The whole chain is checked first: stage 1 has its model and real rows, stage 2 is refused."""
    from vptracker.train import run_chain

    family = _family(preset)
    model = tmp_path / "model"
    model.mkdir()
    native = next(t for t in get_family(family).swift if t != "internvl_chat")   # transformers' class
    (model / "config.json").write_text(json.dumps({"model_type": native}))
    with pytest.raises(StageConfigError) as err:
        run_chain([f"model_preset={preset}", "profile=tiny", f"model={model}", f"run_dir={tmp_path / 'run'}",
                   f"stage1_format_grpo.dataset=[{prepared(family)}]"], echo=lambda line: None)
    message = str(err.value)
    assert "stage stage2_midtrain cannot run" in message and "CLIP-style phase" in message
    assert f"not '{family}'" in message and "stages=[stage1_format_grpo,stage3_sft,stage4_iou_grpo]" in message
    assert not (tmp_path / "run").exists()     # nothing ran, not even stage 1


def _prepare(out: Path, root: Path, task: str, *options: str) -> Path:
    from vptracker.cli import main

    argv = ["prepare", "--dataset", "otb", "--root", str(root), "--task", task, "--num-samples", "3", "--out",
            str(out), "--workers", "1", "--no-progress"]
    for option in options:
        argv += ["--option", option]
    assert main(argv) == 0
    return out


@pytest.mark.parametrize("task, options, column", [
    ("vptracker_sot", (), "visual_prompt"),
    ("pretext_reid", ("negatives=2", "min_gap=2"), "crops"),
])
def test_rows_the_template_would_not_draw_are_refused_before_training(otb_root, tmp_path, task, options, column):
    from vptracker.train.commands import plan_stage
    from vptracker.train.stages import load_stage

    rows = _prepare(tmp_path / "rows", otb_root, task, *options)
    common = [f"dataset=[{rows}]", "val_dataset=[]", "profile=tiny", f"run_dir={tmp_path / 'run'}"]
    for preset, extra, family, why in [
            ("internvl2_5_4b", [], "internvl2_5", "draws them for templates"),
            ("llava_next_8b", [], "llava_next", "draws them for templates"),
            ("qwen2_5_vl_3b", ["render_images=false"], "qwen2_5_vl", "render_images is false")]:
        cfg = load_stage("stage3_sft", [f"model_preset={preset}", *common, *extra])
        with pytest.raises(StageConfigError) as err:
            plan_stage(cfg, {}, must_exist=True)
        message = str(err.value)
        assert f"job '{task}'" in message and f"family {family}" in message and f"{column!r}" in message, message
        assert ".jsonl:1:" in message and why in message
    # the Qwen-VL templates draw them (render_images: auto): the same rows plan a stage
    commands = plan_stage(load_stage("stage3_sft", ["model_preset=qwen2_5_vl_3b", *common]), {}, must_exist=True)
    assert "vptracker_qwen2_5_vl" in commands[0].argv


def test_a_checkpoint_of_another_family_is_refused_and_a_native_internvl_gets_swift_hf_names(tmp_path):
    from vptracker.train.stages import load_stage

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "internvl"}))
    cfg = load_stage("stage3_sft", ["model_preset=internvl2_5_4b", f"model={folder}"])
    assert (cfg["model"]["model_type"], cfg["model"]["template"]) == ("internvl", "internvl_hf")
    assert "the preset names internvl_chat / internvl2_5" in cfg.notes[0]
    # an explicit choice is kept (and checked against the family's templates)
    cfg = load_stage("stage3_sft", ["model_preset=internvl2_5_4b", f"model={folder}", "model.model_type=internvl_chat",
                                    "model.template=internvl2_5"])
    assert (cfg["model"]["model_type"], cfg["model"]["template"]) == ("internvl_chat", "internvl2_5")
    (folder / "config.json").write_text(json.dumps({"model_type": "llava_next"}))
    with pytest.raises(StageConfigError, match="model_type 'llava_next' \\(family llava_next\\), but the stage's "
                                               "model is family qwen3_vl"):
        load_stage("stage3_sft", ["model_preset=qwen3_vl_4b", f"model={folder}"])
