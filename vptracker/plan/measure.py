"""Peak memory of one training step at real width on CPU, measured and planned, side by side.

``python -m vptracker.plan.measure --preset qwen2_5_vl_3b --layers 2 --vision-layers 2 --tokens 512``
builds the preset's real widths with few layers (:func:`vptracker.tiny.model.real_width_config`),
runs one LoRA SFT step as the OmniPT stages do (rank 16, dropout 0.05 on every LLM linear layer,
AdamW, SDPA attention, float32: the CPU profile) on one image and ``tokens`` tokens, and prints the
process's resident memory before the step and at the step's peak (``VmHWM``, reset just before
the step), next to what :func:`vptracker.plan.run.plan_stage` plans for the same run.
"""
from __future__ import annotations

import argparse
import inspect
import json
import re
import sys
import tempfile
from pathlib import Path

from vptracker.models.shapes import hf_config
from vptracker.plan.memory import GB, Cluster
from vptracker.plan.rows import RowLengths
from vptracker.plan.run import plan_stage
from vptracker.tiny.model import real_width_config
from vptracker.train.stages import load_stage

LORA_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"


def _status(key: str) -> int:
    text = Path("/proc/self/status").read_text()
    return int(re.search(key + r":\s+(\d+) kB", text).group(1)) * 1024


def measure(preset: str, layers: int, vision_layers: int, tokens: int, side: int = 224) -> dict:
    """Resident bytes: after imports, before the step (model built), and the step's peak."""
    import ctypes
    import gc

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    baseline = _status("VmRSS")
    cfg = real_width_config(preset, layers, vision_layers)
    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_config(hf_config(cfg), dtype=torch.float32, attn_implementation="sdpa")
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules=LORA_TARGETS))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    vision = cfg["vision_config"]
    patch, merge = vision["patch_size"], vision.get("spatial_merge_size", 2)
    grid = side // patch
    visual = (grid // merge) ** 2
    image_pad, start, end = cfg["image_token_id"], cfg["vision_start_token_id"], cfg["vision_end_token_id"]
    ids = torch.randint(0, 150000, (1, tokens))
    ids[0, 0], ids[0, 1 + visual] = start, end
    ids[0, 1:1 + visual] = image_pad
    pixels = torch.randn(grid * grid, 3 * vision.get("temporal_patch_size", 2) * patch * patch)
    model.train()
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # what model building freed goes back to the system
    before = _status("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM: the peak from here on is the step's
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "pixel_values": pixels,
              "image_grid_thw": torch.tensor([[1, grid, grid]]), "labels": ids.clone()}
    if "mm_token_type_ids" in inspect.signature(model.get_base_model().forward).parameters:
        inputs["mm_token_type_ids"] = (ids == image_pad).long()  # Qwen3-VL: 1 marks image tokens
    out = model(**inputs)
    out.loss.backward()
    optimizer.step()
    return {"baseline": baseline, "before_step": before, "step_peak": _status("VmHWM"), "visual_tokens": visual}


def planned(preset: str, layers: int, vision_layers: int, tokens: int, visual_tokens: int) -> float:
    """The plan's bytes for the same step (CPU profile: float32, no DeepSpeed, no checkpointing)."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "config.json").write_text(json.dumps(real_width_config(preset, layers, vision_layers)))
        cfg = load_stage("stage3_sft", ["profile=cpu", f"model={tmp}", f"swift.max_length={tokens}",
                                        "swift.lora_rank=16", "swift.lora_dropout=0.05",
                                        "swift.per_device_train_batch_size=1"])
        plan = plan_stage(cfg, Cluster(1, 1, 1000 * GB), tmp, RowLengths(1, tokens, tokens, visual_tokens, 1, "one row", tokens))
    return sum(line.bytes for line in plan.phases[0].lines if line.what != "CUDA reserve")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="qwen2_5_vl_3b")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--vision-layers", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=512)
    args = parser.parse_args(argv)
    got = measure(args.preset, args.layers, args.vision_layers, args.tokens)
    got["planned"] = planned(args.preset, args.layers, args.vision_layers, args.tokens, got["visual_tokens"])
    # The plan covers the model and the step; the interpreter and libraries are the baseline.
    got["planned_peak"] = got["baseline"] + got["planned"]
    got["error"] = got["planned_peak"] / got["step_peak"] - 1
    print(json.dumps(got))
    return 0


if __name__ == "__main__":
    sys.exit(main())
