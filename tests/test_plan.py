"""`vptracker plan`: exact parameter counts, exact state bytes, every config covered, 72B refusals."""
from __future__ import annotations

import glob
import json
import math
from pathlib import Path

import pytest

from vptracker.config import load_config
from vptracker.models.shapes import model_shapes
from vptracker.plan.memory import GB, Cluster, Training
from vptracker.plan.rows import row_lengths, visual_tokens
from vptracker.plan.run import plan_infer, plan_stage
from vptracker.train.stages import OMNIPT_STAGES, available_stages, load_stage

REPO = Path(__file__).resolve().parents[1]
# Totals the model cards publish (Hugging Face's safetensors "model size"), rounded as they print them.
CARD_BILLIONS = {"qwen2_vl_2b": 2.21, "qwen2_5_vl_3b": 3.75, "qwen2_5_vl_7b": 8.29, "qwen2_5_vl_72b": 73.4,
                 "qwen3_vl_4b": 4.44, "internvl2_5_4b": 3.71, "llava_next_8b": 8.36}
C1, C3 = Cluster(1, 8, 80 * GB), Cluster(3, 8, 80 * GB)


def qwen_llm_params(cfg: dict) -> int:
    """Qwen2 decoder parameters from the config's widths alone: embeddings, layers, final norm, lm_head."""
    h, i, n, vocab = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"], cfg["vocab_size"]
    kv = cfg["num_key_value_heads"] * h // cfg["num_attention_heads"]
    attention = (h * h + h) + 2 * (h * kv + kv) + h * h  # q, k, v with bias; o without
    layer = attention + 3 * h * i + 2 * h               # SwiGLU MLP, two RMSNorms
    return vocab * h * (1 if cfg["tie_word_embeddings"] else 2) + n * layer + h


@pytest.mark.parametrize("preset", sorted(CARD_BILLIONS))
def test_published_configs_reproduce_the_cards_totals(preset):
    shapes = model_shapes(preset)
    assert round(shapes.total / 1e9, 2 if shapes.total < 1e10 else 1) == CARD_BILLIONS[preset]
    cfg = json.loads((REPO / "configs" / "models" / f"{preset}.config.json").read_text())
    if cfg["model_type"] in ("qwen2_vl", "qwen2_5_vl"):
        assert shapes.params["llm"] == qwen_llm_params(cfg)


def test_every_preset_has_its_published_config():
    presets = {p.stem for p in (REPO / "configs" / "models").glob("*.yaml")}
    assert presets == set(CARD_BILLIONS)


@pytest.mark.parametrize("zero", [None, 0, 1, 2, 3])
@pytest.mark.parametrize("world", [1, 24])
def test_state_bytes_are_parameter_counts_times_bytes(zero, world):
    shapes = model_shapes("qwen2_5_vl_72b")
    lora = shapes.lora_params(("llm",), 16)
    state = {ln.what: ln.bytes for ln in Training(shapes.total + lora, lora, zero, True, 2, 4).state(world)}
    share = (lambda n: math.ceil(n / world))
    if zero is None:  # no DeepSpeed: bf16 base, float32 adapters with AdamW moments in float32
        assert state == {"weights": shapes.total * 2 + lora * 4, "gradients": lora * 4, "optimizer states": lora * 8}
        return
    assert state["weights"] == (share(shapes.total + lora) if zero == 3 else shapes.total + lora) * 2
    assert state["gradients"] == (share(lora) if zero >= 2 else lora) * 2
    assert state["optimizer states"] == (share(lora) if zero >= 1 else lora) * 12


def test_lora_counts_every_llm_linear_layer():
    cfg = json.loads((REPO / "configs/models/qwen2_5_vl_7b.config.json").read_text())
    h, i, n = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    kv = cfg["num_key_value_heads"] * h // cfg["num_attention_heads"]
    per_layer = (h + h) + 2 * (h + kv) + (h + h) + 2 * (h + i) + (i + h)
    assert model_shapes("qwen2_5_vl_7b").lora_params(("llm",), 16) == 16 * per_layer * n


def test_plan_covers_every_config_for_7b_and_72b():
    stages = available_stages()
    infer = [f for f in sorted(glob.glob(str(REPO / "configs/infer/*.yaml"))) if "task" in load_config(f)]
    assert set(OMNIPT_STAGES) <= set(stages) and len(infer) >= 8
    for preset in ("qwen2_5_vl_7b", "qwen2_5_vl_72b"):
        for cluster in (C1, C3):
            for stage in stages:
                plan = plan_stage(load_stage(stage, [f"model_preset={preset}"]), cluster)
                assert plan.phases and all(ph.total > 0 for ph in plan.phases)
                # a refusal names the setting to change
                assert all(any(k in r for k in ("swift.", "clip.", "rollout.")) for r in plan.refusals), plan.refusals
                if stage in OMNIPT_STAGES and (preset == "qwen2_5_vl_7b" or cluster is C3):
                    assert plan.fits, plan.render()  # the OmniPT recipe as configured
            for path in infer:
                plan = plan_infer(load_config(path), cluster, preset)
                assert plan.phases
                if preset == "qwen2_5_vl_7b":
                    assert plan.fits, plan.render()
                else:  # 147 GB of weights: one GPU per worker cannot hold them
                    assert not plan.fits and "tensor_parallel_size" in plan.refusals[0]


