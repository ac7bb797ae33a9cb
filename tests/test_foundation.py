"""Foundation: CLI, tiny offline models of every family, torchvision on CPU, configs, text readers."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vptracker.config import apply_overrides, load_config
from vptracker.datasets.base import DatasetFormatError
from vptracker.datasets.textfiles import read_boxes, read_flags
from vptracker.models.families import detect_family, get_family
from vptracker.models.qwen_tokenizer import FIRST_SPECIAL_ID, QWEN_SPECIAL_TOKENS
from vptracker.tiny.model import qwen_families, tiny_families

ROOT = Path(__file__).resolve().parents[1]


def test_cli_lists_subcommands():
    out = subprocess.run([sys.executable, "-m", "vptracker", "--help"], capture_output=True, text=True, check=True)
    assert "make-tiny-model" in out.stdout
    for module in (ROOT / "vptracker" / "commands").glob("[a-z]*.py"):
        assert module.stem.replace("_", "-") in out.stdout


def test_torchvision_imports_on_this_torch():
    import torch
    import torchvision
    from torchvision.ops import box_iou

    assert torchvision.__version__.startswith("0.28")
    assert box_iou(torch.tensor([[0.0, 0, 2, 2]]), torch.tensor([[1.0, 1, 3, 3]])).item() == pytest.approx(1 / 7)


def test_torchvision_hook_is_inert_on_cuda_builds(monkeypatch, tmp_path):
    import torch

    from vptracker.models import torchvision_hook

    monkeypatch.setattr(torchvision_hook, "_site_packages", lambda: tmp_path)
    (tmp_path / torchvision_hook.PTH_NAME).write_text("import x\n")
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    assert "not needed" in torchvision_hook.install()
    assert not (tmp_path / torchvision_hook.PTH_NAME).exists()
    monkeypatch.setattr(torch.version, "cuda", None)
    torchvision_hook.install()
    assert (tmp_path / torchvision_hook.PTH_NAME).exists()


@pytest.mark.parametrize("family", tiny_families())
def test_tiny_model_loads_and_generates_in_transformers_and_swift(family, tiny_model_factory, tmp_path):
    import torch
    from swift import InferRequest, RequestConfig, TransformersEngine
    from transformers import AutoModelForImageTextToText, AutoProcessor

    path = tiny_model_factory(family)
    meta = json.loads((path / "vptracker_tiny.json").read_text())
    assert meta["family"] == family and meta["hidden"] == 64 and meta["layers"] == 2
    config = json.loads((path / "config.json").read_text())
    assert detect_family(path) == family
    processor = AutoProcessor.from_pretrained(path)
    tok = processor.tokenizer
    if family in qwen_families():   # swift's own Qwen templates hard-code these ids
        for offset, token in enumerate(QWEN_SPECIAL_TOKENS):
            assert tok.convert_tokens_to_ids(token) == FIRST_SPECIAL_ID + offset
    for token in get_family(family).box_tokens:
        assert tok.tokenize(token) == [token]
    assert tok.decode(tok("<bbox>12,34,56,78</bbox>")["input_ids"]) == "<bbox>12,34,56,78</bbox>"

    model = AutoModelForImageTextToText.from_pretrained(path)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8))
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Where?"}]}]
    prompt = processor.apply_chat_template(msgs, add_generation_prompt=True)
    inputs = processor(text=[prompt], images=[image], return_tensors="pt")
    image_id = config.get("image_token_id", config.get("image_token_index"))
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert out.shape[1] == inputs["input_ids"].shape[1] + 4

    image_path = tmp_path / "frame.png"
    image.save(image_path)
    # swift's names for this checkpoint, from the family registry (InternVL2.5 native: internvl / internvl_hf)
    model_type, template = get_family(family).swift_names(config["model_type"])
    engine = TransformersEngine(str(path), model_type=model_type, template_type=template, max_batch_size=2)
    request = InferRequest(messages=[{"role": "user", "content": "<image>Track the object."}], images=[str(image_path)])
    if family not in qwen_families():   # the tiling templates count tiles as the processor does
        assert engine.template.encode(request)["input_ids"].count(image_id) == int((inputs["input_ids"] == image_id).sum())
    responses = engine.infer([request, request], RequestConfig(max_tokens=4, temperature=0))
    assert len(responses) == 2
    assert responses[0].choices[0].message.content == responses[1].choices[0].message.content


@pytest.mark.parametrize("family", tiny_families())
def test_tiny_models_never_sample_a_media_token(family, tiny_model_factory):
    """swift's GRPO samples through its TransformersEngine and re-encodes the completion; a media
    placeholder in it is one image too many and kills the stage (seen at the 128 px MOT demo's first
    step). With every logit pushed to the media tokens, sampling still avoids them; without the
    tiny model's suppress list it picks them."""
    from swift import InferRequest, RequestConfig, TransformersEngine

    from vptracker.tiny.model import MEDIA_TOKENS

    path = tiny_model_factory(family)
    config = json.loads((path / "config.json").read_text())
    model_type, template = get_family(family).swift_names(config["model_type"])
    engine = TransformersEngine(str(path), model_type=model_type, template_type=template, max_batch_size=1)
    media = [i for i, t in engine.tokenizer.added_tokens_decoder.items() if t.content in MEDIA_TOKENS]
    assert media and sorted(engine.generation_config.suppress_tokens) == sorted(media)
    head = engine.model.get_output_embeddings()
    eos = set(np.atleast_1d(engine.generation_config.eos_token_id).tolist())

    def push(_module, _inputs, logits):   # media tokens first, then anything but the end
        logits[..., media] += 1e4
        logits[..., [i for i in range(logits.shape[-1]) if i not in eos and i not in media][:5]] += 5e3
        return logits

    head.register_forward_hook(push)
    request = InferRequest(messages=[{"role": "user", "content": "Track the object."}])
    sampled = RequestConfig(max_tokens=6, temperature=1.0, top_k=10)
    text = engine.infer([request], sampled)[0].choices[0].message.content
    assert text and not any(engine.tokenizer.convert_ids_to_tokens(i) in text for i in media)
    engine.generation_config.suppress_tokens = None
    text = engine.infer([request], sampled)[0].choices[0].message.content
    assert any(engine.tokenizer.convert_ids_to_tokens(i) in text for i in media)


