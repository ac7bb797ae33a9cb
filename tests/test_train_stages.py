"""Training runs on the tiny model: every stage, the chain, GRPO gradients, kill-and-resume, CLIP loss."""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from omnipt_data import chain_overrides, prepare_stages, write_datasets

from vptracker.train import last_checkpoint, run_chain, run_stage
from vptracker.train.clip import clip_loss, cls_states
from vptracker.train.stages import OMNIPT_STAGES, REPO_ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """Rows that ``prepare`` writes from the four OmniPT stage data configs over small datasets in
    every official layout (tests/omnipt_data.py); returns the data root."""
    root = tmp_path_factory.mktemp("omnipt")
    prepare_stages(write_datasets(root / "datasets"), root / "prepared")
    return root / "prepared"


def _trainer_log(checkpoint: Path) -> list[dict]:
    return json.loads((checkpoint / "trainer_state.json").read_text())["log_history"]


# --------------------------------------------------------------------------- CLIP loss


def test_clip_loss_hand_computed():
    emb = torch.eye(2)
    # logits = I / 1: each row's CE is log(1 + e^-1), the same both ways
    assert clip_loss(emb, emb, 1.0).item() == pytest.approx(math.log(1 + math.exp(-1)))
    swapped = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    assert clip_loss(emb, swapped, 1.0).item() == pytest.approx(math.log(1 + math.exp(1)))
    # a lower temperature sharpens a correct match toward zero loss
    assert clip_loss(emb, emb, 0.05).item() < 1e-6


def test_cls_states_pick_the_last_cls_of_each_row():
    class Backbone(torch.nn.Module):
        def forward(self, input_ids, attention_mask=None, use_cache=False):
            hidden = torch.zeros(*input_ids.shape, 2)
            hidden[..., 0] = torch.arange(input_ids.shape[1]).float() + 1  # state = position + 1
            hidden[..., 1] = 1.0
            return type("Out", (), {"last_hidden_state": hidden})()

    ids = torch.tensor([[5, 9, 7, 9, 0], [5, 5, 9, 0, 0]])  # <CLS> = 9
    states = cls_states(Backbone(), {"input_ids": ids}, 9)
    expected = torch.nn.functional.normalize(torch.tensor([[4.0, 1.0], [3.0, 1.0]]), dim=-1)
    assert torch.allclose(states, expected)
    with pytest.raises(ValueError, match="lost its <CLS>"):
        cls_states(Backbone(), {"input_ids": torch.tensor([[5, 5]])}, 9)


def test_clip_step_moves_the_vision_encoder_only(tiny_model, tiny_data, tmp_path):
    from vptracker.train.clip import build_trainer

    cfg = {"model": str(tiny_model), "family": "qwen2_5_vl", "dataset": [str(tiny_data / "stage2_midtrain" / "train-clip-00000.jsonl")],
           "output_dir": str(tmp_path), "per_device_train_batch_size": 4, "max_pixels": 12544, "report_to": "none"}
    trainer, _ = build_trainer(cfg)
    model = trainer.model
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
    loss = trainer.compute_loss(model, batch)
    assert loss.item() > 0
    loss.backward()
    vision = [p for p in model.model.visual.parameters() if p.grad is not None]
    assert vision and any(p.grad.abs().sum() > 0 for p in vision)
    assert all(p.grad is None for p in model.model.language_model.parameters())


def test_clip_phase_follows_the_papers_warmup_constant_decay(tiny_model, tiny_data, tmp_path):
    """The shipped stage 2 asks the CLIP phase for warmup_stable_decay with 10% of its steps decaying."""
    from vptracker.config import load_config
    from vptracker.train.clip import build_trainer

    shipped = load_config(Path(__file__).resolve().parents[1] / "configs" / "stages" / "stage2_midtrain.yaml")["clip"]
    assert (shipped["lr_scheduler_type"], shipped["lr_decay_ratio"]) == ("warmup_stable_decay", 0.1)
    cfg = {"model": str(tiny_model), "family": "qwen2_5_vl", "output_dir": str(tmp_path), "report_to": "none",
           "dataset": [str(tiny_data / "stage2_midtrain" / "train-clip-00000.jsonl")], "max_pixels": 12544,
           "per_device_train_batch_size": 2, "max_steps": 20, "warmup_ratio": 0.1,
           "lr_scheduler_type": shipped["lr_scheduler_type"], "lr_decay_ratio": shipped["lr_decay_ratio"]}
    trainer, _ = build_trainer(cfg)
    assert trainer.args.lr_scheduler_kwargs == {"num_decay_steps": 2}
    trainer.create_optimizer_and_scheduler(num_training_steps=20)
    rates = []
    for _ in range(20):
        rates.append(trainer.lr_scheduler.get_last_lr()[0])
        trainer.optimizer.step()
        trainer.lr_scheduler.step()
    peak = max(rates)
    assert rates[0] < peak and rates[5] == rates[15] == peak and rates[19] < peak   # up, flat, down


