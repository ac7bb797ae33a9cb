"""The RMOT and caption columns of a toy sweep: the synthetic videos with language, end to end.

:mod:`vptracker.datasets.synthetic_text` writes the MOT demo's videos again in the Refer-KITTI
layout (templated referring expressions) and the BenSMOT layout (templated captions); the real
readers (``refer_kitti``, ``bensmot``) read them and the real builders make the rows: ``omnipt_rmot``
(its ``_grpo`` variant in the GRPO stages) and ``omnipt_caption`` (video and instance captions, SFT
only: the GRPO rewards are IoU rewards). A table trains and scores the tasks its columns need
(:data:`TOY_TASKS`): Tables 5 and 6 RMOT and captions, Table 7 captions. The config's ``sweep:``
block (``configs/demo/mot_demo.yaml``) says how many videos, expressions and rows; the SFT stage
runs ``rows / batch`` more steps, so every row is still seen once.

Per row and seed, beside the MOT results:

* RMOT: the real referring loop (``omnipt_rmot``) on the test videos (Refer-KITTI's test names
  0005, 0011, 0013, 0019; at most four), scored by :func:`vptracker.eval.rmot.evaluate_rmot` into
  ``rmot_eval/summary.json`` (what ``vptracker eval rmot`` writes).
* SMOT: the BenSMOT test videos are the MOT test videos (same frames, same names), so the MOT loop's
  result files are the SMOT tracks; the caption loop (``omnipt_caption`` with ``tracks_from``)
  captions each predicted track and the video, and :func:`vptracker.eval.smot.evaluate_smot` scores
  tracking and captions into ``smot_eval/summary.json`` (what ``vptracker eval smot`` writes).
"""
from __future__ import annotations

import copy
import json
import math
import shutil
from pathlib import Path

from vptracker.config import ConfigError
from vptracker.datasets import load
from vptracker.datasets.synthetic_text import refer_kitti_video, write_bensmot, write_refer_kitti
from vptracker.demo import pipeline as p
from vptracker.demo.mot import GRPO_STAGES
from vptracker.eval.rmot import evaluate_rmot
from vptracker.infer.engine import make_engine
from vptracker.infer.runner import run_task
from vptracker.tasks.base import accepted_options
from vptracker.tasks.prepare import prepare

# the tasks a toy sweep of each table trains and scores, by the columns the table has
TOY_TASKS = {"table5": ("mot", "rmot", "smot"), "table6": ("mot", "rmot", "smot"), "table7": ("mot", "smot")}
RMOT_BENCHMARK = "Refer-KITTI (synthetic)"


def toy_tasks(name: str, chosen=None) -> tuple[str, ...]:
    """The table's tasks, or ``chosen`` (the sweep key ``tasks=[...]``, MOT always first)."""
    if not chosen:
        return TOY_TASKS[name]
    unknown = [t for t in chosen if t not in TOY_TASKS[name]]
    if unknown or "mot" not in chosen:
        raise ConfigError(f"sweep {name}: tasks={list(chosen)}; expected mot and any of "
                          f"{', '.join(TOY_TASKS[name][1:])} (the tasks of its columns at toy scale)")
    return tuple(t for t in TOY_TASKS[name] if t in chosen)


def make_data(cfg: dict, out: Path, tasks: tuple[str, ...]) -> dict[str, str]:
    """Writes the Refer-KITTI (``rmot``) and BenSMOT (``smot``) layouts; returns their roots."""
    d, s = cfg["data"], cfg["sweep"]
    common = {"seed": int(cfg["seed"]), "cfg": p.synthetic_config(cfg), "people": int(d["people"])}
    roots = {}
    if "rmot" in tasks:
        splits = {"train": int(s["rmot"]["train_sequences"]), "test": min(4, int(d["test_sequences"]))}
        roots["rmot"] = str(write_refer_kitti(out / "data" / "refer_kitti", splits,
                                              expressions=int(s["rmot"]["expressions"]), **common))
    if "smot" in tasks:
        splits = {"train": int(s["caption"]["train_sequences"]), "test": int(d["test_sequences"])}
        roots["smot"] = str(write_bensmot(out / "data" / "bensmot", splits, **common))
    return roots


def _jobs(cfg: dict, tasks: tuple[str, ...], stages: list[str]) -> dict[str, tuple[str, str, int]]:
    """``{job: (task, dataset kind, samples)}`` for the stages that train on language rows."""
    s = cfg["sweep"]
    jobs = {}
    for stage in stages:
        grpo = stage in GRPO_STAGES
        if "rmot" in tasks and int(s["rmot"]["samples"].get(stage) or 0):
            task = "omnipt_rmot_grpo" if grpo else "omnipt_rmot"
            jobs[f"{stage}-{task}"] = (task, "rmot", int(s["rmot"]["samples"][stage]))
        if "smot" in tasks and not grpo and int(s["caption"]["samples"].get(stage) or 0):
            jobs[f"{stage}-omnipt_caption"] = ("omnipt_caption", "smot", int(s["caption"]["samples"][stage]))
    return jobs


