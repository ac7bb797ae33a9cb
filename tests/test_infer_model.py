"""The real loops on a real (tiny, random-weight) model through ms-swift, on real OTB frames."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vptracker.datasets import load
from vptracker.infer import make_engine, run_task, track_sot
from vptracker.infer.common import truncate
from vptracker.tasks import get_task

pytestmark = pytest.mark.slow
CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "infer"


def test_cli_tracks_real_otb_frames_with_a_tiny_model(tmp_path, tiny_model, shared_data, monkeypatch):
    from vptracker.cli import main

    out = tmp_path / "otb"
    argv = ["infer", "--config", str(CONFIGS / "tiny_cpu.yaml"), "--task", "vptracker_sot", "--model",
            str(tiny_model), "--dataset", "otb", "--root", str(shared_data / "otb"), "--out", str(out),
            "--max-frames", "3", "--limit", "2", "max_tokens=8", "progress=false"]
    assert main(argv) == 0
    sequences = load("otb", shared_data / "otb")[:2]
    for seq in sequences:
        rows = [[float(v) for v in line.split(",")] for line in (out / f"{seq.name}.txt").read_text().splitlines()]
        assert len(rows) == 3
        np.testing.assert_allclose(rows[0], seq.tracks[0].boxes[0])      # first line: the initial box
        for x, y, w, h in rows:
            assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= seq.width and y + h <= seq.height
    log = [json.loads(line) for line in (out / "responses.jsonl").read_text().splitlines()]
    assert len(log) == 4 and all(isinstance(entry["answer"], str) for entry in log)
    record = json.loads((out / "infer_config.vptracker_sot.json").read_text())
    assert record["family"] == "qwen2_5_vl" and record["trust_remote_code"] is False
    assert record["decoding"] == {"max_tokens": 8, "temperature": 0.0, "top_p": 1.0, "top_k": 0,
                                  "repetition_penalty": 1.0}
    # a restart finds everything done and does not even load the model
    import vptracker.infer

    before = (out / "responses.jsonl").read_bytes()

    def no_model(*args, **kwargs):
        raise AssertionError("a finished run must not load the model")
    monkeypatch.setattr(vptracker.infer, "make_engine", no_model)
    assert main(argv) == 0
    assert (out / "responses.jsonl").read_bytes() == before


def test_vptracker_special_tokens_are_single_tokens(tiny_model):
    engine = make_engine(tiny_model, special_tokens=get_task("vptracker_sot").contract().special_tokens, max_tokens=4,
                         max_pixels=50176)
    tokenizer = engine.swift.tokenizer
    for token in ("<ref>", "</ref>", "<template>", "</template>", "<search>", "</search>"):
        assert tokenizer.tokenize(token) == [token]
    assert engine.family == "qwen2_5_vl"


@pytest.mark.parametrize("family,task", [("qwen2_5_vl", "omnipt_mot"), ("qwen3_vl", "omnipt_sot")])
def test_multi_round_loops_run_on_a_tiny_model(tmp_path, tiny_model_factory, shared_data, family, task):
    model = tiny_model_factory(family)
    engine = make_engine(model, max_tokens=6, max_pixels=50176, max_batch_size=4)
    assert engine.family == family
    seqs = [truncate(s, 4) for s in load("otb", shared_data / "otb")[:2]]
    if task == "omnipt_sot":
        summary = track_sot(engine, seqs, tmp_path, task=task, options={"frames_per_sample": 3}, progress=False)
        assert all(len((tmp_path / f"{s.name}.txt").read_text().splitlines()) == 4 for s in seqs)
    else:
        summary = run_task(task, engine, seqs, tmp_path, {"frames_per_sample": 3}, progress=False)
        assert all((tmp_path / f"{s.name}.txt").exists() for s in seqs)
    assert summary.stats.engine_calls < summary.stats.requests   # two sequences per call


def test_infer_sh_runs_one_worker_per_device_and_merges(tmp_path, tiny_model, shared_data):
    import os
    import subprocess

    repo = Path(__file__).resolve().parents[1]
    out = tmp_path / "sharded"
    env = {**os.environ, "NPROC_PER_NODE": "2", "NNODES": "1", "NODE_RANK": "0"}
    cmd = ["bash", str(repo / "infer.sh"), "--config", str(CONFIGS / "tiny_cpu.yaml"), "--model", str(tiny_model),
           "--dataset", "otb", "--root", str(shared_data / "otb"), "--out", str(out), "--max-frames", "2",
           "max_tokens=4", "progress=false"]
    subprocess.run(cmd, check=True, env=env, cwd=repo, capture_output=True, text=True, timeout=600)
    names = sorted(s.name for s in load("otb", shared_data / "otb"))
    assert sorted(p.stem for p in out.glob("*.txt")) == names
    rid = json.loads((out / "infer_config.vptracker_sot.json").read_text())["run_id"]
    assert sorted((out / ".shards" / rid).iterdir()) == [out / ".shards" / rid / "0-of-2.done",
                                                        out / ".shards" / rid / "1-of-2.done"]
    log = [json.loads(line) for line in (out / "responses.jsonl").read_text().splitlines()]
    assert sorted(entry["sequence"] for entry in log) == names


def dry_run(tmp_path, env, *args):
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k not in ("CUDA_VISIBLE_DEVICES", "NPROC_PER_NODE")} | env
    result = subprocess.run(["bash", str(repo / "infer.sh"), "--model", "m", "--out", str(tmp_path), *args],
                            env={**env, "DRY_RUN": "1", "PYTHON": sys.executable}, cwd=repo, capture_output=True,
                            text=True, timeout=120, check=False)
    return result.returncode, result.stdout.splitlines(), result.stderr


def test_infer_sh_dry_run_assigns_global_shards(tmp_path):
    rc, lines, _ = dry_run(tmp_path, {"NPROC_PER_NODE": "4", "NNODES": "3", "NODE_RANK": "1",
                                      "CUDA_VISIBLE_DEVICES": "0,1,2,3"})
    assert rc == 0
    workers = [line for line in lines if "--shard" in line]
    assert [line.split("--shard ")[1].split()[0] for line in workers] == ["4/12", "5/12", "6/12", "7/12"]
    assert [line.split()[0] for line in workers] == [f"CUDA_VISIBLE_DEVICES={r}" for r in range(4)]


def test_infer_sh_gives_each_worker_the_tensor_parallel_degree_of_the_visible_gpus(tmp_path):
    # a scheduler gave this job GPUs 2,3,5,7: two workers of two GPUs each, never GPUs 0 and 1
    rc, lines, _ = dry_run(tmp_path, {"CUDA_VISIBLE_DEVICES": "2,3,5,7"}, "engine_kwargs.tensor_parallel_size=2")
    assert rc == 0
    workers = [line for line in lines if "--shard" in line]
    assert [line.split()[0] for line in workers] == ["CUDA_VISIBLE_DEVICES=2,3", "CUDA_VISIBLE_DEVICES=5,7"]
    assert [line.split("--shard ")[1].split()[0] for line in workers] == ["0/2", "1/2"]
    rc, lines, _ = dry_run(tmp_path, {"CUDA_VISIBLE_DEVICES": "4,5,6,7,8,9,10,11"},
                           "engine_kwargs.tensor_parallel_size=4")
    assert [line.split()[0] for line in lines if "--shard" in line] == ["CUDA_VISIBLE_DEVICES=4,5,6,7",
                                                                        "CUDA_VISIBLE_DEVICES=8,9,10,11"]
    # more workers than the visible GPUs can hold is refused before anything starts
    rc, _, err = dry_run(tmp_path, {"CUDA_VISIBLE_DEVICES": "0,1,2", "NPROC_PER_NODE": "2"},
                         "engine_kwargs.tensor_parallel_size=2")
    assert rc == 2 and "3 visible" in err
    # no GPU visible: one CPU worker, CUDA_VISIBLE_DEVICES left as the scheduler set it
    rc, lines, _ = dry_run(tmp_path, {"CUDA_VISIBLE_DEVICES": ""})
    worker = next(line for line in lines if "--shard" in line)
    assert rc == 0 and worker.split()[1:4] == ["-m", "vptracker", "infer"] and "CUDA" not in worker


def test_decoding_is_stated_not_inherited_from_the_checkpoint(tiny_model, tmp_path):
    """Real Qwen2.5-VL checkpoints carry repetition_penalty 1.05: it must not apply behind the config's back."""
    from vptracker.infer.engine import Decoding

    model = tmp_path / "model"
    model.mkdir()
    for path in tiny_model.iterdir():
        if path.name != "generation_config.json":
            (model / path.name).symlink_to(path)
    generation = json.loads((tiny_model / "generation_config.json").read_text())
    generation.update(repetition_penalty=1.05, top_k=1, top_p=0.001, temperature=0.1, do_sample=True)
    (model / "generation_config.json").write_text(json.dumps(generation))
    engine = make_engine(model, max_pixels=50176, decoding=Decoding(max_tokens=7))
    assert engine.checkpoint_generation_config["repetition_penalty"] == 1.05   # reported, and set aside
    used = engine.swift._prepare_generation_config(engine.request_config)
    assert (used.repetition_penalty, used.max_new_tokens, used.do_sample) == (1.0, 7, False)
    assert engine.swift.model.generation_config.eos_token_id == generation["eos_token_id"]
    sampled = make_engine(model, max_pixels=50176, decoding=Decoding(temperature=0.7, top_p=0.9, top_k=0))
    used = sampled.swift._prepare_generation_config(sampled.request_config)
    assert (used.temperature, used.top_p, used.repetition_penalty, used.do_sample) == (0.7, 0.9, 1.0, True)
    assert used.top_k == len(sampled.swift.tokenizer)     # "no cut", not transformers' default 50


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_the_model_sees_the_image_size_the_boxes_are_mapped_with(tiny_model_factory, shared_data, family):
    """Boxes in the 'resized' convention only land right if our resize is the engine's resize."""
    from PIL import Image

    from vptracker.infer import TaskOptions
    from vptracker.infer.engine import Request

    engine = make_engine(tiny_model_factory(family), max_tokens=4, max_pixels=40000, min_pixels=3136)
    frame = Image.open(shared_data / "otb" / "Football1" / "img" / "0001.jpg").convert("RGB")
    cmap = TaskOptions(family=family, box_scale="resized", min_pixels=3136, max_pixels=40000).coord_map(*frame.size)
    encoded = engine.swift.template.encode(engine._swift_request(Request.user("<image>where?", [frame])))
    _, grid_h, grid_w = encoded["image_grid_thw"][0].tolist()
    patch = engine.swift.processor.image_processor.patch_size
    assert (grid_w * patch, grid_h * patch) == (cmap.resized_width, cmap.resized_height)
    assert (cmap.resized_width, cmap.resized_height) != frame.size


