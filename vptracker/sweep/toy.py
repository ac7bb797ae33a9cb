"""An ablation table at toy scale on a CPU: the MOT demo's synthetic set, tiny models, real stages.

Everything but the grid is the MOT demo's (:mod:`vptracker.demo.mot`, ``configs/demo/mot_demo.yaml``,
``quick=true``: ``mot_quick.yaml``): the synthetic MOTChallenge set, a tiny model of each preset's
family, rows from the real builders for each (family, frames) pair, the real stage configs, the
multi-round MOT loop and TrackEval. Columns: the MOT ones (HOTA, DetA, AssA, MOTA, IDF1), and the
RMOT and caption columns of the table (:mod:`vptracker.sweep.toy_text`: the same videos with
templated referring expressions and captions, the real readers, builders, loops and scorers).

Prefix sharing is the demo's :func:`vptracker.demo.mot.train_rows` (its ``table6=true`` uses it too).
"""
from __future__ import annotations

import copy
import json
import math
from pathlib import Path

from vptracker.config import load_yaml
from vptracker.datasets import load
from vptracker.demo import mot
from vptracker.demo import pipeline as p
from vptracker.demo.mot import GRPO_STAGES, train_rows
from vptracker.models.families import get_family
from vptracker.sweep import toy_text
from vptracker.sweep.grid import SweepRow
from vptracker.sweep.results import seed_summary
from vptracker.train.stages import CONFIG_DIR


def preset_family(preset: str) -> str:
    return load_yaml(CONFIG_DIR / "models" / f"{preset}.yaml")["family"]


def group_config(cfg: dict, row: SweepRow, seed: int) -> dict:
    """The demo config for one row and seed: the preset's family, the row's frames, the seed."""
    out = copy.deepcopy(cfg)
    out["seed"] = int(cfg["seed"]) + seed
    out["model"]["family"] = preset_family(row.preset)
    if out["model"]["family"] != "qwen3_vl":   # the sine-cosine table is written into Qwen3-VL's pos_embed
        out["model"]["vision_pos"] = None

    if get_family(out["model"]["family"]).resize_factor is None:   # tiling families have no merge size to choose
        out["model"]["merge_size"] = 2
        # their tiles cost thousands of tokens per frame (LLaVA-NeXT: a 2-frame MOT row ~6,200)
        out["max_length"] = 8192
    elif row.frames > 8:
        # Table 7's 16- and 32-frame MOT rows (~1,100 and ~2,200 tokens at 64x64) pass the demo's 1,024,
        # and the stage refuses rows ms-swift would drop: they train whole
        out["max_length"] = 4096
    base = int((cfg["task_options"] or {}).get("frames") or 2)
    if row.frames > base:
        # a track answer grows with its frames (Table 7's 32-frame answers are 16 times the 2-frame ones):
        # the tracking budget and the GRPO completions grow with them, so no answer is cut at the demo's length
        grow = row.frames / base
        out["infer"]["max_tokens"] = math.ceil(int(cfg["infer"]["max_tokens"]) * grow)
        # a caption does not grow with the frames it describes: it keeps the demo's budget
        out["infer"]["caption_max_tokens"] = int(cfg["infer"]["max_tokens"])
        for stage in GRPO_STAGES:
            if stage in out and "max_completion_length" in out[stage]:
                out[stage]["max_completion_length"] = math.ceil(int(cfg[stage]["max_completion_length"]) * grow)
    if (cfg.get("sweep") or {}).get("equal_images") and row.frames != base:
        # the same images for every row (docs/sweeps.md): an N-frame row's SFT stages train base/N of the
        # base row's rows and steps, as the same videos cut into N-image samples for the same epochs would
        share = base / row.frames
        for stage in row.stages:
            if stage not in GRPO_STAGES:
                out[stage]["max_steps"] = max(1, round(int(cfg[stage]["max_steps"]) * share))
                out["prepare"]["samples"][stage] = max(int(cfg[stage]["batch_size"]),
                                                       round(int(cfg["prepare"]["samples"][stage]) * share))
    out["task_options"] = {**(cfg["task_options"] or {}), "frames": row.frames}
    out["stages"] = list(row.stages)
    out["model_preset"] = row.preset
    return out


