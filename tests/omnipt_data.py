"""Small datasets in every official layout the OmniPT data configs read, and the helpers that run
``vptracker prepare`` on the real configs over them (used by the Table 7 test and the chained
training test).

Every sequence is 34 frames long, so that 32-frame samples (the semantic tasks, Table 7's largest
setting) fit, with people who enter and leave, so that MOT's "added midway" query and location
prediction's disappearing objects have rows to write.
"""
from __future__ import annotations

from pathlib import Path

import layouts as fx

from vptracker.config import load_config

N_FRAMES = 34
SIZE = (96, 64)
REPO_ROOT = Path(__file__).resolve().parents[1]
STAGE_CONFIGS = {name: REPO_ROOT / f"configs/data/omnipt_{name}.yaml"
                 for name in ("stage1_grpo_format", "stage1_grpo_format_mixture", "stage2_midtrain", "stage3_sft",
                              "stage4_grpo_iou")}


def _people(n: int = 3) -> dict[int, dict[int, tuple]]:
    """``n`` walkers over the whole video, one who leaves at frame 12, one who enters at frame 9."""
    walk = {tid: {f: (4 + 20 * (tid - 1) + f % 7, 6 + 4 * tid, 12, 22) for f in range(1, N_FRAMES + 1)}
            for tid in range(1, n + 1)}
    walk[n + 1] = {f: (70, 30, 10, 20) for f in range(1, 13)}
    walk[n + 2] = {f: (40 + f, 36, 10, 20) for f in range(9, N_FRAMES + 1)}
    return walk


def write_datasets(root: Path) -> dict[str, Path]:
    """Writes DanceTrack, MOT17, Refer-KITTI-V2, CRTrack, BenSMOT, SYNTH-PEDES and LaSOT under
    ``root``; returns the ``roots`` mapping the data configs read."""
    roots = {name: root / name for name in ("dancetrack", "mot17", "refer_kitti_v2", "crtrack", "bensmot",
                                            "synth_pedes", "lasot")}
    fx.write_mot(roots["dancetrack"], "train", "dancetrack0001", N_FRAMES, fx.mot_rows(_people()), size=SIZE, pad=8)
    fx.write_mot(roots["mot17"], "train", "MOT17-02-FRCNN", N_FRAMES, fx.mot_rows(_people(2)), size=SIZE)
    cars = {f: {1: (5 + f, 10, 20, 10), 2: (60, 30, 24, 12)} for f in range(N_FRAMES)}
    fx.write_refer_kitti(roots["refer_kitti_v2"], "0001", N_FRAMES, cars,
                         {"moving-cars": {f: [1, 2] for f in range(N_FRAMES)},
                          "left-car": {f: [1] for f in range(N_FRAMES // 2)}}, size=SIZE)
    views = {f"View{k}": fx.mot_rows({tid: {f: (x + k, y, w, h) for f, (x, y, w, h) in per.items()}
                                      for tid, per in _people(2).items()}) for k in (1, 2, 3)}
    fx.write_crtrack(roots["crtrack"], "train", "Gate2", views, N_FRAMES, {"people walking": [1, 2, 4]}, size=SIZE)
    roots["crtrack"] = roots["crtrack"] / "CRTrack_In-domain"
    people = _people(2)
    fx.write_bensmot(roots["bensmot"], "train", "dance", "v1", N_FRAMES, fx.mot_rows(people), "People walk by.",
                     [(f"person{i}", f"A person in coat number {i}.") for i in range(len(people))], size=SIZE)
    fx.write_synth_pedes(roots["synth_pedes"], [(i % 3, f"a pedestrian wearing colour {i}") for i in range(6)])
    track = [(10 + i, 12, 16, 20) for i in range(N_FRAMES)]
    fx.write_lasot(roots["lasot"], "person", 1, track, [0] * N_FRAMES, [0] * N_FRAMES, "a person walking", size=SIZE)
    (roots["lasot"] / "training_set.txt").write_text("person-1\n")
    return roots


def stage_config(stage: str, roots: dict[str, Path], out: Path, samples: int = 2, overrides: tuple = ()) -> dict:
    """A stage's real data config with its roots and output folder set and every job's sample
    counts cut to ``samples`` (``all`` stays ``all``), in every split it writes."""
    cfg = load_config(STAGE_CONFIGS[stage],
                      [f"out={out}", "workers=1", *(f"roots.{k}={v}" for k, v in roots.items()), *overrides])
    for job in cfg["jobs"].values():
        job["samples"] = {split: n if n == "all" else samples for split, n in job["samples"].items()}
    return cfg


# The data folder of each stage, as configs/stages/*.yaml find it under data_root; the stage-1
# mixture goes beside it so a chain can train stage 1 on both.
STAGE_DIRS = {"stage1_grpo_format": "stage1_grpo_format", "stage1_grpo_format_mixture": "stage1_grpo_format_mixture",
              "stage2_midtrain": "stage2_midtrain", "stage3_sft": "stage3_sft", "stage4_grpo_iou": "stage4_grpo_iou"}


def prepare_stages(roots: dict[str, Path], data_root: Path, frames: int = 4, samples: int = 2) -> dict[str, dict]:
    """Runs ``prepare`` on every OmniPT stage data config into ``data_root``; returns the cards."""
    from vptracker.tasks.prepare import prepare

    return {stage: prepare(stage_config(stage, roots, data_root / folder, samples,
                                        (f"task_options.frames={frames}",)), progress=False)
            for stage, folder in STAGE_DIRS.items()}


def chain_overrides(model: Path, data_root: Path, run_dir: Path) -> list[str]:
    """``vptracker train`` overrides: the tiny profile and model, the prepared data, stage 1 on
    the paper's grounding rows and the mixture (whose MOT rows give both GRPO stages MOT queries)."""
    stage1 = [f"{data_root}/{STAGE_DIRS[s]}/train-*.jsonl" for s in ("stage1_grpo_format", "stage1_grpo_format_mixture")]
    return ["profile=tiny", f"model={model}", f"run_dir={run_dir}", f"data_root={data_root}",
            f"stage1_format_grpo.dataset=[{','.join(stage1)}]", "stage3_sft.val_dataset=[]"]