def test_requests_are_chunked_by_prompt_length_and_answered_in_order(shared_data):
    """With more requests than the engine's batch (swift runs chunks of max_batch_size, each padded to
    its longest prompt), prompts of similar length go together; answers come back in request order."""
    from types import SimpleNamespace

    from PIL import Image

    from vptracker.infer.engine import Request, SwiftEngine
    from vptracker.infer.engine_speed import prompt_tokens

    frames = [Image.open(shared_data / "otb" / seq / "img" / "0001.jpg").convert("RGB")
              for seq in ("Couple", "Football1", "Crossing")]
    sizes = [1.0, 3.0, 0.5, 2.0, 1.5, 0.7]
    requests = [Request.user(f"<image>request {i}", [frames[i % 3].resize((int(frames[i % 3].width * k),
                                                                           int(frames[i % 3].height * k)))])
                for i, k in enumerate(sizes)]
    chunks = []

    class Swift:
        max_batch_size = 2
        generation_config = None

        def infer(self, batch, config, use_tqdm=False):
            chunks.append([r.messages[0]["content"] for r in batch])
            return [SimpleNamespace(choices=[SimpleNamespace(message=SimpleNamespace(content=r.messages[0]["content"]))])
                    for r in batch]

    engine = SwiftEngine(Swift(), "qwen2_5_vl", max_pixels=28 * 28 * 1280)
    answers = engine.generate(requests)
    assert answers == [r.messages[0]["content"] for r in requests]
    lengths = {r.messages[0]["content"]: prompt_tokens(r, "qwen2_5_vl", engine.max_pixels) for r in requests}
    sent = [lengths[text] for text in chunks[0]]
    assert sent == sorted(sent) and len(set(sent)) == len(sent)
    engine.sort_by_length = False                      # as given: what swift used to receive
    engine.generate(requests)
    assert chunks[1] == [r.messages[0]["content"] for r in requests]
    engine.sort_by_length, Swift.max_batch_size = True, 8  # one chunk: nothing to gain, order kept
    engine.generate(requests)
    assert chunks[2] == chunks[1]


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_patch_embedding_as_a_matrix_product_is_the_convolution(tiny_model_factory, family):
    """The CPU engine runs the ViT's patch embedding (a Conv3d with kernel = stride) as a matrix product:
    same output as the convolution, and the engine's answers do not change."""
    import torch

    from vptracker.infer.engine import Request
    from vptracker.infer.engine_speed import patch_embeds as _patch_embeds

    engine = make_engine(tiny_model_factory(family), max_tokens=6, max_pixels=40000)
    (embed,) = _patch_embeds(engine.swift.model)
    rows = torch.randn(50, embed.proj.weight[0].numel())
    with torch.no_grad():
        fast = embed(rows)
        assert engine.patch_embed_matmul(False) == 1 and "forward" not in embed.__dict__
        slow = embed(rows)
    torch.testing.assert_close(fast, slow, rtol=1e-4, atol=1e-5)
    from PIL import Image

    request = Request.user("<image>where?", [Image.new("RGB", (200, 150), (200, 30, 30))])
    before = engine.generate([request])
    engine.patch_embed_matmul(True)
    assert engine.generate([request]) == before