def test_72b_fits_on_vllm_with_tensor_parallelism_for_inference():
    cfg = load_config(REPO / "configs/infer/vptracker_sot_vllm.yaml", ["engine_kwargs.tensor_parallel_size=4"])
    assert plan_infer(cfg, C1, "qwen2_5_vl_72b").fits


def test_refuses_the_former_72b_grpo_settings_with_the_reason():
    # Before the fix: vLLM colocated at tensor parallel size 1, 0.4 of an 80 GB GPU, model-default length.
    cfg = load_stage("stage1_format_grpo", ["model_preset=qwen2_5_vl_72b", "rollout.vllm_tensor_parallel_size=1",
                                            "rollout.vllm_max_model_len=null"])
    plan = plan_stage(cfg, C3)
    assert not plan.fits
    (reason,) = plan.refusals
    assert "tensor_parallel_size 1" in reason and "32.0 GB" in reason
    assert "set rollout.vllm_tensor_parallel_size to 8" in reason
    engine = next(ph for ph in plan.phases if ph.name.startswith("vLLM engine"))
    assert engine.lines[0].bytes == model_shapes("qwen2_5_vl_72b").total * 2  # the full bf16 copy, 146.8 GB
    assert any("vllm_max_model_len unset" in n for n in plan.notes)


def test_refuses_the_former_72b_clip_phase_and_bad_tensor_parallel_sizes():
    plan = plan_stage(load_stage("stage2_midtrain", ["model_preset=qwen2_5_vl_72b",
                                                     "clip.deepspeed=configs/deepspeed/zero2.json"]), C3)
    assert not plan.fits and "clip.deepspeed" in plan.refusals[0] and plan.refusals[0].startswith("CLIP phase")
    plan = plan_stage(load_stage("stage4_iou_grpo", ["model_preset=qwen2_5_vl_72b",
                                                     "rollout.vllm_tensor_parallel_size=3"]), C3)
    assert any("must divide NPROC_PER_NODE 8" in r for r in plan.refusals)


def test_the_72b_preset_is_the_sized_recipe():
    cfg = load_stage("stage1_format_grpo", ["model_preset=qwen2_5_vl_72b"])
    ro = cfg["rollout"]
    assert ro["vllm_tensor_parallel_size"] == 8 and ro["vllm_max_model_len"] == 18432
    assert ro["vllm_limit_mm_per_prompt"]["image"] >= 16
    assert load_stage("stage2_midtrain", ["model_preset=qwen2_5_vl_72b"])["clip"]["deepspeed"].endswith("zero3.json")
    assert not load_stage("stage3_sft", ["model_preset=qwen2_5_vl_72b"]).get("rollout")  # GRPO stages only


