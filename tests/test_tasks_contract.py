"""The task contract: training rows read back by the inference side, and the contract's trip from
``prepare`` through a checkpoint to ``vptracker infer``.

The round trip renders rows with each trackable task's real builder on sequences read from the
official layouts (and OTB's real frames when ``../shared/data`` is there), then reads every answer
box with the code the tracking loops run (the SOT tracker's own answer rule; ``parse_trajectory`` /
``parse_trajectories`` + ``answer_box`` of the multi-object loops) and the coordinate map the
trackers build from ``TaskOptions`` filled by the contract. A contract that differs from the one
the rows were written under (another box scale, another pixel cap) must make it fail.
"""
from __future__ import annotations

import json
import os
import random
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from vptracker.boxes import (
    CoordMap,
    clip_xyxy,
    parse_trajectories,
    parse_trajectory,
    xywh_in_image,
    xywh_to_xyxy,
)
from vptracker.config import ConfigError
from vptracker.datasets import load
from vptracker.infer.common import TaskOptions, answer_box
from vptracker.models.families import FAMILIES, get_family
from vptracker.tasks import get_task, trackable_tasks
from vptracker.tasks.contract import CONTRACT_FILE, TaskContract, caption_frames

ROWS = 12


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    from omnipt_data import write_datasets

    return write_datasets(tmp_path_factory.mktemp("contract_data"))


def _sources(roots: dict) -> dict[str, list]:
    """The sequences each trackable task is trained on, read by the real readers."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # the layout fixtures hold boxes that reach past the border
        dance = load("dancetrack", roots["dancetrack"], split="train")
        return {"vptracker_sot": load("lasot", roots["lasot"], split="train"), "omnipt_sot": dance,
                "omnipt_mot": dance, "omnipt_rmot": load("refer_kitti_v2", roots["refer_kitti_v2"], split="train"),
                "omnipt_crmot": load("crtrack", roots["crtrack"], split="train"),
                "omnipt_caption": load("bensmot", roots["bensmot"], split="train")}


def _rows(task, sequences, n: int = ROWS) -> list[dict]:
    index = task.index(sequences)
    if task.name == "omnipt_caption":
        return list(task.enumerate(index))
    rng, rows = random.Random(7), []
    while len(rows) < n:
        row = task.sample(index, rng)
        if row is not None:
            rows += row if isinstance(row, list) else [row]
    return rows


def _frames_of(sequences) -> dict[str, tuple]:
    """Frame path -> (sequence, frame index)."""
    return {os.path.realpath(p): (s, t) for s in sequences for t, p in enumerate(s.frames)}


def _truth(seq, t: int) -> list[tuple]:
    """Every object's box on frame ``t`` as the builders write it: clipped to the image."""
    return [clip_xyxy(xywh_to_xyxy(tr.boxes[t].tolist()), seq.width, seq.height) for tr in seq.tracks
            if tr.visible[t] and xywh_in_image(tr.boxes[t], seq.width, seq.height)]


def _step(cmap: CoordMap) -> float:
    """One rounding step of the answer grid, in frame pixels (x,y,w,h grammars: x2 = x + w rounds twice)."""
    fx, fy = cmap.to_frame((1, 1, 1, 1))[:2]
    return 10 ** -cmap.decimals * max(fx, fy) * 1.001 + 1e-6


def _misses(boxes_per_image, images, where, options: TaskOptions) -> tuple[int, list[str]]:
    """Checks each answer box (image i -> model box or None) against the truth of image i."""
    checked, misses = 0, []
    for i, box in boxes_per_image:
        seq, t = where[os.path.realpath(images[i])]
        cmap = options.coord_map(seq.width, seq.height)   # what SequenceTracker.cmap is
        frame = answer_box(box, cmap)
        if frame is None:
            misses.append(f"{seq.name}:{t}: {box} is unusable under {cmap}")
            continue
        checked += 1
        if not any(np.allclose(frame, truth, atol=_step(cmap)) for truth in _truth(seq, t)):
            misses.append(f"{seq.name}:{t}: {box} -> {frame} matches none of {_truth(seq, t)}")
    return checked, misses


