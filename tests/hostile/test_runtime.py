"""Hostile runtime: model folders that carry code, names that are paths, reused folders, two processes."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from test_infer_loops import make_sequence

from vptracker.infer import CallableEngine, run_task
from vptracker.infer.locks import release, try_lock
from vptracker.infer.run_folder import RunFolderError
from vptracker.infer.runner import unit_lock_path
from vptracker.infer.sides import tracking
from vptracker.models.folder import ModelDirError, check_model_dir, remote_code_guard

TESTS = Path(__file__).resolve().parents[1]
CONFIGS = TESTS.parent / "configs" / "infer"
OPTS = {"family": "qwen2_5_vl", "box_scale": "abs", "frames_per_sample": 3, "caption_frames": 4}


def code_carrying_copy(model: Path, folder: Path, marker: Path, where: str = "config.json") -> Path:
    """A copy of ``model`` (weights linked) whose ``where`` names configuration_x.py, which writes ``marker``."""
    folder.mkdir(parents=True)
    for path in model.iterdir():
        if path.name != where:
            (folder / path.name).symlink_to(path)
    data = json.loads((model / where).read_text())
    data["auto_map"] = {"AutoConfig": "configuration_x.XConfig", "AutoTokenizer": ["tokenization_x.XTok", None]}
    (folder / where).write_text(json.dumps(data))
    code = f"open({str(marker)!r}, 'w').write('the model folder ran its code')\n"
    (folder / "configuration_x.py").write_text(code)
    (folder / "tokenization_x.py").write_text(code)
    return folder


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "marker.txt"
    yield path
    assert not path.exists(), "a model folder's own code ran"


def test_a_model_folder_with_an_auto_map_is_refused_by_the_engine_without_running_it(tiny_model, tmp_path, marker):
    from vptracker.infer import make_engine

    folder = code_carrying_copy(tiny_model, tmp_path / "evil", marker)
    with pytest.raises(ModelDirError, match=r"config.json: auto_map names code .*configuration_x.XConfig.*"
                                            r"--trust-remote-code"):
        make_engine(folder, max_tokens=2)
    tok = code_carrying_copy(tiny_model, tmp_path / "evil_tok", marker, where="tokenizer_config.json")
    with pytest.raises(ModelDirError, match="tokenizer_config.json: auto_map"):
        make_engine(tok, "qwen2_5_vl", max_tokens=2)
    assert check_model_dir(folder, trust_remote_code=True)["model_type"] == "qwen2_5_vl"   # allowed when asked


def test_vptracker_infer_refuses_a_code_carrying_model_before_anything_loads(tiny_model, tmp_path, marker,
                                                                            shared_data, capsys):
    from vptracker.cli import main

    folder = code_carrying_copy(tiny_model, tmp_path / "evil", marker)
    argv = ["infer", "--config", str(CONFIGS / "tiny_cpu.yaml"), "--model", str(folder), "--dataset", "otb",
            "--root", str(shared_data / "otb"), "--out", str(tmp_path / "out"), "--limit", "1", "--max-frames", "2",
            "progress=false"]
    assert main(argv) == 2  # bad input: one line, exit 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "auto_map" in err and "--trust-remote-code" in err
    assert not (tmp_path / "out").exists()


def test_the_guard_stops_swift_s_own_trust_remote_code_load(tiny_model, tmp_path, marker):
    """ms-swift 4.6 calls AutoConfig.from_pretrained(trust_remote_code=True) itself: under the guard it fails."""
    from transformers import AutoConfig

    folder = code_carrying_copy(tiny_model, tmp_path / "evil", marker)
    with remote_code_guard(), pytest.raises(ModelDirError, match="import Python code from a model folder"):
        AutoConfig.from_pretrained(str(folder), trust_remote_code=True)
    from transformers import dynamic_module_utils  # and the guard is gone afterwards

    assert dynamic_module_utils.get_class_in_module.__module__ == "transformers.dynamic_module_utils"


def test_model_dir_errors_are_one_line(tmp_path):
    for text, expected in (("{", "not valid JSON"), ("[1]", "JSON object"), (None, "missing")):
        folder = tmp_path / f"m{len(expected)}"
        folder.mkdir()
        if text is not None:
            (folder / "config.json").write_text(text)
        with pytest.raises(ModelDirError, match=expected) as err:
            check_model_dir(folder)
        assert "\n" not in str(err.value)
    with pytest.raises(ModelDirError, match="does not exist"):
        check_model_dir(tmp_path / "nope")


# --------------------------------------------------------------------------- names

def test_names_never_leave_their_own_folder(tmp_path):
    out = tmp_path / "out"
    rmot = [make_sequence(tmp_path / "d", f"r{i}", n=3, scene="0005", expression=e)
            for i, e in enumerate(("..", "../../escape", "left-car", ".responses"))]
    run_task("omnipt_rmot", CallableEngine(lambda r: "<None>"), rmot, out / "rmot", OPTS, progress=False)
    views = [make_sequence(tmp_path / f"v{k}", f"S{k}", n=3, scene="..", view=f"../View{k}", language="/..")
             for k in (1, 2)]
    run_task("omnipt_crmot", CallableEngine(lambda r: "<None>"), views, out / "crmot", OPTS, progress=False)
    sot = [make_sequence(tmp_path / "s", "seq", n=3)]
    sot[0].name = "../../sot"
    run_task("vptracker_sot", CallableEngine(lambda r: "no"), sot, out / "sot", OPTS, progress=False)
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and ".locks" not in p.parts)
    assert "rmot/0005/left-car/predict.txt" in written      # ordinary names are kept as they are
    assert "rmot/0005/_./predict.txt" in written and "rmot/0005/_._.._escape/predict.txt" in written
    assert "rmot/0005/_responses/predict.txt" in written   # cannot reach our own hidden folders
    assert "sot/_._.._sot.txt" in written
    assert sum(p.startswith("crmot/_._") and p.endswith("View1.txt") for p in written) == 1
    for folder in ("rmot", "crmot", "sot"):
        assert not any(p.name.endswith(".txt") for p in tmp_path.iterdir() if p.is_file())
        assert all((out / folder).resolve() in p.resolve().parents for p in (out / folder).rglob("*"))


# --------------------------------------------------------------------------- one run per folder

def fake_make_engine(calls):
    def make_engine(model, family, adapter=None, backend="transformers", **kwargs):
        calls.append({"model": model, **kwargs})
        engine = CallableEngine(lambda r: '```json\n{"visible": "yes", "bbox": [10, 10, 40, 40]}\n```')
        engine.family, engine.min_pixels, engine.max_pixels = family, kwargs["min_pixels"], kwargs["max_pixels"]
        return engine
    return make_engine


def cli(model, root, out, *extra):
    """``vptracker infer`` on two OTB sequences; ``extra`` holds flags and ``key=value`` overrides."""
    from vptracker.cli import main

    flags = [e for e in extra if "=" not in e or e.startswith("--")]
    overrides = [e for e in extra if "=" in e and not e.startswith("--")]
    return main(["infer", "--config", str(CONFIGS / "tiny_cpu.yaml"), "--model", str(model), "--dataset", "otb",
                 "--root", str(root), "--out", str(out), "--limit", "2", "--max-frames", "3", *flags,
                 "progress=false", *overrides])


def test_a_folder_made_by_another_run_is_refused_or_retracked_with_force(tiny_model_factory, tmp_path, shared_data,
                                                                        monkeypatch):
    import vptracker.infer

    calls = []
    monkeypatch.setattr(vptracker.infer, "make_engine", fake_make_engine(calls))
    model, other = tiny_model_factory("qwen2_5_vl"), tiny_model_factory("qwen3_vl")
    out = tmp_path / "out"
    assert cli(model, shared_data / "otb", out, "--trust-remote-code", "repetition_penalty=1.05") == 0
    record = json.loads((out / "infer_config.vptracker_sot.json").read_text())
    assert record["trust_remote_code"] is True and calls[0]["trust_remote_code"] is True
    assert record["decoding"] == {"max_tokens": 32, "temperature": 0.0, "top_p": 1.0, "top_k": 0,
                                  "repetition_penalty": 1.05}
    assert calls[0]["decoding"].repetition_penalty == 1.05
    results = sorted(p.name for p in out.glob("*.txt"))
    assert len(results) == 2
    # another model, or the same model with other decoding: refused, nothing touched
    for extra in (("--model", str(other)), ("--trust-remote-code", "max_tokens=8")):
        before = (out / "infer_config.vptracker_sot.json").read_bytes()
        with pytest.raises(RunFolderError, match="another run.*--force"):
            cli(model, shared_data / "otb", out, *extra)
        assert (out / "infer_config.vptracker_sot.json").read_bytes() == before
    # the same run resumes without rewriting its config or loading a model
    assert cli(model, shared_data / "otb", out, "--trust-remote-code", "repetition_penalty=1.05") == 0
    assert len(calls) == 1 and (out / "infer_config.vptracker_sot.json").read_bytes() == before
    # --force removes the old run's results and tracks again
    for path in out.glob("*.txt"):
        path.write_text("stale\n")
    assert cli(other, shared_data / "otb", out, "--force") == 0
    assert len(calls) == 2 and json.loads((out / "infer_config.vptracker_sot.json").read_text())["family"] == "qwen3_vl"
    assert all((out / name).read_text() != "stale\n" for name in results)


def test_results_without_a_run_config_are_not_adopted(tiny_model, tmp_path, shared_data, monkeypatch):
    import vptracker.infer

    monkeypatch.setattr(vptracker.infer, "make_engine", fake_make_engine([]))
    older = tmp_path / "older"            # what earlier versions left: parts beside a config without identity
    (older / ".responses").mkdir(parents=True)
    (older / ".responses" / "Couple-0123456789.jsonl").write_text("{}\n")
    (older / "infer_config.json").write_text('{"model": "elsewhere"}')
    with pytest.raises(RunFolderError, match="older version"):
        cli(tiny_model, shared_data / "otb", older)
    orphan = tmp_path / "orphan"
    (orphan / ".responses" / "vptracker_sot").mkdir(parents=True)
    with pytest.raises(RunFolderError, match="no run config describes"):
        cli(tiny_model, shared_data / "otb", orphan)
    assert cli(tiny_model, shared_data / "otb", older, "--force") == 0
    assert not (older / "infer_config.json").exists() and len(list(older.glob("*.txt"))) == 2


def test_tasks_share_a_folder_only_when_their_files_differ(tiny_model, tmp_path, shared_data, monkeypatch):
    """SMOT writes tracks (omnipt_mot) and then captions (omnipt_caption) into one folder; a task that
    would overwrite another's files (omnipt_sot over omnipt_mot: both write <seq>.txt) is refused."""
    import vptracker.infer

    monkeypatch.setattr(vptracker.infer, "make_engine", fake_make_engine([]))
    out = tmp_path / "smot"
    assert cli(tiny_model, shared_data / "otb", out, "--task", "omnipt_mot") == 0
    assert cli(tiny_model, shared_data / "otb", out, "--task", "omnipt_caption", f"options.tracks_from={out}") == 0
    assert sorted(p.name for p in out.glob("infer_config.*.json")) == ["infer_config.omnipt_caption.json",
                                                                      "infer_config.omnipt_mot.json"]
    queries = {json.loads(line)["request"].get("query") for line in (out / "responses.jsonl").read_text().splitlines()}
    assert {"detect", "video_caption"} <= queries                      # both tasks' answers are in the log
    assert len(list((out / ".responses").rglob("*.jsonl"))) == 4      # two tasks x two sequences, none overwritten
    with pytest.raises(RunFolderError, match="omnipt_mot that writes the same files"):
        cli(tiny_model, shared_data / "otb", out, "--task", "omnipt_sot")