@pytest.mark.parametrize("size", [(56, 56), (640, 480), (1920, 1080), (4000, 3000), (30, 2000)])
def test_visual_tokens_match_qwen_vl_utils(size):
    from qwen_vl_utils import smart_resize

    width, height = size
    h, w = smart_resize(height, width, factor=28, min_pixels=3136, max_pixels=506464)
    assert visual_tokens(width, height, 506464) == (h // 28) * (w // 28)


def test_row_lengths_of_rows_written_by_the_builders(tmp_path):
    import layouts

    from vptracker.tasks.prepare import direct_config, prepare

    layouts.write_tnl2k(tmp_path / "data", "train", "seq", [(10, 10, 20, 20)] * 6, "a box", size=(56, 56))
    out = tmp_path / "rows"
    prepare(direct_config("tnl2k", str(tmp_path / "data"), "omnipt_sot", 4, 0, str(out), split="train",
                          options={"frames": 3}), progress=False)
    lengths = row_lengths(out, 506464)
    assert lengths.rows == 4 and lengths.max_images == 3
    assert lengths.max_visual_tokens == 3 * (4 + 2)  # 56x56 frames: 2x2 tokens and the vision start/end
    assert lengths.max_tokens > lengths.max_visual_tokens + 50  # the prompt's words and the answer's digits
    cfg = load_stage("stage3_sft", ["model_preset=qwen2_5_vl_7b"])
    plan = plan_stage(cfg, C1, lengths=lengths)
    assert 0 < lengths.max_answer_tokens < lengths.max_tokens
    logits = next(ln for ln in plan.phases[0].lines if ln.what == "logits")
    assert f"1x{lengths.max_answer_tokens} tokens" in logits.detail  # swift keeps the answer's logits only
    layers = next(ln for ln in plan.phases[0].lines if ln.what == "activations (layer inputs)")
    assert f"1x{lengths.max_tokens} tokens" in layers.detail


def test_malformed_row_names_file_and_line(tmp_path):
    (tmp_path / "train.jsonl").write_text('{"messages": []}\n{not json\n')
    with pytest.raises(ValueError, match=r"train.jsonl:2"):
        row_lengths(tmp_path, 506464)


def test_cli_refuses_with_exit_code_and_reason(capsys):
    from vptracker.cli import main

    assert main(["plan", "stage1_format_grpo", "model_preset=qwen2_5_vl_72b", "rollout.vllm_tensor_parallel_size=1",
                 "--nnodes", "3", "--nproc-per-node", "8", "--gpu-mem", "80GB"]) == 1
    assert "REFUSED: vLLM engine" in capsys.readouterr().out
    assert main(["plan", str(REPO / "configs/infer/omnipt_mot.yaml"), "--model", "qwen2_5_vl_7b"]) == 0


def test_clip_builds_training_arguments_before_the_model(monkeypatch, tmp_path):
    """ZeRO-3 partitions at load only if the DeepSpeed config is registered before from_pretrained."""
    import transformers

    from vptracker.train import clip

    calls = []

    def fake_args(cfg):
        calls.append("training_arguments")
        raise RuntimeError("stop")  # the order is all this test needs

    monkeypatch.setattr(clip, "training_arguments", fake_args)
    monkeypatch.setattr(transformers.AutoProcessor, "from_pretrained",
                        lambda *a, **k: calls.append("processor") or (_ for _ in ()).throw(RuntimeError("late")))
    with pytest.raises(RuntimeError, match="stop"):
        clip.build_trainer({"family": "qwen2_5_vl", "model": str(tmp_path), "output_dir": str(tmp_path)})
    assert calls == ["training_arguments"]


def test_check_before_run_raises_on_the_former_72b_settings_and_skips_cpu_profiles():
    from vptracker.plan.memory import PlanError
    from vptracker.plan.run import check_before_run

    bad = load_stage("stage4_iou_grpo", ["model_preset=qwen2_5_vl_72b", "rollout.vllm_tensor_parallel_size=1"])
    with pytest.raises(PlanError, match="set rollout.vllm_tensor_parallel_size to 8"):
        check_before_run(bad, C3)
    assert check_before_run(load_stage("stage4_iou_grpo", ["model_preset=qwen2_5_vl_72b"]), C3).fits
    assert check_before_run(load_stage("stage3_sft", ["profile=cpu"]), C3) is None


def test_row_lengths_of_rows_prepared_from_real_frames(shared_data, tmp_path):
    from PIL import Image

    from vptracker.tasks.prepare import direct_config, prepare

    prepare(direct_config("otb", str(shared_data / "otb"), "omnipt_sot", 6, 0, str(tmp_path)), progress=False)
    lengths = row_lengths(tmp_path, 506464)
    rows = [json.loads(line) for f in tmp_path.glob("*.jsonl") for line in f.read_text().splitlines()]
    # the prepare's own count (+2: <|vision_start|>, <|vision_end|>), and Qwen's resize itself
    expected = max(sum(visual_tokens(*Image.open(p).size, 506464) + 2 for p in row["images"]) for row in rows)
    assert lengths.rows == len(rows) == 6 and lengths.max_images == 16
    assert lengths.max_visual_tokens == expected
    plan = plan_stage(load_stage("stage3_sft", ["model_preset=qwen2_5_vl_7b"]), C1, lengths=lengths)
    assert plan.fits and not any("no data given" in n for n in plan.notes)


def test_activations_with_and_without_gradient_checkpointing_agree_across_plans():
    def act_total(plan):
        return sum(ln.bytes for ln in plan.phases[-1].lines if ln.what.startswith(("activations", "vision act")))

    on = plan_stage(load_stage("stage3_sft", ["model_preset=qwen2_5_vl_7b"]), C1)
    off = plan_stage(load_stage("stage3_sft", ["model_preset=qwen2_5_vl_7b", "swift.gradient_checkpointing=false"]), C1)
    assert act_total(off) > 5 * act_total(on)
    assert f"with gradient_checkpointing false the activations would take {act_total(off) / GB:.1f} GB" in on.notes
    assert not off.fits and "set swift.gradient_checkpointing true" in off.refusals[0]