@pytest.mark.slow
def test_make_tiny_model_cli(tmp_path):
    out = tmp_path / "m"
    subprocess.run([sys.executable, "-m", "vptracker", "make-tiny-model", "--family", "qwen2_vl", "--out", str(out),
                    "--hidden", "32"], check=True, capture_output=True)
    config = json.loads((out / "config.json").read_text())
    assert config["text_config"]["hidden_size"] == 32
    assert config["image_token_id"] == 151655 and config["vision_start_token_id"] == 151652


@pytest.mark.parametrize("merge", [2, 1])
def test_compact_vocab_model_runs_through_our_templates(tmp_path, merge):
    """A compact-vocabulary tiny model (special tokens right after the BPE) tracks through the
    vptracker engine: its template reads the media token ids from the tokenizer. With the ViT's
    spatial merge at 1 every patch is a visual token (the demo's finer grid)."""
    from transformers import AutoConfig, AutoTokenizer

    from vptracker.infer.engine import Request, make_engine

    out = tmp_path / "m"
    subprocess.run([sys.executable, "-m", "vptracker", "make-tiny-model", "--family", "qwen3_vl", "--out", str(out),
                    "--hidden", "32", "--layers", "1", "--vision-depth", "1", "--compact-vocab",
                    "--merge-size", str(merge)], check=True, capture_output=True)
    config, tok = AutoConfig.from_pretrained(out), AutoTokenizer.from_pretrained(out)
    assert config.text_config.vocab_size <= 1024 and len(tok) <= config.text_config.vocab_size
    assert config.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>") < 1024
    assert config.vision_start_token_id == tok.convert_tokens_to_ids("<|vision_start|>")
    image = tmp_path / "frame.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 96, 3), dtype=np.uint8)).save(image)
    engine = make_engine(out, max_tokens=3)
    assert engine.swift.template.image_token_id == config.image_token_id
    encoded = engine.swift.template.encode({"messages": [{"role": "user", "content": "<image>Where?"}],
                                            "images": [str(image)]})
    grid = encoded["image_grid_thw"][0].tolist()
    assert encoded["input_ids"].count(config.image_token_id) == grid[1] * grid[2] // merge ** 2
    answers = engine.generate([Request.user("<image>Where?", [str(image)]), Request.user("<image><image>Where?", [str(image)] * 2)])
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)


def test_our_templates_keep_qwen_media_ids_for_real_layouts(tiny_model_factory):
    from vptracker.infer.engine import make_engine

    engine = make_engine(tiny_model_factory("qwen2_5_vl"), max_tokens=2)
    assert (engine.swift.template.image_token_id, engine.swift.template.video_token_id) == (151655, 151656)


def test_config_defaults_and_overrides(tmp_path):
    (tmp_path / "base.yaml").write_text("model: {family: qwen2_5_vl, lr: 1.0e-5}\nsteps: 10\n")
    (tmp_path / "exp.yaml").write_text("defaults: [base.yaml]\nsteps: 20\n")
    cfg = load_config(tmp_path / "exp.yaml", ["model.lr=2e-5", "stages=[sft, grpo]", "lora=false"])
    assert cfg == {"model": {"family": "qwen2_5_vl", "lr": 2e-5}, "steps": 20, "stages": ["sft", "grpo"],
                   "lora": False}
    with pytest.raises(ValueError, match="key=value"):
        apply_overrides({}, ["oops"])
    (tmp_path / "bad.yaml").write_text("a: [1, 2\n")
    with pytest.raises(ValueError, match=r"bad.yaml:\d+: expected valid YAML"):
        load_config(tmp_path / "bad.yaml")


def test_annotation_text_quirks(tmp_path):
    f = tmp_path / "groundtruth.txt"
    f.write_bytes(b"1,2,3,4\r\n5\t6\t7\t8\r\n9 10 11 12,\r\n\r\n")
    np.testing.assert_array_equal(read_boxes(f), [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]])
    (tmp_path / "full_occlusion.txt").write_text("0,0,1,1,0")
    assert read_flags(tmp_path / "full_occlusion.txt").tolist() == [0, 0, 1, 1, 0]
    (tmp_path / "bad.txt").write_text("1,2,3,4\n1,2,x,4\n")
    with pytest.raises(DatasetFormatError, match=r"bad.txt:2: expected 4 numbers"):
        read_boxes(tmp_path / "bad.txt")
    with pytest.raises(DatasetFormatError, match="missing.txt: expected an existing annotation file"):
        read_boxes(tmp_path / "missing.txt")
