"""Hostile settings: bad override values, unknown keys, bad YAML, missing or code-carrying model
folders, and interrupted or repeated `vptracker prepare` runs. Each must fail before anything
starts, with one line per problem naming the key and what was expected (exit 2), or leave a
folder whose card agrees with its files."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import layouts as fx
import pytest

from vptracker.cli import main
from vptracker.train import StageConfigError, load_stage, run_stage
from vptracker.train.stages import REPO_ROOT


def _errors(stderr: str) -> str:
    """Our error lines (ms-swift logs an INFO line to stderr when it is first imported)."""
    return "".join(line + "\n" for line in stderr.splitlines() if not line.startswith("[INFO:swift]"))


def _train(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(["train", *args])
    captured = capsys.readouterr()
    return rc, captured.out, _errors(captured.err)


# --------------------------------------------------------------------------- stage settings


@pytest.mark.parametrize("override, key, expected", [
    ("lr=abc", "swift.learning_rate", "expected a number or null, got 'abc'"),
    ("epochs=abc", "swift.num_train_epochs", "expected a number, got 'abc'"),
    ("max_steps=abc", "swift.max_steps", "expected an integer, got 'abc'"),
    ("max_steps=2.5", "swift.max_steps", "expected an integer, got 2.5"),
    ("lr=-1e-5", "swift.learning_rate", "expected > 0, got -1e-05"),
    ("lr=.nan", "swift.learning_rate", "expected a number or null, got nan"),
    ("swift.warmup_ratio=2", "swift.warmup_ratio", "expected between 0 and 1, got 2"),
    ("swift.per_device_train_batch_size=0", "swift.per_device_train_batch_size", "expected >= 1, got 0"),
    ("swift.bf16=maybe", "swift.bf16", "expected true or false or null, got 'maybe'"),
    ("swift.torch_dtype=float64", "swift.torch_dtype", "expected one of 'bfloat16', 'float16', 'float32'"),
    ("swift.deepspeed=configs/deepspeed/zero9.json", "swift.deepspeed", "zero9.json does not exist"),
    ("global_batch_size=-8", "global_batch_size", "expected >= 1, got -8"),
    ("merge_lora=yes please", "merge_lora", "expected true or false, got 'yes please'"),
    ("plugins=[nowhere/plugin.py]", "plugins", "nowhere/plugin.py does not exist"),
])
def test_bad_values_exit_2_naming_key_and_expectation(capsys, override, key, expected):
    rc, out, err = _train(capsys, "--stage", "stage3_sft", "--dry-run", "profile=cpu", override)
    assert rc == 2 and out == ""
    assert len(err.splitlines()) == 1 and f"key '{key}'" in err and expected in err, err


def test_grpo_ranges_and_unknown_keys_all_reported_at_once(capsys):
    rc, _, err = _train(capsys, "--stage", "stage1_format_grpo", "--dry-run", "rollout.num_generations=1",
                        "rollout.vllm_gpu_memory_utilization=1.5", "epochz=3", "model.pth=/m", "swift.lerning_rate=1")
    lines = err.splitlines()
    assert rc == 2 and len(lines) == 5, err
    for key, expected in [("rollout.num_generations", "expected >= 2"),
                          ("rollout.vllm_gpu_memory_utilization", "expected in (0, 1]"),
                          ("epochz", "unknown key"), ("model.pth", "unknown key"),
                          ("swift.lerning_rate", "not an ms-swift rlhf argument")]:
        assert any(f"key '{key}'" in ln and expected in ln for ln in lines), (key, err)
    assert all(ln.startswith("vptracker train: error: ") and "stage1_format_grpo.yaml" in ln for ln in lines)


def test_clip_phase_values_are_checked(capsys):
    rc, _, err = _train(capsys, "--stage", "stage2_midtrain", "--dry-run", "clip.temperature=0",
                        "clip.train=[vision,llm]", "clip.lr=1")
    assert rc == 2 and len(err.splitlines()) == 3, err
    assert "key 'clip.temperature': expected > 0" in err and "key 'clip.lr': unknown key" in err
    assert "key 'clip.train': expected a list of one of 'vision', 'aligner', got ['vision', 'llm']" in err


@pytest.mark.parametrize("override", ["lr=[1e-5,", "swift.lora_rank={a: 1", "stages=[a, b"])
def test_bad_yaml_override_is_one_line(capsys, override):
    rc, _, err = _train(capsys, "--stage", "stage3_sft", "--dry-run", override)
    assert rc == 2 and len(err.splitlines()) == 1 and "expected a YAML value" in err, err


def test_no_traceback_from_the_command_line():
    """The measured failure: `max_steps=abc` died with a TypeError traceback (bad YAML: in-process above)."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run([sys.executable, "-m", "vptracker", "train", "--stage", "stage3_sft", "--dry-run",
                           "max_steps=abc"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert len(_errors(done.stderr).splitlines()) == 1


