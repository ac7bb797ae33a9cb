"""Runs over datasets: sharding, kill-and-resume, merging, fuzzed answers, engine failures, CLI errors."""
from __future__ import annotations

import json
import random
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_infer_loops import H, W, make_sequence

from vptracker.datasets.base import Sequence
from vptracker.infer import CallableEngine, merge, parse_shard, plan, run_task
from vptracker.infer.engine import Decoding, SwiftEngine, make_engine
from vptracker.infer.sides import tracking
from vptracker.infer.units import Unit

TASKS = ("vptracker_sot", "omnipt_sot", "omnipt_mot", "omnipt_rmot", "omnipt_caption")
OPTS = {"family": "qwen2_5_vl", "box_scale": "abs", "frames_per_sample": 3, "caption_frames": 4}


def units(lengths):
    return [Unit(f"u{i}", [Sequence(f"u{i}", "t", ["f"] * n, 8, 8)], [f"u{i}.txt"]) for i, n in enumerate(lengths)]


@given(st.lists(st.integers(1, 500), min_size=1, max_size=40), st.integers(1, 9))
def test_shards_cover_every_unit_once_longest_first_and_balanced(lengths, n):
    all_units = units(lengths)
    shards = [plan(all_units, (i, n)) for i in range(n)]
    keys = [u.key for shard in shards for u in shard]
    assert sorted(keys) == sorted(u.key for u in all_units)
    for shard in shards:
        assert [u.frames for u in shard] == sorted((u.frames for u in shard), reverse=True)
    loads = [sum(u.frames for u in shard) for shard in shards]
    assert max(loads) - min(loads) <= max(lengths)        # greedy LPT bound


def test_parse_shard_rejects_bad_input():
    assert parse_shard("2/4") == (2, 4) and parse_shard(None) == (0, 1)
    for bad in ("4/4", "-1/2", "1", "a/b", "0/0"):
        with pytest.raises(ValueError, match="shard"):
            parse_shard(bad)


def scripted(seed=0):
    """Deterministic answers that depend only on the request (so a resumed run sees the same ones)."""
    pool = ["<bbox>20,10,16,12</bbox><bbox>22,11,16,12</bbox><None>", "garbage", "<None>",
            '```json\n{"visible": "yes", "bbox": [22, 11, 40, 25]}\n```', '{"visible": "no"}',
            "The trajectory of the first people are: <bbox>20,10,16,12</bbox><bbox>21,10,16,12</bbox>",
            "A person walks."]

    def fn(request):
        key = f"{seed}|{json.dumps(request.to_json(), sort_keys=True)}"
        return pool[zlib.crc32(key.encode()) % len(pool)]
    return fn


class Killed(Exception):
    pass


def killing_engine(fn, after):
    engine = CallableEngine(fn)
    inner = engine.generate

    def generate(requests):
        if engine.calls >= after:
            raise Killed()
        return inner(requests)
    engine.generate = generate
    return engine


