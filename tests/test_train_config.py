"""Stage configs: resolution, overrides, errors that name the file and key, and --dry-run output."""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from vptracker.train import StageConfigError, load_stage, run_chain, run_stage
from vptracker.train.commands import plan_stage
from vptracker.train.stages import OMNIPT_STAGES, REPO_ROOT, available_stages

CLUSTER = {"NNODES": "3", "NPROC_PER_NODE": "8", "NODE_RANK": "0", "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500"}


def _argv_value(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def _argv_values(argv: list[str], flag: str) -> list[str]:
    rest = argv[argv.index(flag) + 1:]
    return rest[:next((i for i, a in enumerate(rest) if a.startswith("--")), len(rest))]


def test_every_stage_config_resolves():
    names = available_stages()
    assert set(OMNIPT_STAGES) | {"vptracker_sft"} <= set(names)
    for name in names:
        cfg = load_stage(name)
        assert cfg.name == name and cfg.kind in ("sft", "grpo", "midtrain")


def test_released_vptracker_recipe_values():
    cfg = load_stage("vptracker_sft")
    swift = cfg["swift"]
    assert cfg["model"]["path"] == "Qwen/Qwen3-VL-4B-Instruct" and cfg["model"]["template"] == "qwen3_vl"
    assert swift["tuner_type"] == "full" and swift["learning_rate"] == 2e-5 and swift["num_train_epochs"] == 1
    assert swift["warmup_ratio"] == 0.05 and swift["max_length"] == 8192 and cfg["global_batch_size"] == 128
    # one resize, as released: qwen-vl-utils' IMAGE_MAX_TOKEN_NUM, not swift's max_pixels on top
    assert swift["model_kwargs"]["IMAGE_MAX_TOKEN_NUM"] == 1024 and swift.get("max_pixels") is None
    assert swift["new_special_tokens"] == ["<ref>", "</ref>", "<template>", "</template>", "<search>", "</search>"]
    # 8 GPUs x 4 per device x 4 accumulation = the released global batch of 128
    train = plan_stage(cfg, {"NPROC_PER_NODE": "8"})[0]
    assert _argv_value(train.argv, "--gradient_accumulation_steps") == "4"
    assert "--merge_lora" not in " ".join(train.argv)
    assert _argv_value(train.argv, "--template") == "vptracker_qwen3_vl"
    assert _argv_value(train.argv, "--external_plugins").endswith("vptracker/models/swift_plugin.py")
    assert _argv_value(train.argv, "--remove_unused_columns") == "false"


def test_render_images_follows_the_model_template():
    plain = plan_stage(load_stage("stage3_sft", ["model_preset=internvl2_5_4b"]), {})[0].argv
    assert _argv_value(plain, "--template") == "internvl2_5" and "--external_plugins" not in plain
    off = plan_stage(load_stage("stage3_sft", ["render_images=false"]), {})[0].argv
    assert _argv_value(off, "--template") == "qwen2_5_vl" and "--remove_unused_columns" not in off
    with pytest.raises(StageConfigError, match="stage2_midtrain.yaml.*'model.family'.*internvl2_5"):
        load_stage("stage2_midtrain", ["model_preset=internvl2_5_4b"])
    with pytest.raises(StageConfigError, match="'render_images'.*llama3_llava_next_hf"):
        load_stage("stage3_sft", ["model_preset=llava_next_8b", "render_images=true"])


def test_omnipt_paper_values_and_model_presets():
    cfg = load_stage("stage3_sft")
    assert cfg["swift"]["learning_rate"] == 1e-5 and cfg["swift"]["tuner_type"] == "lora"
    assert cfg["swift"]["max_pixels"] == 28 * 28 * 646
    assert load_stage("stage1_format_grpo")["rollout"]["reward_funcs"] == ["omnipt_format"]
    assert load_stage("stage4_iou_grpo")["rollout"]["reward_funcs"] == ["omnipt_iou"]
    big = load_stage("stage3_sft", ["model_preset=qwen2_5_vl_72b"])
    assert big["swift"]["deepspeed"].endswith("zero3.json")  # the preset's own block wins
    small = load_stage("stage3_sft", ["model_preset=qwen2_vl_2b", "lr=2e-5", "max_steps=7"])
    assert small["model"]["template"] == "qwen2_vl" and small["swift"]["learning_rate"] == 2e-5
    assert small["swift"]["max_steps"] == 7
    presets = {p.stem for p in (REPO_ROOT / "configs" / "models").glob("*.yaml")}
    assert {"qwen2_5_vl_3b", "qwen2_5_vl_7b", "qwen2_5_vl_72b", "qwen2_vl_2b", "qwen3_vl_4b", "internvl2_5_4b",
            "llava_next_8b"} <= presets
    for preset in presets:
        assert load_stage("stage3_sft", [f"model_preset={preset}"])["model"]["model_type"]


def test_cpu_profile_turns_gpu_features_off():
    gpu = load_stage("stage1_format_grpo")
    assert gpu["rollout"]["use_vllm"] is True and gpu["swift"]["bf16"] is True
    cpu = load_stage("stage1_format_grpo", ["profile=cpu"])
    assert cpu["rollout"]["use_vllm"] is False and cpu["swift"]["deepspeed"] is None
    argv = plan_stage(cpu, {})[0].argv
    assert _argv_value(argv, "--torch_dtype") == "float32" and "--deepspeed" not in argv
    assert "--vllm_mode" not in argv and _argv_value(argv, "--use_vllm") == "false"


@pytest.mark.parametrize("overrides, key", [
    (["swift.lerning_rate=1e-5"], "swift.lerning_rate"),
    (["rollout.num_generation=4"], "rollout.num_generation"),
    (["epochz=3"], "epochz"),
    (["profile=tpu"], "profile"),
    (["model_preset=gpt5"], "model_preset"),
    (["kind=dpo"], "kind"),
    (["rollout.reward_funcs=[]"], "rollout.reward_funcs"),
    (["swift.output_dir=/tmp/x"], "swift.output_dir"),
    (["model.template="], "model.template"),
    (["dataset=[]"], "dataset"),
])
def test_bad_config_names_file_and_key(overrides, key):
    with pytest.raises(StageConfigError) as err:
        load_stage("stage1_format_grpo", overrides)
    assert "stage1_format_grpo.yaml" in str(err.value) and repr(key).strip("'") in str(err.value)


def test_bad_files_are_reported(tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("stage: broken\nkind: sft\nswift: [unclosed\n")
    with pytest.raises(StageConfigError, match=r"broken.yaml:\d+"):
        load_stage(bad)
    with pytest.raises(StageConfigError, match="unknown stage 'stage9'.*stage3_sft"):
        load_stage("stage9")
    with pytest.raises(StageConfigError, match="expected key=value"):
        load_stage("stage3_sft", ["lr"])
    missing = load_stage("stage3_sft", [f"dataset=[{tmp_path}/none.jsonl]"])
    with pytest.raises(StageConfigError, match=r"stage3_sft.yaml.*'dataset'.*none.jsonl does not exist"):
        plan_stage(missing, {}, must_exist=True)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(StageConfigError, match="holds no \\*.jsonl"):
        plan_stage(load_stage("stage3_sft", [f"dataset=[{empty}]"]), {}, must_exist=True)
    with pytest.raises(StageConfigError, match=r"'rollout.num_generations'.*8 does not divide.* = 4"):
        plan_stage(load_stage("stage1_format_grpo"), {"NPROC_PER_NODE": "1"})
    with pytest.raises(StageConfigError, match="global_batch_size.*not a multiple"):
        plan_stage(load_stage("vptracker_sft"), {"NPROC_PER_NODE": "8", "NNODES": "3"})


def test_wsd_decay_steps_follow_the_data(tmp_path):
    data = tmp_path / "rows.jsonl"
    data.write_text("{}\n" * 100)
    cfg = load_stage("stage3_sft", [f"dataset=[{data}]", "val_dataset=[]"])
    argv = plan_stage(cfg, {"NPROC_PER_NODE": "2"})[0].argv
    # 100 rows / (1 per device x 4 accumulation x 2 GPUs) = 13 steps x 3 epochs = 39; 10% -> 4
    assert _argv_value(argv, "--lr_scheduler_kwargs") == '{"num_decay_steps":4}'
    assert _argv_value(argv, "--dataset") == str(data)


@pytest.mark.slow
def test_dry_run_for_a_three_node_cluster():
    env = {**os.environ, **CLUSTER}
    done = subprocess.run(["bash", str(REPO_ROOT / "train.sh"), "all", "--dry-run"], env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [ln for ln in done.stdout.splitlines() if ln and not ln.startswith("#")]
    trains = [shlex.split(ln) for ln in lines if " sft " in ln or " rlhf " in ln]
    clips = [shlex.split(ln) for ln in lines if "vptracker.train.clip" in ln]
    merges = [shlex.split(ln) for ln in lines if " export " in ln]
    assert len(trains) == 4 and len(clips) == 1 and len(merges) == 4
    for argv in trains:
        # swift's launcher reads the cluster shape from the environment the line sets
        assert argv[:5] == ["NPROC_PER_NODE=8", "NNODES=3", "NODE_RANK=0", "MASTER_ADDR=10.0.0.1", "MASTER_PORT=29500"]
        assert _argv_value(argv, "--deepspeed").endswith("configs/deepspeed/zero2.json")
        assert _argv_value(argv, "--template") == "vptracker_qwen2_5_vl"  # the plugin draws crops at load time
        assert any(p.endswith("vptracker/models/swift_plugin.py") for p in _argv_values(argv, "--external_plugins"))
        assert _argv_value(argv, "--add_version") == "false"
    assert [a[6] for a in trains] == ["rlhf", "sft", "sft", "rlhf"]
    assert _argv_value(trains[0], "--reward_funcs") == "omnipt_format"
    assert _argv_values(trains[0], "--external_plugins")[0].endswith("vptracker/train/rewards.py")
    assert _argv_value(trains[3], "--reward_funcs") == "omnipt_iou"
    assert _argv_value(trains[0], "--use_vllm") == "true"
    clip = clips[0]
    start = clip.index("torch.distributed.run") + 1
    assert clip[start:start + 10] == ["--nproc_per_node", "8", "--nnodes", "3", "--node_rank", "0",
                                      "--master_addr", "10.0.0.1", "--master_port", "29500"]
    # each stage starts from the weights the previous stage merged
    assert _argv_value(trains[0], "--model") == "Qwen/Qwen2.5-VL-7B-Instruct"
    assert _argv_value(trains[1], "--model").endswith("stage2_midtrain/clip/final")
    assert _argv_value(clip[clip.index("--config"):], "--config").endswith("stage2_midtrain/clip/clip_config.json")
    assert _argv_value(trains[2], "--model").endswith("stage2_midtrain/merged")
    assert _argv_value(trains[3], "--model").endswith("stage3_sft/merged")
    assert done.stdout.count("on NODE_RANK 0 only") == 4
    assert "stage1_format_grpo/merged" in done.stdout.split("stage2_midtrain (midtrain)")[1].split("\n")[1]


def test_chain_selects_stages_and_per_stage_overrides():
    lines: list[str] = []
    run_chain(["stages=[stage3_sft,stage4_iou_grpo]", "stage4_iou_grpo.lr=3e-6", "run_dir=/x/run"], dry_run=True,
              env={"NPROC_PER_NODE": "8"}, echo=lines.append)
    text = "\n".join(lines)
    assert "stage1_format_grpo" not in text and "stage2_midtrain" not in text
    sft, grpo = [ln for ln in text.splitlines() if "--learning_rate" in ln]
    assert "--learning_rate 1e-05" in sft and "--learning_rate 3e-06" in grpo
    assert "--model /x/run/stage3_sft/merged" in grpo
    with pytest.raises(ValueError, match="unknown stage 'stage7'"):
        run_chain(["stages=[stage7]"], dry_run=True, env={}, echo=lines.append)


def test_cli_reports_config_errors(capsys):
    from vptracker.cli import main

    assert main(["train", "--stage", "stage3_sft", "--dry-run", "swift.bogus=1"]) == 2
    assert "stage3_sft.yaml" in capsys.readouterr().err
    assert main(["train", "--stage", "stage3_sft", "--dry-run", "profile=cpu"]) == 0
    assert "swift sft" in capsys.readouterr().out.replace(f"{Path(sys.executable).parent}/", "")
    out = run_stage("stage3_sft", ["profile=cpu"], dry_run=True, env={}, echo=lambda s: None)
    assert out.name == "merged"


def test_profile_applies_after_the_preset_and_before_overrides():
    """`profile=cpu model_preset=qwen2_5_vl_72b` kept ZeRO-3 when the profile came before the preset."""
    cfg = load_stage("stage3_sft", ["profile=cpu", "model_preset=qwen2_5_vl_72b"])
    assert cfg["model"]["path"] == "Qwen/Qwen2.5-VL-72B-Instruct"
    assert cfg["swift"]["deepspeed"] is None and cfg["swift"]["bf16"] is False
    assert cfg["swift"]["torch_dtype"] == "float32"
    # the overrides still win over both, and a later override of the same key wins over an earlier one
    cfg = load_stage("stage3_sft", ["profile=cpu", "model_preset=qwen2_5_vl_72b", "swift.deepspeed=zero3",
                                    "lr=1e-4", "lr=2e-5"])
    assert cfg["swift"]["deepspeed"] == "zero3" and cfg["swift"]["learning_rate"] == 2e-5
    assert load_stage("stage3_sft", ["model_preset=qwen2_5_vl_72b"])["swift"]["bf16"] is True


def test_single_node_grpo_defaults():
    """Without NPROC_PER_NODE a single-process GRPO run failed its own batch check (8 does not divide 4)."""
    from vptracker.train.commands import single_node_env

    train = plan_stage(load_stage("stage1_format_grpo"), {})[0]
    # 1 process x 1 per device x 8 accumulation = one whole group of num_generations=8
    assert _argv_value(train.argv, "--gradient_accumulation_steps") == "8"
    assert any("gradient_accumulation_steps 4 -> 8" in note for note in train.notes)
    lines: list[str] = []
    run_stage("stage1_format_grpo", [], dry_run=True, env={}, echo=lines.append)
    assert "# NPROC_PER_NODE is not set: gradient_accumulation_steps 4 -> 8" in lines[0]
    # an explicit cluster shape is the user's: it is checked, not changed
    with pytest.raises(StageConfigError, match="8 does not divide"):
        plan_stage(load_stage("stage1_format_grpo"), {"NPROC_PER_NODE": "1"})
    with pytest.raises(StageConfigError, match="8 does not divide"):
        plan_stage(load_stage("stage1_format_grpo", ["swift.gradient_accumulation_steps=2"]), {})
    # one process per visible GPU when nothing says otherwise; 4 x 1 x 4 = 16 holds two groups
    env, notes = single_node_env({}, gpus=4)
    assert env == {"NPROC_PER_NODE": "4"} and "NPROC_PER_NODE=4" in notes[0]
    assert _argv_value(plan_stage(load_stage("stage1_format_grpo"), env)[0].argv,
                       "--gradient_accumulation_steps") == "4"
    assert single_node_env({"NNODES": "2"}, gpus=4) == ({"NNODES": "2"}, [])
    assert single_node_env({}, gpus=1) == ({}, [])


@pytest.mark.slow   # imports ms-swift: ~10 s
def test_swift_argument_table_checks_as_the_imported_types():
    """The table of ms-swift's argument types (kept so that a `vptracker train` process checks its keys
    without importing ms-swift) gives every argument the message and the verdict of the imported type,
    and a later process reads it without importing ms-swift."""
    import json
    import subprocess
    import sys

    from vptracker.train import settings

    probes = [True, 0, 3, -1, 1.5, float("nan"), "x", "epoch", "steps", "no", "cosine", ["a"], [1, 2], [],
              {"a": 1}, "bf16"]
    for kind in ("sft", "grpo"):
        imported = settings._read_swift(kind)
        table = settings.swift_types(kind)
        assert table.keys() == imported.keys() and len(table) > 100
        for name, hint in imported.items():
            assert settings.describe(table[name]) == settings.describe(hint), name
            for value in probes:
                assert settings.check_value(name, value, table[name]) == settings.check_value(name, value, hint), \
                    (name, value)
    assert '["enum", "IntervalStrategy"]' in json.dumps(settings._swift_table()["sft"])   # enums kept by name
    code = ("import sys; from vptracker.train.settings import swift_types; "
            "t = swift_types('grpo'); print(len(t), 'swift' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split()[-1] == "False", done.stdout + done.stderr
