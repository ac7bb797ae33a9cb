"""Real widths on a CPU: a preset's published widths and vocabulary with few layers.

The fast tests build on the meta device. The model-building, inference and memory tests run a
real-width model (0.4-0.8 B parameters, minutes on 2 cores, several GB): opt in with
``VPTRACKER_REAL_WIDTH=1``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vptracker.models.shapes import hf_config, read_config
from vptracker.tiny.model import real_width_config

REPO = Path(__file__).resolve().parents[1]
real_width = pytest.mark.skipif(os.environ.get("VPTRACKER_REAL_WIDTH") != "1",
                                reason="real-width model: minutes and GBs on a CPU; set VPTRACKER_REAL_WIDTH=1")


def _meta_params(cfg: dict) -> int:
    import torch
    from transformers import AutoModelForImageTextToText

    with torch.device("meta"):
        model = AutoModelForImageTextToText.from_config(hf_config(cfg))
    return sum(p.numel() for p in model.parameters())


def test_qwen3_vl_4b_widths_with_2_llm_and_4_vit_layers():
    cfg = real_width_config("qwen3_vl_4b", 2, 4)
    published, _ = read_config("qwen3_vl_4b")
    assert cfg["text_config"]["hidden_size"] == published["text_config"]["hidden_size"] == 2560
    assert cfg["text_config"]["vocab_size"] == 151936 and cfg["text_config"]["num_hidden_layers"] == 2
    assert cfg["vision_config"]["depth"] == 4
    # Three deepstack taps as in the real model, inside the 4 layers.
    assert cfg["vision_config"]["deepstack_visual_indexes"] == [0, 1, 2]
    assert _meta_params(cfg) == 754_243_584


def test_qwen2_5_vl_keeps_window_attention():
    cfg = real_width_config("qwen2_5_vl_3b", 2, 4)
    assert cfg["vision_config"]["fullatt_block_indexes"] == [3]  # layers 0-2 attend within windows
    assert cfg["vision_config"]["window_size"] == 112 and cfg["vision_config"]["intermediate_size"] == 3420
    assert cfg["hidden_size"] == 2048 and cfg["vocab_size"] == 151936 and cfg["num_hidden_layers"] == 2


def test_non_qwen_presets_are_refused_by_name():
    with pytest.raises(ValueError, match="internvl_chat model"):
        real_width_config("internvl2_5_4b", 2, 4)


@real_width
def test_make_tiny_model_preset_builds_and_answers(tmp_path):
    from PIL import Image

    from vptracker.cli import main
    from vptracker.infer.engine import Request, make_engine

    out = tmp_path / "q3b"
    assert main(["make-tiny-model", "--preset", "qwen2_5_vl_3b", "--layers", "2", "--vision-layers", "4",
                 "--out", str(out)]) == 0
    written = json.loads((out / "config.json").read_text())
    assert written["text_config"]["hidden_size"] == 2048 and written["text_config"]["vocab_size"] == 151936
    frame = tmp_path / "frame.png"
    Image.new("RGB", (640, 360), (120, 80, 40)).save(frame)
    engine = make_engine(out, max_tokens=8)
    (answer,) = engine.generate([Request.user("<image> Where is the object?", [str(frame)])])
    assert isinstance(answer, str)


@real_width
def test_planned_memory_within_15_percent_of_a_measured_training_step():
    result = subprocess.run([sys.executable, "-m", "vptracker.plan.measure", "--preset", "qwen2_5_vl_3b", "--layers",
                             "2", "--vision-layers", "2", "--tokens", "512"], check=False, capture_output=True,
                            text=True, timeout=1200, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr[-2000:]
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert abs(got["error"]) < 0.15, got