def snapshot(folder):
    """Every result file (lock files say which process held them last: bookkeeping, not results)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.relative_to(folder).as_posix().startswith(".locks/")}


@pytest.mark.parametrize("task", TASKS)
def test_killed_and_resumed_run_writes_the_same_files(tmp_path, task):
    seqs = [make_sequence(tmp_path / "data", f"s{i}", n=3 + 2 * i, scene=f"v{i}") for i in range(4)]
    run_task(task, CallableEngine(scripted()), seqs, tmp_path / "ref", OPTS, progress=False, concurrency=2)
    reference = snapshot(tmp_path / "ref")
    out = tmp_path / "resumed"
    kills, resumed = 0, 0
    for after in (2, 7, 9, 13):   # killed at several points, each restart resumes the previous one
        try:
            summary = run_task(task, killing_engine(scripted(), after), seqs, out, OPTS, progress=False,
                               concurrency=2)
            resumed += summary.skipped
        except Killed:
            kills += 1
            assert not list(out.rglob("*.tmp"))  # a kill between writes leaves no half-written file
    final = run_task(task, CallableEngine(scripted()), seqs, out, OPTS, progress=False, concurrency=2)
    assert kills >= 1 and resumed + final.skipped > 0
    assert snapshot(out) == reference
    again = CallableEngine(scripted())
    assert run_task(task, again, seqs, out, OPTS, progress=False).skipped == len(seqs) and again.calls == 0


def test_sharded_runs_merge_into_the_single_run(tmp_path):
    seqs = [make_sequence(tmp_path / "data", f"s{i}", n=2 + i) for i in range(7)]
    run_task("vptracker_sot", CallableEngine(scripted()), seqs, tmp_path / "one", OPTS, progress=False)
    done = []
    for i in range(3):
        summary = run_task("vptracker_sot", CallableEngine(scripted()), seqs, tmp_path / "many", OPTS,
                           shard=f"{i}/3", progress=False)
        done += summary.finished
    assert sorted(done) == sorted(s.name for s in seqs)
    assert not (tmp_path / "many" / "responses.jsonl").exists()   # shards leave the merge to infer.sh
    merge(tmp_path / "many")
    assert snapshot(tmp_path / "many") == snapshot(tmp_path / "one")


texts = st.one_of(
    st.text(max_size=200),
    st.lists(st.sampled_from(["<bbox>", "</bbox>", "<None>", ",", "-", "1e999", "nan", "12", "3.5", "[", "]",
                              '"visible": "yes"', '"bbox": [', "the trajectory of the first people are:",
                              "99999999999", "(", ")", " "]), max_size=60).map("".join))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(texts, min_size=1, max_size=12), st.sampled_from(TASKS + ("omnipt_crmot",)))
def test_no_answer_crashes_a_loop(tmp_path_factory, script, task):
    root = tmp_path_factory.mktemp("fuzz")
    seqs = [make_sequence(root / f"v{k}", "s", n=4, scene="S", view=f"View{k}") for k in (1, 2)]
    rng = random.Random(0)
    engine = CallableEngine(lambda r: rng.choice(script))
    summary = run_task(task, engine, seqs[:1] if task != "omnipt_crmot" else seqs, root / "out", OPTS,
                       progress=False)
    assert summary.finished
    for path in (root / "out").rglob("*.txt"):
        rows = np.array([[float(v) for v in line.split(",")] for line in path.read_text().splitlines()])
        assert np.isfinite(rows).all()
        if task.endswith("_sot"):
            assert rows.shape == (4, 4)
            assert (rows[:, 0] >= 0).all() and (rows[:, 0] + rows[:, 2] <= W + 1e-6).all()
            assert (rows[:, 1] >= 0).all() and (rows[:, 1] + rows[:, 3] <= H + 1e-6).all()


class FailingSwift:
    """Stands in for a swift engine whose batch fails because of one bad request."""

    def __init__(self):
        self.calls = []

    def infer(self, batch, config, use_tqdm=False):
        self.calls.append(len(batch))
        if len(batch) > 1 or "bad" in batch[0].messages[0]["content"]:
            raise RuntimeError("cannot encode")
        from types import SimpleNamespace

        msg = SimpleNamespace(content="ok:" + batch[0].messages[0]["content"])
        return [SimpleNamespace(choices=[SimpleNamespace(message=msg)])]


def test_swift_engine_retries_a_failed_batch_one_by_one():
    from vptracker.infer.engine import Request

    swift = FailingSwift()
    engine = SwiftEngine(swift, "qwen2_5_vl", max_tokens=8)
    got = engine.generate([Request.user("a"), Request.user("bad"), Request.user("c")])
    assert got == ["ok:a", "", "ok:c"] and swift.calls == [3, 1, 1, 1]
    # when every request fails the engine is broken: that is an error, not a row of empty answers
    with pytest.raises(RuntimeError, match="every request"):
        engine.generate([Request.user("bad 1"), Request.user("bad 2")])


def test_make_engine_errors_are_clear(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        make_engine(tmp_path / "nope", "qwen2_5_vl")
    with pytest.raises(ValueError, match="backend"):
        make_engine(tmp_path, "qwen2_5_vl", backend="onnx")
    from vptracker.models.folder import ModelDirError

    with pytest.raises(ModelDirError, match="config.json"):
        make_engine(tmp_path)
    (tmp_path / "config.json").write_text('{"model_type": "qwen2_5_vl"}')
    import builtins

    real_import = builtins.__import__

    def no_vllm(name, *args, **kwargs):
        if name == "vllm":
            raise ImportError("No module named 'vllm'")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_vllm)
    with pytest.raises(ImportError, match=r"gpu.*extra|GPU extra"):
        make_engine(tmp_path, "qwen2_5_vl", backend="vllm")


def test_cli_reports_missing_inputs(tmp_path, capsys):
    """Each is one line naming what is missing or wrong, with exit 2, not a traceback."""
    from vptracker.cli import main

    for argv, message in (
            (["infer", "--model", str(tmp_path)], "missing out"),
            (["infer", "--out", str(tmp_path / "o"), "--dataset", "otb", "--root", str(tmp_path)], "missing model"),
            (["infer", "--out", str(tmp_path / "o"), "task=nope"], "task='nope': expected one of"),
            (["infer", "--config", str(tmp_path / "missing.yaml"), "--out", str(tmp_path)], "missing.yaml: no such file"),
    ):
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and len(err.splitlines()) == 1, err
    assert main(["infer", "--out", str(tmp_path / "empty"), "--merge-only"]) == 0


def test_sot_track_without_tracks_requires_vptracker(tmp_path):
    seq = make_sequence(tmp_path, n=3, with_box=False)
    with pytest.raises(ValueError, match="first-frame box"):
        run_task("omnipt_sot", CallableEngine(lambda r: ""), [seq], tmp_path / "o", OPTS, progress=False)


def test_every_inference_config_resolves_to_a_task_and_known_options():
    from dataclasses import fields
    from pathlib import Path

    from vptracker.config import load_config
    from vptracker.infer import TaskOptions

    known = {f.name for f in fields(TaskOptions)} | {"max_visual_tokens"}
    configs = sorted((Path(__file__).resolve().parents[1] / "configs" / "infer").glob("*.yaml"))
    assert len(configs) >= 8
    for path in configs:
        cfg = load_config(path)
        tracking(cfg["task"])
        assert set(cfg["options"]) <= known, f"{path.name}: unknown options {set(cfg['options']) - known}"
        assert cfg["backend"] in ("transformers", "vllm") and cfg["loop"] in ("batched", "async")


KILLABLE = """
import sys, time, zlib, json
sys.path.insert(0, {tests!r})
from test_infer_loops import make_sequence
from test_infer_runner import scripted, OPTS
from pathlib import Path
from vptracker.infer import CallableEngine, run_task
seqs = [make_sequence(Path({data!r}), f"s{{i}}", n=3 + 2 * i) for i in range(6)]
fn = scripted()
def slow(request):
    time.sleep({delay})
    return fn(request)
