"""A sweep's outputs: per-row summaries (mean and spread over seeds), ``manifest.json`` in the
report's format (docs/report.md) and the table as markdown beside the paper's numbers.

Layout under the sweep's ``out``::

    rows/<row>/seed<i>/<task>_eval/summary.json    one eval summary per row, seed and task
    rows/<row>/<task>_eval_mean/summary.json       seeds > 1: the mean, with "spread" (sample std)
    manifest.json  table.md

Tasks: ``mot`` always; at toy scale ``rmot`` and ``smot`` where the table has their columns
(:data:`vptracker.sweep.toy_text.TOY_TASKS`). A row is finished when every seed's summary of every
task exists; a resumed sweep skips it.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from vptracker.eval.published import table
from vptracker.sweep.grid import TRACKING_COLUMN, SweepRow, stage_label

FIELDS = ("HOTA", "DetA", "AssA", "MOTA", "IDF1")
# the numbers each task's summary holds (the report's summary_row) and the table's columns they give
VALUES = {"mot": "COMBINED", "rmot": "COMBINED", "smot": "table_row"}
EXTRA_COLUMNS = {   # (our column, task, key of the task's values), beside the MOT fields
    "table5": (("RMOT HOTA", "rmot", "HOTA"), *((f"instance {m}", "smot", f"instance {m}")
                                                for m in ("BLEU", "ROUGE", "METEOR", "CIDEr"))),
    "table6": (("RMOT HOTA", "rmot", "HOTA"), ("SMOT (instance CIDEr)", "smot", "instance CIDEr")),
    "table7": tuple((c, "smot", c) for c in ("video METEOR", "video CIDEr", "instance METEOR", "instance CIDEr")),
}
# the paper's columns printed beside ours, per table and the task whose column it is
PAPER_COLUMNS = {"table5": (("HOTA", "mot"), ("RMOT HOTA", "rmot"), ("instance CIDEr", "smot")),
                 "table6": (("MOT", "mot"), ("RMOT", "rmot"), ("SMOT", "smot")),
                 "table7": (("HOTA", "mot"), ("video CIDEr", "smot"), ("instance CIDEr", "smot"))}


def row_folder(out: Path, row: str) -> Path:
    return out / "rows" / row.replace("/", "_")


def seed_summary(out: Path, row: str, seed: int, task: str = "mot") -> Path:
    return row_folder(out, row) / f"seed{seed}" / f"{task}_eval" / "summary.json"


def _tasks(task) -> tuple[str, ...]:
    return (task,) if isinstance(task, str) else tuple(task)


def row_done(out: Path, row: str, seeds: int, task: str | tuple[str, ...] = "mot") -> bool:
    return all(seed_summary(out, row, s, t).is_file() for s in range(seeds) for t in _tasks(task))


def mean_summary(summaries: list[dict], key: str = "COMBINED") -> dict:
    """One summary whose ``key`` (COMBINED; an SMOT summary's table_row) is the mean over seeds and
    ``spread`` the sample standard deviation."""
    first = summaries[0]
    combined, spread = {}, {}
    for field, value in first[key].items():
        if not isinstance(value, (int, float)):
            continue
        values = [float(s[key][field]) for s in summaries]
        mean = sum(values) / len(values)
        combined[field] = mean
        spread[field] = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    dropped = (key, "per_sequence", "tracking", "video_caption", "instance_caption")   # per seed, not averaged
    out = {k: v for k, v in first.items() if k not in dropped}
    return {**out, key: combined, "spread": spread, "seeds": len(summaries),
            "per_seed": [s[key] for s in summaries], "per_sequence": {}}


def write_row(out: Path, row: SweepRow, seeds: int, commit: str | None, task: str | tuple[str, ...] = "mot") -> dict:
    """The manifest entry of a finished row (writes the mean summaries when there are several seeds):
    ``summaries`` one per task, the first task's first; ``per_seed`` the first task's per seed, and
    ``per_seed_tasks`` every task's."""
    listed, per_seed = [], {}
    for name in _tasks(task):
        paths = [seed_summary(out, row.key, s, name) for s in range(seeds)]
        per_seed[name] = [p.relative_to(out).as_posix() for p in paths]
        if seeds > 1:
            mean = mean_summary([json.loads(p.read_text()) for p in paths], VALUES.get(name, "COMBINED"))
            target = row_folder(out, row.key) / f"{name}_eval_mean" / "summary.json"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(mean, indent=1))
            listed.append(target)
        else:
            listed += paths
    # one summary per task and row: the report refuses two summaries that fill one cell
    first = _tasks(task)[0]
    return {"summaries": [p.relative_to(out).as_posix() for p in listed], "settings": row.settings,
            "commit": commit, "seeds": seeds, "per_seed": per_seed[first], "per_seed_tasks": per_seed}


