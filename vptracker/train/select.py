"""Per-stage evaluation and checkpoint choice: a stage's ``select:`` block.

A stage config may name a validation split and a metric::

    select:
      checkpoint: best          # last (the paper's choice, the default) or best
      metric: HOTA              # HOTA (eval mot), AUC (eval sot), CIDEr (eval smot) or any report column
      task: omnipt_mot          # the inference task that tracks the split
      dataset: dancetrack       # a vptracker.datasets reader, its root and split
      root: /data/DanceTrack
      split: val

When a metric is set, the stage gets one more command after training (role ``select``):
``python -m vptracker.train.select --config <stage>/select/select_config.json``. It tracks the
split with every saved ``checkpoint-N`` (``vptracker infer``, a LoRA checkpoint as an adapter on
the stage's starting weights), scores it (``vptracker eval``), writes ``<stage>/select/scores.json``
(every score, the best, the chosen) and, with ``checkpoint: best``, the link
``<train>/best-checkpoint`` that the merge (or, without one, the next stage) reads instead of
``last-checkpoint``. The runner copies ``scores.json`` into the stage manifest (``select``).
Only checkpoints still on disk are scored: ``swift.save_total_limit`` bounds how many there are.
A checkpoint scored earlier (``select/checkpoint-N/summary.json``) is not tracked again.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from vptracker.eval.report import summary_row
from vptracker.train.stages import CONFIG_DIR, StageConfig, resolve_path

RULES = ("last", "best")
KEYS = {"checkpoint", "metric", "task", "dataset", "root", "split", "gt_root", "infer_config", "infer_overrides",
        "eval", "eval_args", "lower_is_better"}
# metric -> the `vptracker eval` subcommand that gives it by default
EVAL_OF = {"HOTA": "mot", "AUC": "sot", "CIDEr": "smot"}
EVALS = ("mot", "sot", "smot", "rmot")
BEST_LINK = "best-checkpoint"
SCORES = "scores.json"


def settings(cfg: StageConfig) -> dict | None:
    """The stage's checked ``select`` block with defaults filled, or None when nothing is scored;
    raises the stage's error naming the key."""
    block = cfg.get("select") or {}
    if not isinstance(block, dict):
        raise cfg.error("select", f"expected a mapping, got {block!r}")
    for key in block:
        if key not in KEYS:
            raise cfg.error(f"select.{key}", f"unknown key; expected one of {sorted(KEYS)}")
    rule = block.get("checkpoint") or "last"
    if rule not in RULES:
        raise cfg.error("select.checkpoint", f"expected one of {RULES}, got {rule!r}")
    if not block.get("metric"):
        if rule == "best":
            raise cfg.error("select.metric", "checkpoint: best needs a metric and a validation split to score "
                                             "(select.metric, select.task, select.dataset, select.root)")
        return None
    for key in ("task", "dataset", "root"):
        if not block.get(key):
            raise cfg.error(f"select.{key}", f"missing: scoring {block['metric']} tracks a validation split "
                                             "(select.task, select.dataset, select.root, select.split)")
    eval_kind = block.get("eval") or EVAL_OF.get(str(block["metric"]))
    if eval_kind not in EVALS:
        raise cfg.error("select.eval", f"metric {block['metric']!r}: name the `vptracker eval` subcommand that "
                                       f"gives it, one of {EVALS}")
    return {"rule": rule, "metric": str(block["metric"]), "task": block["task"], "dataset": block["dataset"],
            "root": str(resolve_path(block["root"])), "split": block.get("split"),
            "gt_root": str(resolve_path(block["gt_root"])) if block.get("gt_root") else None,
            "infer_config": _infer_config(block), "infer_overrides": list(block.get("infer_overrides") or []),
            "eval": eval_kind, "eval_args": [str(a) for a in block.get("eval_args") or []],
            "lower_is_better": bool(block.get("lower_is_better", False))}


def _infer_config(block: dict) -> str:
    if block.get("infer_config"):
        return str(resolve_path(block["infer_config"]))
    own = CONFIG_DIR / "infer" / f"{block['task']}.yaml"
    return str(own if own.is_file() else CONFIG_DIR / "infer" / "base.yaml")


def rule(cfg: StageConfig) -> str:
    """``best`` or ``last``: which checkpoint the stage's final weights come from."""
    found = settings(cfg)
    return found["rule"] if found else "last"


def chosen_checkpoint(cfg: StageConfig, train_dir: Path) -> Path:
    """The checkpoint the merge (or the next stage) reads: swift's ``last-checkpoint`` link, or ours."""
    return train_dir / (BEST_LINK if rule(cfg) == "best" else "last-checkpoint")


def choose(scores: dict[str, float | None], lower_is_better: bool = False) -> str | None:
    """The best checkpoint's name; a tie keeps the earlier one (as the Trainer's best-model rule:
    only a strict improvement replaces it). Unscored checkpoints (None) are never chosen."""
    best, best_value = None, None
    for name in sorted(scores, key=_step):
        value = scores[name]
        if value is None:
            continue
        better = best_value is None or (value < best_value if lower_is_better else value > best_value)
        if better:
            best, best_value = name, value
    return best


def _step(name: str) -> int:
    suffix = name.rsplit("-", 1)[-1]
    return int(suffix) if suffix.isdigit() else -1