# --------------------------------------------------------------------------- runs

TOY_REWARD = '''
from swift.rewards import ORM, orms


class DistinctChars(ORM):
    """Varies from one sampled completion to the next, unlike box rewards on a random model."""

    def __call__(self, completions, solution, **kwargs):
        return [len(set(c)) / (1.0 + len(c)) for c in completions]


orms["distinct_chars"] = DistinctChars
'''


def _kill_when(proc: subprocess.Popen, ready) -> None:
    try:
        while proc.poll() is None and not ready():
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    # the kill reached every process of the run (ms-swift's warm server and its forks too): none writes on
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    raise AssertionError("a process of the killed run is still alive")


def test_all_chains_the_four_stages_and_a_killed_run_resumes(tiny_model, tiny_data, tmp_path):
    """One chain covers every stage: it is killed inside stage 3 and restarted.

    Stage 4 also carries a reward that varies between sampled completions (box rewards on a
    random model are all zero), so its GRPO step must show a non-zero gradient.
    """
    plugin = tmp_path / "toy_reward.py"
    plugin.write_text(TOY_REWARD)
    run_dir = tmp_path / "run"
    overrides = chain_overrides(tiny_model, tiny_data, run_dir) + [
        "stage3_sft.max_steps=12",
        f"stage4_iou_grpo.plugins=[vptracker/train/rewards.py,{plugin}]",
        "stage4_iou_grpo.rollout.reward_funcs=[omnipt_iou,distinct_chars]",
        "stage4_iou_grpo.swift.learning_rate=1e-3"]
    argv = [sys.executable, "-m", "vptracker", "train", "--stage", "all", *overrides]
    sft_dir = run_dir / "stage3_sft" / "train"
    # its own process group, so the kill reaches swift and its children like a lost node would
    proc = subprocess.Popen(argv, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    _kill_when(proc, lambda: last_checkpoint(sft_dir) is not None)
    killed_at = last_checkpoint(sft_dir)
    assert killed_at is not None and int(killed_at.name.split("-")[1]) < 12, "the run died before it finished"
    assert json.loads((run_dir / "stage3_sft" / "manifest.json").read_text())["status"] == "running"
    done = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = run_dir / "stage4_iou_grpo" / "merged"
    assert f"final weights: {out}" in done.stdout
    assert (out / "model.safetensors").is_file() and (out / "config.json").is_file()

    # resume: stages 1-2 were skipped, stage 3 continued the killed run's step history
    assert done.stdout.count("already complete") == 2
    manifest = json.loads((run_dir / "stage3_sft" / "manifest.json").read_text())
    resumed = Path(manifest["resumed_from"]["train"])
    assert manifest["runs"] == 2 and int(resumed.name.split("-")[1]) >= int(killed_at.name.split("-")[1])
    final = last_checkpoint(sft_dir)
    assert final.name == "checkpoint-12"
    assert [e["step"] for e in _trainer_log(final) if "loss" in e] == list(range(1, 13))

    previous = str(tiny_model)
    for name in OMNIPT_STAGES:
        stage_dir = run_dir / name
        manifest = json.loads((stage_dir / "manifest.json").read_text())
        assert manifest["status"] == "complete" and manifest["output"] == str(stage_dir / "merged")
        assert manifest["packages"]["ms-swift"] and manifest["packages"]["torch"]
        assert "commit" in manifest["git"] and manifest["resolved_config"]["stage"] == name
        assert manifest["data"] and all(d["rows"] > 0 and "outputs" in d["card"] for d in manifest["data"])
        train_dir = stage_dir / ("sft" if name == "stage2_midtrain" else "train")
        ckpt = last_checkpoint(train_dir)
        assert ckpt is not None and (ckpt / "adapter_model.safetensors").is_file()
        assert list((train_dir / "runs").glob("events.out.tfevents.*")), "TensorBoard logs by default"
        args = json.loads((train_dir / "args.json").read_text())
        start = str(stage_dir / "clip" / "final") if name == "stage2_midtrain" else previous
        assert args["model"] == start  # each stage starts from the previous stage's merged weights
        assert all(math.isfinite(e["loss"]) for e in _trainer_log(ckpt) if "loss" in e)
        previous = str(stage_dir / "merged")
    clip_dir = run_dir / "stage2_midtrain" / "clip"
    assert last_checkpoint(clip_dir).name == "checkpoint-2"
    assert "<CLS>" in (clip_dir / "final" / "tokenizer.json").read_text()
    stage1_log = _trainer_log(last_checkpoint(run_dir / "stage1_format_grpo" / "train"))
    assert any("rewards/OmniPTFormatReward/mean" in e for e in stage1_log)

    # GRPO: a reward that varies across generations gives advantages, hence a gradient
    stage4_ckpt = last_checkpoint(run_dir / "stage4_iou_grpo" / "train")
    entry = next(e for e in _trainer_log(stage4_ckpt) if "reward_std" in e)
    assert "rewards/OmniPTIoUReward/mean" in entry and entry["rewards/DistinctChars/std"] > 0
    assert entry["reward_std"] > 0 and entry["grad_norm"] > 0
    from safetensors.torch import load_file

    adapter = load_file(str(stage4_ckpt / "adapter_model.safetensors"))
    lora_b = [t for k, t in adapter.items() if "lora_B" in k]
    assert lora_b and any(t.abs().sum() > 0 for t in lora_b), "LoRA B starts at zero; only a gradient moves it"

    # a further run finds every stage complete and trains nothing
    messages: list[str] = []
    assert run_chain(overrides, echo=messages.append) == out
    assert sum("already complete" in m for m in messages) == 4


def test_clip_rows_in_swift_embedding_layout(tmp_path):
    from vptracker.prompts.texts import clip_image_query, clip_text_query
    from vptracker.train.clip import read_pairs

    rows = tmp_path / "train-clip-00000.jsonl"
    row = {"messages": [{"role": "user", "content": clip_image_query()}], "images": ["/d/p1.jpg"],
           "positive_messages": [[{"role": "user", "content": clip_text_query("a man in a red coat")}]]}
    rows.write_text(json.dumps(row) + "\n\n" + json.dumps({"image": "/d/p2.jpg", "caption": "a woman"}) + "\n")
    assert read_pairs([str(rows)]) == [("/d/p1.jpg", "a man in a red coat"), ("/d/p2.jpg", "a woman")]
    rows.write_text(json.dumps({"images": ["/d/p1.jpg"]}) + "\n")
    with pytest.raises(ValueError, match=r"train-clip-00000.jsonl:1: .*caption"):
        read_pairs([str(rows)])


def test_vptracker_recipe_fully_tunes_qwen3_vl(tiny_model_factory, tiny_data, tmp_path):
    model = tiny_model_factory("qwen3_vl")
    out = run_stage("vptracker_sft", ["profile=tiny", f"model={model}", f"run_dir={tmp_path}", "max_steps=1",
                                      f"dataset=[{tiny_data / 'stage3_sft' / 'train-*.jsonl'}]", "val_dataset=[]", "swift.max_pixels=65536"])
    ckpt = out.resolve()
    assert ckpt.name == "checkpoint-1" and (ckpt / "model.safetensors").is_file()
    assert not (ckpt / "adapter_model.safetensors").exists(), "the released recipe tunes every weight"
    args = json.loads((tmp_path / "vptracker_sft" / "train" / "args.json").read_text())
    assert args["template"] == "vptracker_qwen3_vl" and args["tuner_type"] == "full"
    vocab = (ckpt / "tokenizer.json").read_text()
    assert all(tok in vocab for tok in ("<ref>", "</ref>", "<template>", "</template>", "<search>", "</search>"))
    # the data's task contracts travel with the weights: next to swift's args.json and in the checkpoint
    from vptracker.tasks.contract import CONTRACT_FILE, read_contract_file

    train_dir = tmp_path / "vptracker_sft" / "train"
    assert (train_dir / CONTRACT_FILE).is_file() and (train_dir / "args.json").is_file()
    contract = read_contract_file(ckpt / CONTRACT_FILE, "omnipt_sot")
    assert contract is not None and contract.frames_per_sample == (4,) and contract.max_pixels == 28 * 28 * 646
    manifest = json.loads((tmp_path / "vptracker_sft" / "manifest.json").read_text())
    assert manifest["contracts"]["omnipt_sot"] == contract.to_dict()