def prepare_rows(cfg: dict, roots: dict[str, str], out: Path, stages: list[str],
                 tasks: tuple[str, ...]) -> dict[str, list[str]]:
    """The RMOT and caption rows of each stage, from the real builders (``vptracker prepare``)."""
    jobs = _jobs(cfg, tasks, stages)
    files: dict[str, list[str]] = {stage: [] for stage in stages}
    if not jobs:
        return files
    options = {"scale": cfg["prepare"]["scale"], "family": cfg["model"]["family"], **(cfg["task_options"] or {})}
    dataset = {"rmot": "refer_kitti", "smot": "bensmot"}
    config = {"seed": int(cfg["seed"]), "out": str(out / "prepared"), "workers": 1, "jobs": {
        name: {"task": task, "options": {k: v for k, v in options.items() if k in accepted_options(task)},
               "sources": {"synthetic": {"dataset": dataset[kind], "root": roots[kind], "split": "train"}},
               "samples": {"train": samples}}
        for name, (task, kind, samples) in jobs.items()}}
    card = prepare(config, progress=False)
    for job in jobs:
        files[job.split("-", 1)[0]] += [str(Path(config["out"]) / f) for f in card["outputs"]["train"][job]["files"]]
    return files


def with_text_steps(cfg: dict, tasks: tuple[str, ...], stages: list[str]) -> dict:
    """``cfg`` with each SFT stage of ``stages`` ``rows / batch`` steps longer for its RMOT and caption rows."""
    out = copy.deepcopy(cfg)
    for stage in stages:
        extra = sum(samples for _, _, samples in _jobs(cfg, tasks, [stage]).values())
        if stage not in GRPO_STAGES and extra:
            out[stage]["max_steps"] = int(cfg[stage]["max_steps"]) + math.ceil(extra / int(cfg[stage]["batch_size"]))
    return out


def track_and_score(cfg: dict, weights: Path, roots: dict[str, str], seed_dir: Path, mot_results: Path,
                    tasks: tuple[str, ...], name: str) -> None:
    """Tracks and scores the row's RMOT and caption tasks into ``<seed_dir>/{rmot,smot}_eval``."""
    from vptracker.eval.smot import evaluate_smot, smot_table_row  # scipy: kept out of the CLI's start

    frames = int(cfg["task_options"]["frames"])
    if "rmot" in tasks and not (seed_dir / "rmot_eval" / "summary.json").is_file():
        results = seed_dir / "results_rmot"
        _run(cfg, weights, "omnipt_rmot", load("refer_kitti", Path(roots["rmot"]), "test"), results,
             {"frames_per_sample": frames})
        videos = tuple(refer_kitti_video("test", i) for i in range(min(4, int(cfg["data"]["test_sequences"]))))
        summary = evaluate_rmot(roots["rmot"], results, videos)
        summary.update(task="rmot", benchmark=RMOT_BENCHMARK, name=name)
        _write(seed_dir / "rmot_eval" / "summary.json", summary)
    if "smot" in tasks and not (seed_dir / "smot_eval" / "summary.json").is_file():
        results = seed_dir / "results_smot"
        results.mkdir(parents=True, exist_ok=True)
        test = load("bensmot", Path(roots["smot"]), "test")
        for seq in test:   # the same videos as the MOT test set: its tracks are the SMOT tracks
            shutil.copyfile(mot_results / f"{seq.name}.txt", results / f"{seq.name}.txt")
        _run(cfg, weights, "omnipt_caption", test, results, {"caption_frames": frames, "tracks_from": str(results)})
        protocol = cfg["sweep"]["caption"]["protocol"]
        summary = evaluate_smot(Path(roots["smot"]) / "test", results, protocol)
        summary.update(task="smot", benchmark="BenSMOT (synthetic)", name=name, protocol=protocol)
        summary["table_row"] = smot_table_row(summary)
        _write(seed_dir / "smot_eval" / "summary.json", summary)


def _run(cfg: dict, weights: Path, task: str, sequences, results: Path, extra: dict) -> None:
    i = cfg["infer"]
    budget = i.get("caption_max_tokens", i["max_tokens"]) if task == "omnipt_caption" else i["max_tokens"]
    engine = make_engine(weights, cfg["model"]["family"], max_batch_size=int(i["batch_size"]),
                         max_tokens=int(budget), torch_dtype="float32", **p.contract_pixels(task, weights))
    options = {"family": cfg["model"]["family"], "box_scale": cfg["prepare"]["scale"], **extra}
    run_task(task, engine, sequences, results, options, concurrency=int(i["batch_size"]), progress=True,
             model_dir=weights)


def _write(path: Path, summary: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=1))