def payload(cfg: StageConfig, model: str, train_dir: Path) -> dict | None:
    """What the select command reads (None: the stage scores nothing)."""
    found = settings(cfg)
    if found is None:
        return None
    lora = (cfg.get("swift") or {}).get("tuner_type", "lora") == "lora"
    return {**found, "train_dir": str(train_dir), "base_model": model, "adapters": lora,
            "out": str(cfg.stage_dir / "select"), "stage": cfg.name}


def read_selection(stage_dir: Path) -> dict | None:
    path = Path(stage_dir) / "select" / SCORES
    return json.loads(path.read_text()) if path.is_file() else None


# --------------------------------------------------------------------------- the select command

def checkpoints(train_dir: Path) -> list[Path]:
    """Every completely saved ``checkpoint-N`` (the Trainer writes its state last), oldest first."""
    found = [p for p in Path(train_dir).glob("checkpoint-*")
             if p.name.rsplit("-", 1)[-1].isdigit() and (p / "trainer_state.json").is_file()]
    return sorted(found, key=lambda p: _step(p.name))


def _infer_argv(spec: dict, checkpoint: Path, out: Path) -> list[str]:
    argv = ["infer", "--config", spec["infer_config"], "--task", spec["task"], "--dataset", spec["dataset"],
            "--root", spec["root"], "--out", str(out)]
    if spec.get("split"):
        argv += ["--split", spec["split"]]
    argv += ["--model", spec["base_model"], "--adapter", str(checkpoint)] if spec["adapters"] else \
        ["--model", str(checkpoint)]
    return argv + ["progress=false", *spec["infer_overrides"]]


def _eval_argv(spec: dict, results: Path, out: Path) -> list[str]:
    kind = spec["eval"]
    split_root = Path(spec["root"]) / spec["split"] if spec.get("split") else Path(spec["root"])
    gt_root = spec.get("gt_root") or str(split_root if kind in ("mot", "smot") else spec["root"])
    argv = ["eval", kind, "--gt-root", gt_root, "--results", str(results), "--out", str(out)]
    if kind == "sot":
        argv += ["--dataset", spec["dataset"], "--no-plots"] + (["--split", spec["split"]] if spec.get("split") else [])
    return argv + spec["eval_args"]


def metric_value(summary: dict, metric: str) -> float:
    """``metric`` from an eval summary, by the report's column names (CIDEr: the instance CIDEr of
    smot, as Table 6 reads it)."""
    row = summary_row(summary)
    for column in (metric, f"instance {metric}", f"{metric}-D"):
        if column in row and row[column] is not None:
            return float(row[column])
    raise KeyError(f"the {summary.get('task')} summary has no column {metric!r}; it has {sorted(row)}")


def score_checkpoint(spec: dict, checkpoint: Path) -> float:
    folder = Path(spec["out"]) / checkpoint.name
    summary_path = folder / "eval" / "summary.json"
    # a retrained stage reuses the names checkpoint-N: a score counts only for the weights it was made with
    saved = str((checkpoint / "trainer_state.json").stat().st_mtime_ns)
    stamp = folder / "checkpoint_saved.txt"
    if folder.exists() and (not stamp.is_file() or stamp.read_text() != saved):
        shutil.rmtree(folder)
    if not summary_path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        stamp.write_text(saved)
        for argv in (_infer_argv(spec, checkpoint, folder / "results"), _eval_argv(spec, folder / "results",
                                                                                   folder / "eval")):
            print("# vptracker " + " ".join(argv), flush=True)
            # the documented commands, as a user would run them (train/ sits below the command line)
            if subprocess.run([sys.executable, "-m", "vptracker", *argv], check=False).returncode != 0:
                raise SystemExit(f"select: `vptracker {' '.join(argv)}` failed")
    return metric_value(json.loads(summary_path.read_text()), spec["metric"])


def run(spec: dict) -> dict:
    train_dir = Path(spec["train_dir"])
    found = checkpoints(train_dir)
    if not found:
        raise SystemExit(f"select: {train_dir} holds no complete checkpoint-N to score")
    scores = {}
    for checkpoint in found:
        scores[checkpoint.name] = score_checkpoint(spec, checkpoint)
        print(f"# select: {checkpoint.name} {spec['metric']} {scores[checkpoint.name]:.4f}", flush=True)
    best = choose(scores, spec["lower_is_better"])
    chosen = best if spec["rule"] == "best" else found[-1].name
    result = {"metric": spec["metric"], "split": spec.get("split"), "dataset": spec["dataset"], "task": spec["task"],
              "rule": spec["rule"], "scores": scores, "best": best, "best_score": scores[best], "last": found[-1].name,
              "chosen": chosen, "checkpoint": str(train_dir / chosen)}
    if spec["rule"] == "best":   # a relative link, as swift's last-checkpoint, so the folder stays movable
        link = train_dir / BEST_LINK
        tmp = train_dir / f"{BEST_LINK}.tmp"
        if os.path.lexists(tmp):
            tmp.unlink()
        os.symlink(chosen, tmp)
        os.replace(tmp, link)
    out = Path(spec["out"])
    out.mkdir(parents=True, exist_ok=True)
    (out / SCORES).write_text(json.dumps(result, indent=1))
    print(f"# select: best {best} ({spec['metric']} {scores[best]:.4f}); the stage continues from {chosen}",
          flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="score a stage's checkpoints on its validation split")
    parser.add_argument("--config", required=True, help="the select_config.json the stage runner writes")
    args = parser.parse_args(argv)
    run(json.loads(Path(args.config).read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