run_task("vptracker_sot", CallableEngine(slow), seqs, {out!r}, OPTS, progress=False, concurrency=2)
"""


@pytest.mark.slow
def test_a_process_killed_at_random_points_resumes_to_the_same_files(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    tests = str(Path(__file__).resolve().parent)

    def script(out, delay):
        return KILLABLE.format(tests=tests, data=str(tmp_path / "data"), out=str(out), delay=delay)
    seqs = [make_sequence(tmp_path / "data", f"s{i}", n=3 + 2 * i) for i in range(6)]
    run_task("vptracker_sot", CallableEngine(scripted()), seqs, tmp_path / "ref", OPTS, progress=False, concurrency=2)
    out = tmp_path / "killed"
    finished = []
    for extra in (0.05, 0.15):   # SIGKILL mid-run, some time after a unit finished: no chance to clean up
        proc = subprocess.Popen([sys.executable, "-c", script(out, 0.03)])
        deadline = time.time() + 60
        while len(list(out.glob("*.txt"))) <= len(finished) and time.time() < deadline and proc.poll() is None:
            time.sleep(0.01)
        time.sleep(extra)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        finished = list(out.glob("*.txt"))
    assert 0 < len(finished) < 6
    run_task("vptracker_sot", CallableEngine(scripted()), seqs, out, OPTS, progress=False, concurrency=2)
    leftovers = {p.name for p in out.rglob("*.tmp")}
    assert {k: v for k, v in snapshot(out).items() if not k.endswith(".tmp")} == snapshot(tmp_path / "ref")
    assert all(name.startswith(".") for name in leftovers)   # a killed write leaves only a hidden temp file


def test_vllm_backend_is_selected_by_config_and_wired_to_swift(tmp_path, tiny_model, monkeypatch):
    import sys
    import types

    import swift.infer_engine

    created = {}

    class FakeSamplingParams:   # what swift's VllmEngine builds from generation_config.json
        def __init__(self, temperature=1.0, top_p=1.0, top_k=0, min_p=0.0, repetition_penalty=1.0, max_tokens=16,
                     stop=None, stop_token_ids=None):
            self.__dict__.update(locals())
            del self.__dict__["self"]

    class FakeVllm:
        def __init__(self, model, **kwargs):
            created.update(model=model, **kwargs)
            self.generation_config = FakeSamplingParams(repetition_penalty=1.05, top_k=1, stop=["<|im_end|>"])
            self.engine_args = types.SimpleNamespace(trust_remote_code=True)   # swift hard-codes True
            self._prepare_engine()

        def _prepare_engine(self):
            created["trust_remote_code_at_start"] = self.engine_args.trust_remote_code

    monkeypatch.setitem(sys.modules, "vllm", types.ModuleType("vllm"))
    monkeypatch.setitem(swift.infer_engine.__dict__, "VllmEngine", FakeVllm)  # without importing vllm_engine
    engine = make_engine(tiny_model, backend="vllm", max_batch_size=64, max_pixels=50176,
                         engine_kwargs={"gpu_memory_utilization": 0.5})
    assert isinstance(engine.swift, FakeVllm) and engine.backend == "vllm" and engine.family == "qwen2_5_vl"
    assert created["max_num_seqs"] == 64 and created["use_async_engine"] is True
    assert created["model_type"] == created["template_type"] == "qwen2_5_vl"
    assert created["gpu_memory_utilization"] == 0.5 and created["adapters"] is None
    assert created["trust_remote_code_at_start"] is False            # vLLM is told, not left to swift's True
    # decoding is ours: the checkpoint's sampling settings are set aside (its stop tokens kept)
    assert engine.checkpoint_generation_config == {"repetition_penalty": 1.05, "top_k": 1}
    assert engine.swift.generation_config.repetition_penalty == 1.0 and engine.swift.generation_config.top_k == 0
    assert engine.swift.generation_config.stop == ["<|im_end|>"]
    with pytest.raises(ValueError, match="repetition_penalty"):
        Decoding.from_config({"repetition_penalty": "nan"})
    with pytest.raises(ValueError, match="top_p"):
        Decoding.from_config({"top_p": "abc"})
    rc = engine.request_config
    assert (rc.max_tokens, rc.temperature, rc.top_p, rc.top_k, rc.repetition_penalty) == (256, 0.0, 1.0, 0, 1.0)
    # vLLM reads the tokenizer from disk: a checkpoint without the VPTracker tokens is refused clearly
    with pytest.raises(ValueError, match="special tokens"):
        make_engine(tiny_model, backend="vllm", special_tokens=("<template>",))


def test_two_sequences_writing_one_file_are_refused(tmp_path):
    views = [make_sequence(tmp_path / f"v{k}", "S_a man", n=3, scene="S", view=f"View{k}") for k in (1, 2)]
    with pytest.raises(ValueError, match="both write"):
        run_task("omnipt_mot", CallableEngine(lambda r: ""), views, tmp_path / "o", OPTS, progress=False)
    views[0].language = views[1].language = "a man"   # as CRMOT they are one unit with a file per view
    run_task("omnipt_crmot", CallableEngine(lambda r: ""), views, tmp_path / "o", OPTS, progress=False)
    assert sorted(p.name for p in (tmp_path / "o" / "S_a man").iterdir()) == ["View1.txt", "View2.txt"]