def _read_back(task_name: str, rows: list[dict], sequences, contract: TaskContract) -> tuple[int, list[str]]:
    """Reads every answer box of ``rows`` with the inference side under ``contract``."""
    options = TaskOptions.from_dict(contract.options())
    where = _frames_of(sequences)
    checked, misses = 0, []
    for row in rows:
        images = row["images"]
        answers = [m["content"] for m in row["messages"] if m["role"] == "assistant"]
        if task_name == "vptracker_sot":
            from vptracker.infer.sot import VPTrackerSOTTracker

            seq, t = where[os.path.realpath(images[1])]
            frame = VPTrackerSOTTracker(seq, options)._answer_box(answers[0])   # the tracker's own answer rule
            visible = bool(seq.target.visible[t]) and bool(_truth(seq, t))
            if frame is None:
                if visible and '"visible": "yes"' in answers[0]:
                    misses.append(f"{seq.name}:{t}: {answers[0]!r} refused by the tracker under {contract}")
                continue
            checked += 1
            cmap = options.coord_map(seq.width, seq.height)
            # the released sampler answers int()-cut ground truth: one pixel, plus one grid step
            if not np.allclose(frame, _truth(seq, t)[0], atol=1 + _step(cmap)):
                misses.append(f"{seq.name}:{t}: {answers[0]!r} -> {frame}, truth {_truth(seq, t)[0]}")
        elif task_name == "omnipt_caption":
            continue   # no answer boxes: the prompt box is checked by test_caption_prompts_match_training
        elif task_name == "omnipt_mot":   # first-frame boxes, then trajectories (tracked, added midway)
            c, m = _misses([(0, p.box) for p in parse_trajectory(answers[0]) if p.box is not None], images, where,
                           options)
            checked, misses = checked + c, misses + m
            for answer in answers[1:]:
                c, m = _misses([(i, p.box) for traj in parse_trajectories(answer) for i, p in enumerate(traj)
                                if p.box is not None], images, where, options)
                checked, misses = checked + c, misses + m
        elif task_name == "omnipt_sot":
            c, m = _misses([(i, p.box) for i, p in enumerate(parse_trajectory(answers[0])) if p.box is not None],
                           images, where, options)
            checked, misses = checked + c, misses + m
        else:   # rmot, crmot: one trajectory per object over every image (views one after another)
            c, m = _misses([(i, p.box) for traj in parse_trajectories(answers[0]) for i, p in enumerate(traj)
                            if p.box is not None], images, where, options)
            checked, misses = checked + c, misses + m
    return checked, misses


def _mismatched(contract: TaskContract) -> list[TaskContract]:
    """Contracts a checkpoint could wrongly be read under: another scale, another pixel cap."""
    other = {"abs": "norm1000", "norm1000": "norm1", "norm1": "norm1000", "resized": "abs"}[contract.box_scale]
    out = [replace(contract, box_scale=other)]
    if contract.box_scale == "resized":
        out.append(replace(contract, max_pixels=4 * 28 * 28))
    return out


BOX_TASKS = [t for t in ("vptracker_sot", "omnipt_sot", "omnipt_mot", "omnipt_rmot", "omnipt_crmot")]


def _options(task: str, family: str, scale: str) -> dict:
    if task == "vptracker_sot":
        return {"family": family, "scale": scale}
    return {"family": family, "scale": scale, "frames": 4}


def _cases():
    for task in BOX_TASKS:
        for family in sorted(FAMILIES):
            # the released VPTracker sampler writes abs / norm1000; OmniPT the family's own scale too
            scales = {"abs", "norm1000"} if task == "vptracker_sot" else {get_family(family).box_scale, "norm1000"}
            for scale in sorted(scales):
                yield task, family, scale


def test_every_trackable_task_is_covered():
    assert set(BOX_TASKS) | {"omnipt_caption"} == set(trackable_tasks())


