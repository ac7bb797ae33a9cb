"""`vptracker demo`: the whole pipeline on a CPU, showing that training works.

:func:`run_demo` runs the steps of :mod:`vptracker.demo.pipeline` in order and writes
``<out>/summary.json`` and ``<out>/report.md`` (:mod:`vptracker.demo.report`). The recipe lives in
``configs/demo/demo.yaml`` (full run, ~15 minutes on 2 cores) and ``configs/demo/quick.yaml``
(smoke run, under 2 minutes, which proves the plumbing, not the learning).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from vptracker.config import ConfigError, apply_overrides, load_config, nearest, parse_override
from vptracker.datasets import load
from vptracker.demo import pipeline as p
from vptracker.demo.logs import DemoLog, make_deterministic
from vptracker.demo.mot import run_steps
from vptracker.demo.pipeline import PROTOCOL
from vptracker.demo.report import LOG, summary_json, write_report
from vptracker.eval.sot_eval import evaluate_sot
from vptracker.infer.threads import check_threads
from vptracker.infer.visualize import render_sequence
from vptracker.tasks.base import accepted_options, tasks
from vptracker.train.stages import REPO_ROOT

CONFIG_DIR = REPO_ROOT / "configs" / "demo"
MARKER = ".vptracker_demo"


# keys the demo reads when present, though its YAML files leave them out
OPTIONAL_KEYS = {("model", "embed_std"), ("model", "vision_pos")}


def demo_config(quick: bool = False, overrides: list[str] | tuple[str, ...] = ()) -> dict:
    """The SOT demo's config, or the MOT demo's (``configs/demo/mot*.yaml``) for ``task=omnipt_mot``.

    An override must name a key of that config (or a task option under ``task_options``): a
    misspelled one is refused with the nearest known key instead of running on the defaults."""
    mot = any(o.replace(" ", "") == "task=omnipt_mot" for o in overrides)
    name = ("mot_" if mot else "") + ("quick.yaml" if quick else "demo.yaml")
    base = load_config(CONFIG_DIR / name)
    parsed = [parse_override(o) for o in overrides]
    problems = [p for p in (_unknown(base, parts, CONFIG_DIR / name) for parts, _ in parsed) if p]
    if problems:
        raise ConfigError("\n".join(problems))
    cfg = apply_overrides(base, parsed)

    try:
        cfg["threads"] = check_threads(cfg["threads"])
    except ValueError as err:
        raise ConfigError(f"{CONFIG_DIR / name}: {err}") from None
    return cfg


def _unknown(base: dict, parts: list[str], path: Path) -> str | None:
    """What is wrong with an override key, or None."""
    if parts[0] == "task_options" and len(parts) == 2:
        # task_options reach every task of the demo that takes them (the rows of each stage)
        known = sorted({k for task in tasks() for k in accepted_options(task)})
        if parts[1] in known:
            return None
        return f"command line: task_options.{parts[1]}: no task takes this option" \
               f"{nearest(parts[1], known)}; known: {', '.join(known)}"
    if tuple(parts) in OPTIONAL_KEYS:
        return None
    node = base
    for depth, part in enumerate(parts):
        if not isinstance(node, dict) or part not in node:
            where = ".".join(parts[:depth]) or "the top level"
            known = list(node) if isinstance(node, dict) else []
            return f"command line: unknown key {'.'.join(parts)!r}{nearest(part, known)}: not in {path} " \
                   f"({where} holds {', '.join(map(str, known)) or 'no keys'})"
        node = node[part]
    return None


def run_demo(out: str | Path, quick: bool = False, overrides: list[str] | tuple[str, ...] = (),
             verbose: bool = False) -> dict:
    """Runs every step into ``out`` (emptied first) and returns the summary dict.

    The terminal shows the steps and progress bars; library and training output goes to
    ``<out>/demo.log`` (``verbose``: to the terminal too)."""
    cfg = demo_config(quick, overrides)
    out = Path(out).resolve()
    if out.exists() and any(out.iterdir()):
        # Stale checkpoints or results would be resumed or skipped by the runners, so a previous
        # demo's folder is emptied; any other non-empty folder is left alone.
        if not (out / MARKER).is_file():
            raise FileExistsError(f"{out} is not empty and holds no {MARKER} of an earlier demo; choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("written by `vptracker demo`; the next run into this folder empties it\n")
    (out / "config.json").write_text(json.dumps(cfg, indent=1))
    make_deterministic(int(cfg["seed"]), cfg["threads"])
    demo_log = DemoLog(out / LOG, verbose)
    try:
        with demo_log.libraries_to_file():
            if cfg["task"] == "omnipt_mot":
                return run_steps(cfg, out, quick, demo_log)
            return _run_steps(cfg, out, quick, demo_log)
    finally:
        demo_log.close()


def _run_steps(cfg: dict, out: Path, quick: bool, demo_log) -> dict:
    echo, stage_output = demo_log.echo, demo_log.stage_output
    log = p.StepLog(echo, cfg["threads"])
    roots = log.step("synthetic data", p.make_data, cfg, out)
    test = load("synthetic_sot", roots["sot"], "test")
    model_dir = log.step("tiny model", p.make_model, cfg, out)
    files = log.step("prepare rows", p.prepare_rows, cfg, roots["sot"], out)

    results = out / "results"
    scores, parse_rates = {}, {}
    p.hold_first_box(test, results / "hold_first_box")
    scores["hold_first_box"] = p.score(test, results / "hold_first_box")
    log.step("track (untrained)", p.track, cfg, model_dir, test, results / "untrained")
    sft = log.step("SFT stage", p.train_sft, cfg, model_dir, files["sft"], out, echo, stage_output)
    final = sft
    if cfg.get("eval_after_sft", True):
        log.step("track (after SFT)", p.track, cfg, sft, test, results / "after_sft")
    if int(cfg["grpo"]["max_steps"]) > 0:
        final = log.step("GRPO stage", p.train_grpo, cfg, model_dir, sft, files["grpo"], out, echo,
                         stage_output)
    log.step("track (trained)", p.track, cfg, final, test, results / "trained")

    for name in ("untrained", "after_sft", "trained"):
        if (results / name / "responses.jsonl").is_file():
            scores[name] = p.score(test, results / name)
            parse_rates[name] = p.parse_rate(results / name, cfg["task"])
    gif = log.step("tracking GIF", _gif, cfg, test, results / "trained", out)
    extra = {"quick": quick, "task": cfg["task"], "threads": log.used, "final_weights": str(final), "recipe": {k: cfg[k] for k in ("model", "sft", "grpo")}}
    summary = summary_json(scores, parse_rates, log.times, log.total, extra)
    stage_dirs = {"sft": sft.parent, "grpo": final.parent} if final != sft else {"sft": sft.parent}
    write_report(out, summary, scores, cfg, gif, stage_dirs, quick)
    summary["total_seconds"] = log.total
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    echo(f"[demo] AUC trained {summary['auc_trained']:.2f} | untrained {summary['auc_untrained']:.2f} | "
         f"hold first box {summary['auc_hold_first_box']:.2f} | parse rate {summary['parse_rate_before']:.0f}% -> "
         f"{summary['parse_rate_after']:.0f}% | {summary['total_seconds']:.0f}s")
    echo(f"[demo] report: {out / 'report.md'}")
    return summary


def _gif(cfg: dict, test, results: Path, out: Path) -> Path | None:
    """The held-out sequence where the trained tracker gains most over holding the first box."""
    trained = evaluate_sot(test, results, protocol=PROTOCOL)["per_sequence"]
    baseline = evaluate_sot(test, results.parent / "hold_first_box", protocol=PROTOCOL)["per_sequence"]
    seq = max(test, key=lambda s: trained[s.name]["auc"] - baseline[s.name]["auc"])
    paths = render_sequence(seq, results / f"{seq.name}.txt", out / "gif", fmt="gif",
                            max_frames=int(cfg["infer"]["gif_frames"]), max_width=256)
    return paths["animation"]