def write_manifest(out: Path, name: str, scale: str, entries: dict, extra: dict) -> Path:
    path = out / "manifest.json"
    path.write_text(json.dumps({"table": name, "scale": scale, "rows": entries, **extra}, indent=1))
    return path


def _cell(summary: dict, field: str, key: str = "COMBINED") -> str:
    value = summary[key][field]
    digits = 2 if abs(value) >= 10 or key == "COMBINED" else 3   # captions are fractions, as the paper prints
    if summary.get("seeds", 1) > 1:
        return f"{value:.{digits}f} ± {summary['spread'][field]:.{digits}f}"
    return f"{value:.{digits}f}"


def _by_task(out: Path, entry: dict) -> dict[str, dict]:
    found = {}
    for rel in entry["summaries"]:
        summary = json.loads((out / rel).read_text())
        found.setdefault(summary.get("task", "mot"), summary)
    return found


def markdown(out: Path, name: str, rows: list[SweepRow], entries: dict, baseline: dict | None, note: str,
             tasks: tuple[str, ...] = ("mot",)) -> str:
    """The table: our MOT columns per row (mean ± spread over seeds), the parse rate of the MOT
    answers, the RMOT and caption columns of ``tasks``, then the paper's columns beside them."""
    tab = table(name)
    extra = [c for c in EXTRA_COLUMNS[name] if c[1] in tasks]
    paper_columns = [c for c, task in PAPER_COLUMNS[name] if task in tasks] or [TRACKING_COLUMN[name]]
    ours = [*FIELDS, "parse %", *(c for c, _, _ in extra)]
    lines = [f"# {tab.title}: sweep ({note})", "",
             "| row | stages | preset | frames | " + " | ".join(ours) + " | "
             + " | ".join(f"paper {c}" for c in paper_columns) + " |",
             "|---|---|---|---:|" + "---:|" * (len(ours) + len(paper_columns))]
    for row in rows:
        entry = entries.get(row.key)
        known = row.key in [r.key for r in tab.rows]
        paper = [tab.text(row.key, c) if known else "-" for c in paper_columns]
        if entry is None:
            cells = ["missing"] * len(ours)
        else:
            found = _by_task(out, entry)
            summary = found["mot"]
            parse = [json.loads((out / p).read_text()).get("parse_rate") for p in entry["per_seed"]]
            parse = [p for p in parse if p is not None]
            cells = [_cell(summary, f) for f in FIELDS] + [f"{sum(parse) / len(parse):.0f}" if parse else "-"]
            cells += [_cell(found[task], field, VALUES[task]) if task in found else "missing"
                      for _, task, field in extra]
        lines.append(f"| {row.key} | {stage_label(row.stages)} | {row.preset} | {row.frames} | "
                     + " | ".join(cells + paper) + " |")
    if baseline is not None:
        lines.append("| first frame's boxes held (baseline) | - | - | - | "
                     + " | ".join(f"{baseline['COMBINED'][f]:.2f}" for f in FIELDS)
                     + " | -" * (1 + len(extra) + len(paper_columns)) + " |")
    return "\n".join(lines) + "\n"