@pytest.mark.parametrize("task_name, family, scale", list(_cases()))
def test_training_answers_read_back_by_the_inference_side(roots, task_name, family, scale):
    sequences = _sources(roots)[task_name]
    task = get_task(task_name, **_options(task_name, family, scale))
    contract = task.contract()
    assert contract.task == task_name and contract.family == family and contract.box_scale == scale
    rows = _rows(task, sequences)
    checked, misses = _read_back(task_name, rows, sequences, contract)
    assert not misses, misses[:3]
    assert checked >= 6, f"only {checked} answer boxes checked"
    for wrong in _mismatched(contract):
        _, misses = _read_back(task_name, rows, sequences, wrong)
        assert misses, f"reading with {wrong} instead of {contract} went unnoticed"


def test_real_otb_frames_round_trip(shared_data):
    """The same check on real OTB frames (320x240 and larger) with the Qwen2.5-VL resize."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sequences = load("otb", shared_data / "otb")
    for name, options in (("vptracker_sot", {"family": "qwen2_5_vl", "scale": "abs"}),
                          ("vptracker_sot", {"family": "qwen3_vl", "scale": "norm1000"}),
                          ("omnipt_sot", {"family": "qwen2_5_vl", "scale": "family", "frames": 8})):
        task = get_task(name, **options)
        rows = _rows(task, sequences, 20)
        checked, misses = _read_back(name, rows, sequences, task.contract())
        assert not misses and checked >= 15, (name, misses[:3])
        for wrong in _mismatched(task.contract()):
            assert _read_back(name, rows, sequences, wrong)[1], (name, wrong)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_caption_prompts_match_training(roots, family):
    """The caption tracker asks with the images and the prompt box the training rows used: one frame rule."""
    from vptracker.infer.caption import CaptionTracker

    sequences = _sources(roots)["omnipt_caption"]
    task = get_task("omnipt_caption", family=family, scale="family", frames=8)
    rows = _rows(task, sequences)
    assert len(rows) == 1 + len(sequences[0].tracks)   # one video caption and one per person
    tracker = CaptionTracker(sequences[0], TaskOptions.from_dict(task.contract().options()))
    requests = [request for _, _, request in tracker._queue]
    assert [r.messages[0]["content"] for r in requests] == [row["messages"][0]["content"] for row in rows]
    assert [[str(p) for p in r.images] for r in requests] == [row["images"] for row in rows]


def test_caption_frames_rule():
    assert caption_frames(0, 9, 32) == list(range(10))          # a short span: each frame once
    assert caption_frames(3, 3, 4) == [3]
    picked = caption_frames(5, 105, 8)
    assert len(picked) == len(set(picked)) == 8 and picked[0] == 5 and picked[-1] == 105
    assert caption_frames(4, 3, 8) == []


# --------------------------------------------------------------------------- prepare -> checkpoint -> infer


def _prepare(roots, out: Path, **options) -> dict:
    from vptracker.tasks.prepare import prepare

    config = {"seed": 0, "out": str(out), "workers": 1, "jobs": {
        "sot": {"task": "omnipt_sot", "options": {"frames": 4, **options},
                "sources": {"dance": {"dataset": "dancetrack", "root": str(roots["dancetrack"]), "split": "train"}},
                "samples": {"train": 4}},
        "sot_grpo": {"task": "omnipt_sot_grpo", "options": {"frames": 4, **options},
                     "sources": {"dance": {"dataset": "dancetrack", "root": str(roots["dancetrack"]),
                                           "split": "train"}}, "samples": {"train": 2}},
        "reid": {"task": "pretext_reid", "options": {"negatives": 1},
                 "sources": {"dance": {"dataset": "dancetrack", "root": str(roots["dancetrack"]), "split": "train"}},
                 "samples": {"train": 2}}}}
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return prepare(config, progress=False)


def _checkpoint(tmp_path: Path, data: Path) -> Path:
    """A swift-style run folder: the contract copied by the train runner's code, one checkpoint below."""
    from vptracker.tasks.contract import write_contract_file
    from vptracker.train.manifest import data_cards, stage_contracts

    contracts, sources = stage_contracts(data_cards(sorted(str(p) for p in data.glob("train-*.jsonl"))), "stage3_sft")
    run = tmp_path / "run" / "train"
    write_contract_file(run, contracts, sources)
    ckpt = run / "checkpoint-4"
    ckpt.mkdir(parents=True)
    (ckpt / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl"}))
    return ckpt


def test_contract_travels_from_prepare_through_the_checkpoint_to_infer(roots, tmp_path, caplog):
    from vptracker.commands.infer import describe_run

    card = _prepare(roots, tmp_path / "data", scale="family", max_pixels=200704)
    contract = card["contracts"]["omnipt_sot"]     # the GRPO job trains the same loop: one contract
    assert set(card["contracts"]) == {"omnipt_sot"}
    assert (contract["box_scale"], contract["max_pixels"], contract["frames_per_sample"]) == ("resized", 200704, [4])
    ckpt = _checkpoint(tmp_path, tmp_path / "data")
    assert not (ckpt / CONTRACT_FILE).exists() and (ckpt.parent / CONTRACT_FILE).is_file()

    run = describe_run({"model": str(ckpt), "task": "omnipt_sot", "options": {"max_pixels": None}})
    options = run["options"]
    assert (options["box_scale"], options["max_pixels"], options["frames_per_sample"], options["family"]) == \
        ("resized", 200704, 4, "qwen2_5_vl")
    # a value that agrees is fine; one that disagrees names the option, both values and the file
    describe_run({"model": str(ckpt), "task": "omnipt_sot", "options": {"frames_per_sample": 4}})
    with pytest.raises(ConfigError, match=r"max_pixels=506464 disagrees with 200704 in .*run/train/"
                                          + CONTRACT_FILE):
        describe_run({"model": str(ckpt), "task": "omnipt_sot", "options": {"max_pixels": 506464}})
    with pytest.raises(ConfigError, match="box_scale='norm1000' disagrees with 'resized'"):
        describe_run({"model": str(ckpt), "task": "omnipt_sot", "options": {"box_scale": "norm1000"}})

    # a model trained elsewhere keeps today's defaults, and says so once
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl"}))
    with caplog.at_level("WARNING"):
        options = describe_run({"model": str(base), "task": "omnipt_sot", "options": {}})["options"]
    assert (options["box_scale"], options["max_pixels"], options["frames_per_sample"]) == ("norm1000", 12845056, 8)
    assert sum(CONTRACT_FILE in r.getMessage() for r in caplog.records) == 1
    # the checkpoint was not trained on this task: defaults, with the reason
    caplog.clear()
    with caplog.at_level("WARNING"):
        describe_run({"model": str(ckpt), "task": "omnipt_mot", "options": {}})
    assert any("no contract for task omnipt_mot" in r.getMessage() for r in caplog.records)


def test_run_task_reads_the_contract_of_the_model_it_is_given(roots, tmp_path, caplog):
    """The Python API: ``run_task(..., model_dir=...)`` follows the checkpoint's contract too."""
    from vptracker.infer import CallableEngine, run_task

    _prepare(roots, tmp_path / "data")
    ckpt = _checkpoint(tmp_path, tmp_path / "data")
    sequences = _sources(roots)["omnipt_sot"][:1]
    seen = []
    engine = CallableEngine(lambda request: seen.append(len(request.images)) or "<None>")
    run_task("omnipt_sot", engine, sequences, tmp_path / "out", {}, model_dir=ckpt, progress=False)
    assert seen and max(seen) == 4     # the contract's frames_per_sample, not the default 8
    # frames per sample is the run's choice: another value runs, with one line naming the trained ones
    with caplog.at_level("WARNING"):
        run_task("omnipt_sot", engine, sequences, tmp_path / "out2", {"frames_per_sample": 3}, model_dir=ckpt,
                 progress=False)
    assert max(seen[-3:]) == 3
    assert sum("frames_per_sample=3: omnipt_sot was trained with frames_per_sample [4]" in r.getMessage()
               for r in caplog.records) == 1


def test_infer_cli_refuses_a_conflicting_option_with_exit_2(roots, tmp_path, capsys):
    from vptracker.cli import main

    _prepare(roots, tmp_path / "data")
    ckpt = _checkpoint(tmp_path, tmp_path / "data")
    rc = main(["infer", "--task", "omnipt_sot", "--model", str(ckpt), "--dataset", "dancetrack",
               "--root", str(roots["dancetrack"]), "--out", str(tmp_path / "out"), "options.max_pixels=200704"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "max_pixels=200704 disagrees with" in err and CONTRACT_FILE in err and len(err.splitlines()) == 1


def test_jobs_training_one_task_under_two_contracts_are_refused(roots, tmp_path):
    from vptracker.tasks.prepare import check_config

    source = {"dance": {"dataset": "dancetrack", "root": str(roots["dancetrack"]), "split": "train"}}
    config = {"out": str(tmp_path / "o"), "jobs": {
        "a": {"task": "omnipt_sot", "options": {"scale": "norm1000"}, "sources": source, "samples": {"train": 1}},
        "b": {"task": "omnipt_sot_grpo", "options": {"scale": "norm1"}, "sources": source, "samples": {"train": 1}}}}
    with pytest.raises(ConfigError, match=r"jobs.b: rows for task omnipt_sot .*'box_scale': \('norm1000', 'norm1'\)"):
        check_config(config)


class _Stage:
    """What the train runner's contract check reads of a stage config."""

    name = "stage_x"

    def __init__(self, swift: dict, start_model: str = "base-model-not-on-disk"):
        self.swift = swift
        self.start_model = start_model

    def get(self, key, default=None):
        return {"swift": self.swift}.get(key, default)


def _manifest(task, folder: Path) -> dict:
    card = {"contracts": {task.contract().task: task.contract().to_dict()}}
    return {"data": [{"path": str(folder / "train-x-00000.jsonl"), "card": card}]}


def test_the_stage_must_agree_with_the_contract_of_its_rows(tmp_path):
    from vptracker.config import load_config
    from vptracker.prompts.texts import VPTRACKER_SPECIAL_TOKENS
    from vptracker.train.runner import _contracts
    from vptracker.train.stages import StageConfigError

    vp = get_task("vptracker_sot")
    with pytest.raises(StageConfigError, match=r"special tokens .*swift.new_special_tokens lists \[\]: add"):
        _contracts(_Stage({}), _manifest(vp, tmp_path), print)
    # the released recipe as configs/stages/vptracker_sft.yaml states it agrees with the rows' contract
    recipe = load_config(Path(__file__).resolve().parents[1] / "configs" / "stages" / "vptracker_sft.yaml")
    assert recipe["swift"]["new_special_tokens"] == list(VPTRACKER_SPECIAL_TOKENS)
    notes: list[str] = []
    manifest = _manifest(vp, tmp_path)
    contracts, sources = _contracts(_Stage(recipe["swift"]), manifest, notes.append)
    assert set(contracts) == {"vptracker_sot"}
    assert not notes and sources == [str(tmp_path / "card.json")]
    assert manifest["contracts"]["vptracker_sot"]["train_max_pixels"] == 1024 * 32 ** 2
    # answers in resized pixels need the same resize at training; other scales only get a note
    with pytest.raises(StageConfigError, match="resizes images under 12544 pixels but the omnipt_sot rows were "
                                               "written for 506464"):
        _contracts(_Stage({"max_pixels": 12544}), _manifest(get_task("omnipt_sot", scale="family"), tmp_path), print)
    _contracts(_Stage({"max_pixels": 12544}), _manifest(get_task("omnipt_sot"), tmp_path), notes.append)
    assert len(notes) == 1 and "norm1000 boxes do not depend on it" in notes[0]


# --------------------------------------------------------------------------- one registry


def test_duplicate_task_names_are_refused():
    from vptracker.tasks import Task, register_task

    with pytest.raises(ValueError, match="task 'omnipt_sot' is already registered"):
        @register_task("omnipt_sot")
        class Another(Task):
            pass
    assert type(get_task("omnipt_sot")).__name__ == "OmniPTSOT"   # the original stays


def test_training_only_tasks_refuse_to_track(tmp_path):
    from vptracker.infer import CallableEngine, run_task

    for name in ("pretext_reid", "pretext_location", "omnipt_sot_grpo", "omnipt_grounding", "omnipt_video_caption"):
        with pytest.raises(ValueError, match=f"task {name} is training-only: it has no tracking side; tasks that "
                                             "track: omnipt_caption, omnipt_crmot"):
            run_task(name, CallableEngine(lambda r: ""), [], tmp_path / name, progress=False)
    assert get_task("omnipt_sot_grpo").contract() == get_task("omnipt_sot").contract()
    assert get_task("pretext_location").contract() is None and get_task("pretext_reid").contract() is None


def test_infer_has_no_registry_of_its_own():
    from vptracker import infer
    from vptracker.infer import runner

    from vptracker.tasks import base

    # infer may use the task registry's names, but none of its own: each is the tasks package's object.
    for module in (infer, runner):
        for name in {"TASKS", "get_task", "register_task", "Task"} & set(vars(module)):
            assert getattr(module, name) is getattr(base, name), (module.__name__, name)


# --------------------------------------------------------------------------- binding and chosen fields


def test_one_task_gathers_every_trained_frame_count_but_one_binding_value(tmp_path):
    from vptracker.tasks.contract import merge_contracts

    contracts: dict = {}
    merge_contracts(contracts, {"omnipt_mot": get_task("omnipt_mot", frames=16).contract()}, "jobs.mot")
    merge_contracts(contracts, {"omnipt_mot": get_task("omnipt_mot_grpo", frames=8).contract()}, "jobs.smot")
    assert contracts["omnipt_mot"].frames_per_sample == (8, 16)
    assert contracts["omnipt_mot"].options()["frames_per_sample"] == 16   # unset at inference: the largest
    with pytest.raises(ConfigError, match=r"jobs.x: rows for task omnipt_mot .*'box_scale': \('norm1000', 'norm1'\)"):
        merge_contracts(contracts, {"omnipt_mot": get_task("omnipt_mot", scale="norm1").contract()}, "jobs.x")
    # a file written by an earlier version (one number) still reads
    old = TaskContract.from_dict({**get_task("omnipt_sot").contract().to_dict(), "frames_per_sample": 16})
    assert old.frames_per_sample == (16,)


def test_a_chain_stage_carries_the_contracts_of_the_weights_it_starts_from(tmp_path):
    """Stage 4 trains the tracking tasks only; its weights still know the caption task of stage 3,
    and every frame count either stage trained."""
    from vptracker.tasks.contract import read_all_contracts, write_contract_file
    from vptracker.train.runner import _contracts

    stage3 = tmp_path / "stage3_sft" / "merged"
    write_contract_file(stage3, {"omnipt_mot": get_task("omnipt_mot", frames=16).contract(),
                                 "omnipt_caption": get_task("omnipt_video_caption").contract()}, ["s3/card.json"])
    notes: list[str] = []
    contracts, sources = _contracts(_Stage({}, str(stage3)), _manifest(get_task("omnipt_mot", frames=8), tmp_path),
                                    notes.append)
    assert set(contracts) == {"omnipt_mot", "omnipt_caption"}
    assert contracts["omnipt_mot"].frames_per_sample == (8, 16)
    assert sources == ["s3/card.json", str(tmp_path / "card.json")]
    assert any("carries the task contracts of" in n for n in notes)
    out = write_contract_file(tmp_path / "stage4", contracts, sources)
    assert read_all_contracts(out) == contracts
    with pytest.raises(ConfigError, match="rows for task omnipt_mot were prepared under two different contracts"):
        _contracts(_Stage({}, str(stage3)), _manifest(get_task("omnipt_mot", scale="norm1"), tmp_path), print)
