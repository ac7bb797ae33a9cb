"""The demo's outputs: ``summary.json`` and ``report.md`` with tables, curves and a tracking GIF.

Curves come from :func:`vptracker.eval.plots.plot_curves`, the GIF from
:func:`vptracker.infer.visualize.render_sequence`, the table from
:func:`vptracker.eval.sot_eval.format_sot_table`: the report shows what the real tools produce.
"""
from __future__ import annotations

import json
from pathlib import Path

from vptracker.eval.plots import plot_curves
from vptracker.eval.sot_eval import format_sot_table

LOG = "demo.log"
SECTIONS = ("## Summary", "## SOT results", "## Success and precision", "## Tracking example", "## Training",
            "## Pipeline", "## Timing")


def summary_json(scores: dict[str, dict], parse_rates: dict[str, float], times: dict, total_s: float,
                 extra: dict) -> dict:
    """The machine-readable summary (percent values, rounded to 0.01)."""
    r = lambda v: round(float(v), 2)  # noqa: E731
    out = {
        "auc_trained": r(scores["trained"]["auc"]),
        "auc_untrained": r(scores["untrained"]["auc"]),
        "auc_hold_first_box": r(scores["hold_first_box"]["auc"]),
        "precision_trained": r(scores["trained"]["precision"]),
        "precision_untrained": r(scores["untrained"]["precision"]),
        "precision_hold_first_box": r(scores["hold_first_box"]["precision"]),
        "parse_rate_before": r(parse_rates["untrained"]),
        "parse_rate_after": r(parse_rates["trained"]),
        "protocol": scores["trained"]["protocol"],
        "num_sequences": scores["trained"]["num_sequences"],
        "step_seconds": times,
        "total_seconds": total_s,
    }
    if "after_sft" in scores:
        out["auc_after_sft"] = r(scores["after_sft"]["auc"])
        out["parse_rate_after_sft"] = r(parse_rates["after_sft"])
    out["margin_over_untrained"] = r(out["auc_trained"] - out["auc_untrained"])
    out["margin_over_hold_first_box"] = r(out["auc_trained"] - out["auc_hold_first_box"])
    out.update(extra)
    return out


def log_points(log_dir: Path, key: str) -> list[tuple[int, float]]:
    """(step, value) pairs of ``key`` (``loss``, ``reward``) from ms-swift's ``logging.jsonl`` files."""
    points = []
    for path in sorted(log_dir.rglob("logging.jsonl")):
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            step = str(row.get("global_step/max_steps", "")).split("/")[0]
            if key in row and step.isdigit():
                points.append((int(step), float(row[key])))
    return points


def plot_training(points: list[tuple[int, float]], path: Path, ylabel: str) -> Path | None:
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_report(out: Path, summary: dict, scores: dict[str, dict], cfg: dict, gif: Path | None,
                 stage_dirs: dict[str, Path], quick: bool) -> Path:
    names = {"trained": "trained (SFT+GRPO)", "after_sft": "after SFT only", "untrained": "untrained",
             "hold_first_box": "hold first box"}
    plots = plot_curves({names[k]: v for k, v in scores.items()}, out / "plots", title="held-out synthetic SOT")
    training_plots = []
    for stage, folder in stage_dirs.items():
        pts = log_points(folder, "loss" if stage == "sft" else "reward")
        p = plot_training(pts, out / "plots" / f"{stage}_curve.png", "loss" if stage == "sft" else "mean reward")
        if p is not None:
            training_plots.append((stage, p, pts))
    rel = lambda p: Path(p).relative_to(out).as_posix()  # noqa: E731
    verdict = ("**yes**" if min(summary["margin_over_untrained"], summary["margin_over_hold_first_box"]) >= 5
               else "**no**")
    lines = [f"# CPU demo: {cfg['task']} on synthetic data{' (--quick smoke run)' if quick else ''}", "",
             "## Summary", "",
             f"Trained AUC {summary['auc_trained']:.2f} vs untrained {summary['auc_untrained']:.2f} and "
             f"hold-first-box {summary['auc_hold_first_box']:.2f} (protocol `{summary['protocol']}`, "
             f"{summary['num_sequences']} held-out sequences). Beats both by at least 5 AUC points: {verdict}.",
             f"Answers in the trained grammar: {summary['parse_rate_before']:.1f}% before training, "
             f"{summary['parse_rate_after']:.1f}% after"
             + (f" ({summary['parse_rate_after_sft']:.1f}% after SFT, before the format-reward stage)."
                if "parse_rate_after_sft" in summary else "."), "",
             "## SOT results", "", "```", format_sot_table({names[k]: v for k, v in scores.items()}), "```", "",
             "## Success and precision", ""]
    lines += [f"![{Path(p).stem}]({rel(p)})" for p in plots]
    lines += ["", "## Tracking example", ""]
    lines += ([f"Held-out sequence where training gains most over holding the first box (ground truth green, "
               f"trained tracker red): ![tracking]({rel(gif)})"] if gif is not None
              else ["(no sequence rendered)"])
    lines += ["", "## Training", ""]
    for stage, p, pts in training_plots:
        lines.append(f"- {stage}: {len(pts)} logged points, first {pts[0][1]:.3f}, last {pts[-1][1]:.3f} "
                     f"![{stage}]({rel(p)})")
    if not training_plots:
        lines.append("(no training logs found)")
    m, s, g = cfg["model"], cfg["sft"], cfg["grpo"]
    lines += ["", "## Pipeline", "",
              f"- data: synthetic TNL2K-style SOT ({cfg['data']['train_sequences']} train / "
              f"{cfg['data']['test_sequences']} test sequences of {cfg['data']['frames']} frames, "
              f"{cfg['data']['width']}x{cfg['data']['height']}) and a MOTChallenge-style MOT set, `data/`",
              f"- model: tiny {m['family']} (hidden {m['hidden']}, {m['layers']} layers, vision depth "
              f"{m['vision_depth']}), random init, `model/`",
              f"- rows: `{cfg['task']}` / `{cfg['task']}_grpo` task builders, options {cfg['task_options'] or {}}, "
              f"box scale `{cfg['prepare']['scale']}`, `prepared/`",
              f"- SFT: stage `{s['stage']}`, {s['max_steps']} steps x batch {s['batch_size']}, lr "
              f"{s['learning_rate']}, frozen {', '.join(s['freeze_parameters'])}",
              f"- GRPO: stage `{g['stage']}`, {g['max_steps']} steps, {g['num_generations']} generations",
              "- inference: " + ("the batched VPTracker loop (template = frame 1 crop, outline = 4x previous box)"
                                 if cfg["task"] == "vptracker_sot" else
                                 "OmniPT's multi-round SOT loop (the last box of a round is the next round's prior)"),
              f"- evaluation: `evaluate_sot`, protocol `{summary['protocol']}`",
              f"- log: [{LOG}]({LOG}) (what ms-swift, transformers and the training runs printed)", "",
              "## Timing", "", "| step | seconds |", "|---|---:|"]
    lines += [f"| {k} | {v:.0f} |" for k, v in summary["step_seconds"].items()]
    lines += [f"| total | {summary['total_seconds']:.0f} |", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path
