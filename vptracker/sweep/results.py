"""A sweep's outputs: per-row summaries (mean and spread over seeds), ``manifest.json`` in the
report's format (docs/report.md) and the table as markdown beside the paper's numbers.

Layout under the sweep's ``out``::

    rows/<row>/seed<i>/<task>_eval/summary.json    one eval summary per row and seed
    rows/<row>/<task>_eval_mean/summary.json       seeds > 1: the mean, with "spread" (sample std)
    manifest.json  table.md

A row is finished when every seed's summary exists; a resumed sweep skips it.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from vptracker.eval.published import table
from vptracker.sweep.grid import TRACKING_COLUMN, SweepRow, stage_label

FIELDS = ("HOTA", "DetA", "AssA", "MOTA", "IDF1")


def row_folder(out: Path, row: str) -> Path:
    return out / "rows" / row.replace("/", "_")


def seed_summary(out: Path, row: str, seed: int, task: str = "mot") -> Path:
    return row_folder(out, row) / f"seed{seed}" / f"{task}_eval" / "summary.json"


def row_done(out: Path, row: str, seeds: int, task: str = "mot") -> bool:
    return all(seed_summary(out, row, s, task).is_file() for s in range(seeds))


def mean_summary(summaries: list[dict]) -> dict:
    """One summary whose COMBINED is the mean over seeds and ``spread`` the sample standard deviation."""
    first = summaries[0]
    combined, spread = {}, {}
    for key, value in first["COMBINED"].items():
        if not isinstance(value, (int, float)):
            continue
        values = [float(s["COMBINED"][key]) for s in summaries]
        mean = sum(values) / len(values)
        combined[key] = mean
        spread[key] = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    out = {k: v for k, v in first.items() if k not in ("COMBINED", "per_sequence")}
    return {**out, "COMBINED": combined, "spread": spread, "seeds": len(summaries),
            "per_seed": [s["COMBINED"] for s in summaries], "per_sequence": {}}


def write_row(out: Path, row: SweepRow, seeds: int, commit: str | None, task: str = "mot") -> dict:
    """The manifest entry of a finished row (writes the mean summary when there are several seeds)."""
    paths = [seed_summary(out, row.key, s, task) for s in range(seeds)]
    if seeds > 1:
        mean = mean_summary([json.loads(p.read_text()) for p in paths])
        target = row_folder(out, row.key) / f"{task}_eval_mean" / "summary.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(mean, indent=1))
        listed = [target]
    else:
        listed = paths
    # one summary per task and row: the report refuses two summaries that fill one cell
    return {"summaries": [p.relative_to(out).as_posix() for p in listed], "settings": row.settings,
            "commit": commit, "seeds": seeds, "per_seed": [p.relative_to(out).as_posix() for p in paths]}


def write_manifest(out: Path, name: str, scale: str, entries: dict, extra: dict) -> Path:
    path = out / "manifest.json"
    path.write_text(json.dumps({"table": name, "scale": scale, "rows": entries, **extra}, indent=1))
    return path


def _cell(summary: dict, field: str) -> str:
    value = summary["COMBINED"][field]
    if summary.get("seeds", 1) > 1:
        return f"{value:.2f} ± {summary['spread'][field]:.2f}"
    return f"{value:.2f}"


def markdown(out: Path, name: str, rows: list[SweepRow], entries: dict, baseline: dict | None, note: str) -> str:
    """The table: our tracking columns per row (mean ± spread over seeds) beside the paper's."""
    tab = table(name)
    column = TRACKING_COLUMN[name]
    lines = [f"# {tab.title}: sweep ({note})", "",
             "| row | stages | preset | frames | " + " | ".join(FIELDS) + " | parse % | paper " + column + " |",
             "|---|---|---|---:|" + "---:|" * (len(FIELDS) + 2)]
    for row in rows:
        entry = entries.get(row.key)
        paper = tab.text(row.key, column) if row.key in [r.key for r in tab.rows] else "-"
        if entry is None:
            cells = ["missing"] * (len(FIELDS) + 1)
        else:
            summary = json.loads((out / entry["summaries"][0]).read_text())
            parse = [json.loads((out / p).read_text()).get("parse_rate") for p in entry["per_seed"]]
            parse = [p for p in parse if p is not None]
            cells = [_cell(summary, f) for f in FIELDS] + [f"{sum(parse) / len(parse):.0f}" if parse else "-"]
        lines.append(f"| {row.key} | {stage_label(row.stages)} | {row.preset} | {row.frames} | "
                     + " | ".join(cells) + f" | {paper} |")
    if baseline is not None:
        lines.append("| first frame's boxes held (baseline) | - | - | - | "
                     + " | ".join(f"{baseline['COMBINED'][f]:.2f}" for f in FIELDS) + " | - | - |")
    return "\n".join(lines) + "\n"