def test_shard_markers_belong_to_their_run(tiny_model_factory, tmp_path, shared_data, monkeypatch):
    import vptracker.infer

    monkeypatch.setattr(vptracker.infer, "make_engine", fake_make_engine([]))
    out = tmp_path / "out"
    assert cli(tiny_model_factory("qwen2_5_vl"), shared_data / "otb", out, "--shard", "0/2") == 0
    rid = json.loads((out / "infer_config.vptracker_sot.json").read_text())["run_id"]
    assert [p.relative_to(out).as_posix() for p in (out / ".shards").rglob("*.done")] == [f".shards/{rid}/0-of-2.done"]
    assert cli(tiny_model_factory("qwen3_vl"), shared_data / "otb", out, "--shard", "1/2", "--force") == 0
    new = json.loads((out / "infer_config.vptracker_sot.json").read_text())["run_id"]
    assert new != rid and [p.relative_to(out).as_posix() for p in (out / ".shards").rglob("*.done")] == \
        [f".shards/{new}/1-of-2.done"]                    # the old run's marker cannot count for this one


# --------------------------------------------------------------------------- locks

def test_a_unit_another_process_holds_is_left_to_it(tmp_path):
    seqs = [make_sequence(tmp_path / "d", f"s{i}", n=3) for i in range(3)]
    out = tmp_path / "out"

    held = try_lock(unit_lock_path(out, tracking("vptracker_sot").units(seqs)[1]))
    assert held is not None
    summary = run_task("vptracker_sot", CallableEngine(lambda r: "no"), seqs, out, OPTS, progress=False)
    assert summary.locked == ["s1"] and sorted(summary.finished) == ["s0", "s2"] and not summary.merged
    assert not (out / "s1.txt").exists() and not (out / "responses.jsonl").exists()
    release(held)
    summary = run_task("vptracker_sot", CallableEngine(lambda r: "no"), seqs, out, OPTS, progress=False)
    assert summary.finished == ["s1"] and summary.merged and (out / "responses.jsonl").is_file()