def budget(cfg: dict) -> str:
    """The answer lengths a row runs with (grown with its frames by :func:`group_config`), said aloud."""
    grpo = [f"{s} {cfg[s]['max_completion_length']}" for s in GRPO_STAGES if s in cfg.get("stages", [])]
    i = cfg["infer"]
    captions = f", captions {i['caption_max_tokens']}" if "caption_max_tokens" in i else ""
    return f"answers up to {i['max_tokens']} tokens{captions}" + (f" (GRPO completions: {', '.join(grpo)})"
                                                                 if grpo else "")


def _once(marker: Path, make, *args):
    """Runs ``make`` unless an earlier run finished it (its marker holds the JSON result)."""
    if marker.is_file():
        return json.loads(marker.read_text())
    value = make(*args)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(value, default=str))
    return value


def run_rows(cfg: dict, rows: list[SweepRow], seeds: int, out: Path, echo, stream, pending,
             tasks: tuple[str, ...] = ("mot",)) -> None:
    """Trains, tracks and scores every (row, seed) that ``pending`` says is not finished, on ``tasks``
    (``mot`` and those of :mod:`vptracker.sweep.toy_text`)."""
    root = Path(_once(out / "data" / "done.json", lambda: str(mot.make_data(cfg, out))))
    text = len(tasks) > 1
    roots = _once(out / "data" / "text_done.json", toy_text.make_data, cfg, out, tasks) if text else {}
    test = load("synthetic_mot", root, "test")
    groups: dict[str, list[tuple[SweepRow, int]]] = {}
    for row in rows:
        for seed in range(seeds):
            if pending(row, seed):
                groups.setdefault(row.group(seed), []).append((row, seed))
    for key, members in groups.items():
        gcfg = group_config(cfg, members[0][0], members[0][1])
        family, seed = gcfg["model"]["family"], members[0][1]
        model_root = out / "models" / f"{family}-seed{seed}"
        model_dir = Path(_once(model_root / "done.json", lambda c, o: str(p.make_model(c, o)), gcfg, model_root))
        needed = [s for s in mot.SHORT if any(s in r.stages for r, _ in members)]
        data_key = f"{family}-f{gcfg['task_options']['frames']}-seed{seed}-{'-'.join(mot.SHORT[s] for s in needed)}"
        files = _once(out / "rows_data" / data_key / "done.json", mot.prepare_rows, gcfg, root,
                      out / "rows_data" / data_key, needed)
        if text:   # the RMOT and caption rows join the stages' MOT rows; SFT runs longer to see them once
            extra = _once(out / "rows_data" / data_key / "text_done.json", toy_text.prepare_rows, gcfg, roots,
                          out / "rows_data" / data_key / "text", needed, tasks)
            files = {stage: files[stage] + extra[stage] for stage in needed}
            gcfg = toy_text.with_text_steps(gcfg, tasks, needed)
        echo(f"[sweep] group {key}: rows {', '.join(r.key for r, _ in members)}; {budget(gcfg)}")
        done = train_rows(gcfg, model_dir, files, out / "groups" / key, echo, stream,
                          [(r.key, r.stages) for r, _ in members])
        for row, _ in members:
            summary = seed_summary(out, row.key, seed)
            seed_dir = summary.parent.parent
            if not summary.is_file():   # resumed: a scored task is not tracked again
                mot.track(gcfg, done[row.key][0], test, seed_dir / "results")
                write_summary(root, seed_dir / "results", summary, row.key)
            if text:
                toy_text.track_and_score(gcfg, done[row.key][0], roots, seed_dir, seed_dir / "results", tasks, row.key)


def write_summary(root: Path, results: Path, path: Path, name: str) -> dict:
    """What ``vptracker eval mot`` writes for ``results``, with the answers' parse rate."""
    summary = mot.score(root, results)
    summary.update(task="mot", benchmark=mot.BENCHMARK, name=name, parse_rate=round(mot.parse_rate(results), 2)
                   if (results / "responses.jsonl").is_file() else None)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=1))
    return summary


def baseline(cfg: dict, out: Path) -> dict | None:
    """The first frame's ground-truth boxes held still: the floor every row should clear."""
    marker = out / "data" / "done.json"
    if not marker.is_file():
        return None
    root = Path(json.loads(marker.read_text()))
    path = out / "baseline" / "mot_eval" / "summary.json"
    if path.is_file():
        return json.loads(path.read_text())
    results = mot.hold_first_frame(load("synthetic_mot", root, "test"), out / "baseline" / "results")
    return write_summary(root, results, path, "hold_first_frame")