def test_one_override_parser_for_train_and_prepare(tmp_path):
    """`2e-5` was a float for stage overrides and a string for `prepare --option`."""
    from vptracker.config import apply_overrides, parse_pairs

    assert apply_overrides({}, ["a.b=2e-5"]) == {"a": {"b": 2e-5}}
    assert parse_pairs(["inbbox_ratio=9e-1", "scale=norm1000", "x="]) == {"inbbox_ratio": 0.9, "scale": "norm1000",
                                                                          "x": ""}
    fx.write_tnl2k(tmp_path / "TNL2K", "train", "a", [(4 + i, 4, 10, 8) for i in range(6)], "a box")
    assert main(["prepare", "--dataset", "tnl2k", "--root", str(tmp_path / "TNL2K"), "--split", "train",
                 "--task", "vptracker_sot", "--num-samples", "4", "--out", str(tmp_path / "out"),
                 "--option", "inbbox_ratio=9e-1", "--no-progress"]) == 0
    card = json.loads((tmp_path / "out" / "card.json").read_text())
    assert card["config"]["jobs"]["vptracker_sot"]["options"]["inbbox_ratio"] == 0.9


# --------------------------------------------------------------------------- model folders


def _model_dir(path: Path, auto_map_in: str | None = None) -> Path:
    """A model folder with a config (no weights are needed to be refused); with ``auto_map_in`` one of
    its configs names a code file that would write a marker if it ever ran."""
    path.mkdir(parents=True)
    config = {"model_type": "qwen2_5_vl", "architectures": ["Qwen2_5_VLForConditionalGeneration"]}
    (path / "config.json").write_text(json.dumps(config))
    if auto_map_in:
        marker = path / "CODE_RAN"
        (path / "configuration_evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
        target = path / auto_map_in
        data = json.loads(target.read_text()) if target.is_file() else {}
        data["auto_map"] = {"AutoConfig": "configuration_evil.EvilConfig"}
        target.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("where", ["config.json", "tokenizer_config.json"])
def test_auto_map_model_folder_is_refused_before_anything_runs(capsys, tmp_path, where):
    model = _model_dir(tmp_path / "evil", where)
    data = tmp_path / "rows.jsonl"
    data.write_text("{}\n")
    common = ["--stage", "stage3_sft", "profile=cpu", f"model={model}", f"dataset=[{data}]", "val_dataset=[]",
              f"run_dir={tmp_path / 'run'}"]
    for extra in (["--dry-run"], []):
        rc, _, err = _train(capsys, *extra, *common)
        assert rc == 2 and len(err.splitlines()) == 1, err
        assert f"key 'model.path': {model / where}: auto_map names code" in err and "--trust-remote-code" in err
    assert not (model / "CODE_RAN").exists() and not (tmp_path / "run").exists()
    rc, out, _ = _train(capsys, "--dry-run", "--trust-remote-code", *common)
    assert rc == 0 and "# trust_remote_code: true" in out


def test_trust_remote_code_is_recorded_in_the_manifest(tmp_path, monkeypatch):
    from vptracker.train import runner

    ran: list[list[str]] = []
    monkeypatch.setattr(runner, "_execute", lambda cmd, log, env, stream=None: ran.append(cmd.argv) or 0)
    data = tmp_path / "rows.jsonl"
    data.write_text("{}\n")
    common = ["profile=cpu", f"dataset=[{data}]", "val_dataset=[]"]
    clean = _model_dir(tmp_path / "clean")
    run_stage("stage3_sft", [*common, f"model={clean}", f"run_dir={tmp_path / 'a'}"], env={}, echo=lambda s: None)
    manifest = json.loads((tmp_path / "a" / "stage3_sft" / "manifest.json").read_text())
    assert manifest["trust_remote_code"] is False and manifest["model_check"]["auto_map"] is False
    evil = _model_dir(tmp_path / "evil", "config.json")
    run_stage("stage3_sft", [*common, f"model={evil}", f"run_dir={tmp_path / 'b'}", "trust_remote_code=true"],
              env={}, echo=lambda s: None)
    manifest = json.loads((tmp_path / "b" / "stage3_sft" / "manifest.json").read_text())
    assert manifest["trust_remote_code"] is True and manifest["model_check"] == {
        "path": str(evil), "source": "local", "auto_map": True, "trust_remote_code": True}
    assert len(ran) == 4 and not (evil / "CODE_RAN").exists()  # train + merge per run; nothing really ran


def test_swift_has_no_trust_remote_code_argument_so_we_check_folders():
    """ms-swift 4.6 loads with trust_remote_code=True and offers no argument; when it gains one, the
    stage runner should pass it (this test then fails as a reminder)."""
    from vptracker.train.commands import plan_stage
    from vptracker.train.settings import swift_types

    assert "trust_remote_code" not in swift_types("sft") and "trust_remote_code" not in swift_types("grpo")
    clip = plan_stage(load_stage("stage2_midtrain", ["profile=cpu"]), {})[0]
    assert clip.role == "clip" and clip.payload["trust_remote_code"] is False  # the CLIP phase's own loads


def test_missing_model_folder_is_reported_at_once(capsys, tmp_path):
    start = time.monotonic()
    rc, _, err = _train(capsys, "--stage", "stage3_sft", "profile=cpu", f"model={tmp_path / 'nowhere'}",
                        f"run_dir={tmp_path / 'run'}")
    assert rc == 2 and f"key 'model.path': model folder {tmp_path / 'nowhere'} does not exist" in err
    assert time.monotonic() - start < 10 and not (tmp_path / "run").exists()  # was 68 s, inside swift
    rc, _, err = _train(capsys, "--stage", "stage3_sft", "profile=cpu", "model=Qwen/Qwen2.5-VL-7B-Instruct",
                        f"run_dir={tmp_path / 'run'}")
    assert rc == 2 and "is not a local folder" in err and not (tmp_path / "run").exists()


def test_a_chain_checks_every_stage_before_the_first_starts(tmp_path):
    lines: list[str] = []
    from vptracker.train import run_chain

    with pytest.raises(StageConfigError, match="stage4_iou_grpo.yaml.*'swift.learning_rate'.*'abc'"):
        run_chain(["stage4_iou_grpo.lr=abc"], dry_run=True, env={}, echo=lines.append)
    assert lines == []  # nothing of stage 1 was printed (or run) before stage 4's error


# --------------------------------------------------------------------------- prepare


def _tnl2k(root: Path) -> Path:
    fx.write_tnl2k(root / "TNL2K", "train", "a", [(4 + i, 4, 10, 8) for i in range(6)], "a green box")
    return root / "TNL2K"


def _prepare_argv(root: Path, out: Path, n: int, shard: int) -> list[str]:
    return ["prepare", "--dataset", "tnl2k", "--root", str(root), "--split", "train", "--task", "vptracker_sot",
            "--num-samples", str(n), "--out", str(out), "--shard-size", str(shard), "--workers", "1", "--no-progress"]


def _agrees(out: Path) -> int:
    """Rows on disk, after checking that the card lists exactly the shards there and their row counts."""
    card = json.loads((out / "card.json").read_text())
    listed = {f: job["rows"] for split in card["outputs"].values() for job in split.values() for f in job["files"]}
    shards = sorted(p.name for p in out.glob("*.jsonl"))
    assert sorted(listed) == shards
    lines = sum(len((out / f).read_text().splitlines()) for f in shards)
    assert lines == sum(card["totals"]["train"].values())
    return lines


@pytest.mark.slow
def test_prepare_killed_mid_write_leaves_a_card_that_tells_the_truth(tmp_path):
    root, out = _tnl2k(tmp_path), tmp_path / "out"
    assert main(_prepare_argv(root, out, 1000, 500)) == 0
    assert _agrees(out) == 1000
    # a much bigger rerun, killed (SIGKILL, like a lost node) once it has written a few shards
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "vptracker", *_prepare_argv(root, out, 1_000_000, 500)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while proc.poll() is None and len(list((out / ".prepare-partial").glob("*.jsonl"))) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert _agrees(out) == 1000  # the previous card and its shards, untouched
    # training refuses the unfinished folder
    with pytest.raises(StageConfigError, match="unfinished `vptracker prepare`"):
        from vptracker.train.commands import plan_stage

        plan_stage(load_stage("stage3_sft", [f"dataset=[{out}/train-*.jsonl]", "val_dataset=[]"]), {},
                   must_exist=True)
    assert main(_prepare_argv(root, out, 700, 500)) == 0
    assert _agrees(out) == 700 and not (out / ".prepare-partial").exists()


def test_smaller_rerun_removes_the_shards_it_does_not_list(tmp_path, capsys):
    root, out = _tnl2k(tmp_path), tmp_path / "out"
    assert main(_prepare_argv(root, out, 40, 10)) == 0
    assert len(list(out.glob("train-*.jsonl"))) == 4
    capsys.readouterr()
    assert main(_prepare_argv(root, out, 15, 10)) == 0
    assert "removed 2 shard(s)" in capsys.readouterr().out
    assert sorted(p.name for p in out.glob("train-*.jsonl")) == ["train-vptracker_sot-00000.jsonl",
                                                                 "train-vptracker_sot-00001.jsonl"]
    assert _agrees(out) == 15
    # a shard put there by hand is not trained on silently
    (out / "train-vptracker_sot-00007.jsonl").write_text("{}\n")
    from vptracker.train.commands import plan_stage

    with pytest.raises(StageConfigError, match="00007.jsonl is not listed in .*card.json"):
        plan_stage(load_stage("stage3_sft", [f"dataset=[{out}/train-*.jsonl]", "val_dataset=[]"]), {},
                   must_exist=True)


def test_prepare_refuses_a_folder_it_did_not_write(tmp_path, capsys):
    root, out = _tnl2k(tmp_path), tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert main(_prepare_argv(root, out, 4, 10)) == 2
    err = capsys.readouterr().err
    assert "is not empty and not a previous `vptracker prepare` output" in err and "notes.txt" in err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize("override, expected", [
    ("seed=abc", "seed: expected an integer >= 0, got 'abc'"),
    ("shard_size=0", "shard_size: expected an integer >= 1, got 0"),
    ("workers=-1", "workers: expected 'auto' or an integer >= 1, got -1"),
    ("sed=1", "unknown key 'sed'"),
    ("jobs.vptracker_sot.samples.train=-5", "samples.train: expected a sample count >= 0 or 'all', got -5"),
    ("jobs.vptracker_sot.samples.train=lots", "expected a sample count >= 0 or 'all', got 'lots'"),
    ("jobs.vptracker_sot.sources.tnl2k.root=/nowhere/TNL2K", "sources.tnl2k.root: folder /nowhere/TNL2K does not exist"),
    ("jobs.vptracker_sot.sources.tnl2k.dataset=tnl3k", "sources.tnl2k.dataset: expected one of"),
    ("jobs.vptracker_sot.sources.tnl2k.ratio=0", "sources.tnl2k.ratio: expected a number > 0, got 0"),
    ("jobs.vptracker_sot.options.scael=abs", "unknown option(s) ['scael']"),
    ("jobs.vptracker_sot.task=vptracker_mot", "unknown task 'vptracker_mot'"),
    ("seed=[1,", "expected a YAML value"),
])
def test_prepare_overrides_are_checked_before_anything_is_written(tmp_path, capsys, override, expected):
    root, out = _tnl2k(tmp_path), tmp_path / "out"
    capsys.readouterr()
    rc = main(_prepare_argv(root, out, 4, 10) + [override])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.splitlines()) == 1 and expected in err, err
    assert not out.exists()


@pytest.mark.parametrize("environ, expected", [
    ({"NPROC_PER_NODE": "eight"}, "NPROC_PER_NODE='eight': expected an integer >= 1"),
    ({"NNODES": "0"}, "NNODES='0': expected an integer >= 1"),
    ({"NNODES": "2", "NODE_RANK": "2"}, "NODE_RANK=2: expected < NNODES=2"),
])
def test_cluster_shape_from_the_environment_is_checked(environ, expected):
    from vptracker.config import ConfigError
    from vptracker.train.commands import launcher_env

    with pytest.raises(ConfigError, match=expected):
        launcher_env(environ)
    assert launcher_env({"NPROC_PER_NODE": "8", "NNODES": "3", "NODE_RANK": "2", "MASTER_PORT": ""}) == {
        "NPROC_PER_NODE": "8", "NNODES": "3", "NODE_RANK": "2"}