def test_two_runs_on_one_folder_never_track_the_same_unit(tmp_path):
    """Two runs at once (threads: ``flock`` locks belong to open files, so they exclude each other as
    two processes do, without paying two torch imports) share the units and track each one once."""
    import threading
    import time

    seqs = [make_sequence(tmp_path / "data", f"s{i}", n=4) for i in range(6)]
    out = tmp_path / "out"
    seen: list[str] = []

    def slow(request):
        seen.append(request.audit["sequence"])
        time.sleep(0.05)
        return "no"
    from vptracker.models.families import smart_resize

    smart_resize(96, 64)   # the first call imports torch: not inside one thread while the other runs
    summaries = []
    threads = [threading.Thread(target=lambda: summaries.append(
        run_task("vptracker_sot", CallableEngine(slow), seqs, out, OPTS, progress=False, concurrency=1)))
        for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(summaries) == 2
    assert sorted(summaries[0].finished + summaries[1].finished) == [f"s{i}" for i in range(6)]   # each once
    assert summaries[0].finished and summaries[1].finished        # both did work: they shared the folder
    assert sorted(seen) == sorted([f"s{i}" for i in range(6)] * 3)   # no unit's frames were asked twice
    log = [json.loads(line) for line in (out / "responses.jsonl").read_text().splitlines()]
    assert sorted({e["sequence"] for e in log}) == [f"s{i}" for i in range(6)] and len(log) == 6 * 3


def test_temporary_names_differ_within_one_process(tmp_path, monkeypatch):
    """Containers on different nodes share pids: a temporary name must not rest on the pid alone."""
    from vptracker.infer import outputs

    seen = []
    real = os.replace
    monkeypatch.setattr(outputs.os, "replace", lambda src, dst: (seen.append(Path(src).name), real(src, dst)))
    outputs.atomic_write_text(tmp_path / "a.txt", "1")
    outputs.atomic_write_text(tmp_path / "a.txt", "2")
    assert seen[0] != seen[1] and all(str(os.getpid()) in name for name in seen)
