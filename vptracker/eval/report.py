"""Markdown tables of our numbers beside every published cell (SPEC section 9, docs/report.md).

Each ``vptracker eval`` command writes ``summary.json`` with ``task`` and ``benchmark``. The
report prints the OmniPT paper's Tables 1-7 in full (every row and column of
:mod:`vptracker.eval.published`, with where each row comes from and the paper's own
inconsistencies marked), our rows beside them ("missing" where no summary gives a cell), then
any other benchmark (TNL2K against the SOT literature, toy sets) as one table per benchmark.

Where a summary goes:

* Tables 1-4 (the main results) by its task and benchmark, as :data:`FEEDS` lists (``smot`` on
  BenSMOT, ``crmot`` on CRTrack-In-domain / -Cross-domain, ``mot`` on DanceTrack, ``rmot`` on
  Refer-KITTI-V2); one row per summary ``name``.
* Tables 5-7 (ablations) by a tag, ``"paper_row": {"table": "table7", "row": "8"}``: in the
  summary itself, given on the command line (``table7/8=DIR``) or by a sweep's ``manifest.json``
  (:func:`load_summaries`). Several summaries of one row fill its columns together (``mot`` gives
  Table 5's tracking, ``rmot`` its RMOT HOTA, ``smot`` its captions).
"""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from vptracker.config import ConfigError
from vptracker.eval.published import LITERATURE, NOT_NUMBERS, TABLES, Table, table
from vptracker.eval.sot import protocol_class
from vptracker.registry import Registry

MISSING = "missing"


def _sot_row(summary: dict) -> dict[str, float]:
    return {column: summary[field] for column, field in protocol_class(summary["protocol"]).columns.items()}


# task of a summary.json -> its report columns; a SOT summary's columns are its protocol's ``columns``.
REPORT_ROWS: Registry[Callable[[dict], dict]] = Registry("summary task")
REPORT_ROWS.add("sot", _sot_row)
REPORT_ROWS.add("mot", lambda s: dict(s["COMBINED"]))
REPORT_ROWS.add("rmot", lambda s: dict(s["COMBINED"]))
REPORT_ROWS.add("crmot", lambda s: {"CVRIDF1": s["cvridf1"], "CVRMA": s["cvrma"]})
REPORT_ROWS.add("smot", lambda s: dict(s["table_row"]))
REPORT_ROWS.add("captions", lambda s: {k: s[k] for k in ("BLEU-1", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D")})


def _same(task: str, benchmark: str | None, columns) -> dict[str, tuple]:
    return {c: ((task, benchmark, c),) for c in columns}


# table -> column -> feeds: (summary task, benchmark or None for any, key of summary_row()), the
# first feed a row's summaries give wins. A benchmark-bound feed also places untagged summaries.
FEEDS: dict[str, dict[str, tuple[tuple[str, str | None, str], ...]]] = {
    "table1": _same("smot", "BenSMOT", TABLES["table1"].columns),
    "table2": {f"{d} {m}": (("crmot", f"CRTrack-{d}", m),) for d in ("In-domain", "Cross-domain")
               for m in ("CVRIDF1", "CVRMA")},
    "table3": _same("mot", "DanceTrack", TABLES["table3"].columns),
    "table4": _same("rmot", "Refer-KITTI-V2", TABLES["table4"].columns),
    "table5": {**{f"instance {m}": (("smot", None, f"instance {m}"),) for m in ("BLEU", "ROUGE", "METEOR", "CIDEr")},
               **_same("mot", None, ("HOTA", "IDF1", "MOTA")), "RMOT HOTA": (("rmot", None, "HOTA"),)},
    "table6": {"MOT": (("mot", None, "HOTA"),), "RMOT": (("rmot", None, "HOTA"),),
               "SMOT": (("smot", None, "instance CIDEr"),)},
    # Table 7's tracking is BenSMOT's (smot); a MOT summary fills it where no smot summary does
    "table7": {**_same("smot", None, TABLES["table7"].columns[:4]),
               **{c: (("smot", None, c), ("mot", None, c)) for c in ("HOTA", "MOTA")}},
}


def summary_row(summary: dict) -> dict[str, float]:
    """The report columns of one of our ``summary.json`` files."""
    task = summary.get("task")
    if task not in REPORT_ROWS:
        raise ConfigError(f"summary without a known task (got {task!r}); expected one written by `vptracker eval` "
                         f"({', '.join(REPORT_ROWS.names())})")
    return REPORT_ROWS.get(task)(summary)


def _table(name) -> Table:
    try:
        return table(name)
    except KeyError as e:
        raise ConfigError(e.args[0]) from None


def _cell(value) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if abs(value) < 10 and not float(value).is_integer() else f"{value:.2f}"


def _origin(summary: dict) -> str:
    return str(summary.get("_source") or summary.get("name") or "summary")


class _Ours:
    """One of our rows in a paper table: cells filled by one or more summaries."""

    def __init__(self, key: str):
        self.key, self.cells, self.sources = key, {}, []

    def fill(self, tab: Table, summary: dict, row: dict) -> bool:
        filled = False
        for column, feeds in FEEDS[tab.key].items():
            for rank, (task, bench, field) in enumerate(feeds):
                if task != summary.get("task") or (bench and bench != summary.get("benchmark")):
                    continue
                if row.get(field) is None:
                    continue
                held = self.cells.get(column)
                if held is not None and held[1] == rank:
                    raise ConfigError(f"{tab.key} row {self.key!r}, column {column!r}: given by two summaries "
                                     f"({held[2]} and {_origin(summary)}); keep one")
                if held is None or rank < held[1]:
                    self.cells[column] = (float(row[field]), rank, _origin(summary))
                filled = True
        if filled and _origin(summary) not in self.sources:
            self.sources.append(_origin(summary))
        return filled


def _place(summaries: list[dict]) -> tuple[dict[str, dict[str, _Ours]], list[dict]]:
    """Our rows per paper table, and the summaries that belong to no paper table."""
    paper: dict[str, dict[str, _Ours]] = {key: {} for key in TABLES}
    other = []
    for s in summaries:
        row = summary_row(s)
        tag = s.get("paper_row")
        if tag:
            tab = _table(tag["table"])
            ours = paper[tab.key].setdefault(str(tag["row"]), _Ours(str(tag["row"])))
            if not ours.fill(tab, s, row):
                raise ConfigError(f"{_origin(s)}: a {s.get('task')} summary fills no column of {tab.key} "
                                 f"({', '.join(tab.columns)})")
            continue
        placed = False
        for key in ("table1", "table2", "table3", "table4"):
            if any(f[0] == s.get("task") and f[1] == s.get("benchmark") for fs in FEEDS[key].values() for f in fs):
                name = s.get("name") or "ours"
                placed |= paper[key].setdefault(name, _Ours(name)).fill(TABLES[key], s, row)
        if not placed:
            other.append(s)
    return paper, other


def _decimals(tab: Table, column: str) -> int:
    i = tab.columns.index(column)
    printed = [r.cells[i] for r in tab.rows if r.cells[i] not in NOT_NUMBERS]
    return max([2] + [len(c.split(".")[1]) for c in printed if "." in c])


def _line(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def _ours_line(tab: Table, label: str, ours: _Ours | None) -> str:
    cells = []
    for column in tab.columns:
        held = ours.cells.get(column) if ours else None
        cells.append(MISSING if held is None else f"{held[0]:.{_decimals(tab, column)}f}")
    source = ", ".join(ours.sources) if ours else "no summary"
    return _line(label, source, *cells)


def _paper_section(tab: Table, ours_rows: dict[str, _Ours]) -> list[str]:
    lines = [f"## {tab.title}", ""]
    if tab.legend:
        lines += [tab.legend, ""]
    lines += [_line("method", "source", *tab.columns), "|---|---|" + "---|" * len(tab.columns)]
    ablation = tab.key not in ("table1", "table2", "table3", "table4")
    for row in tab.rows:
        cells = [c + "".join(f" [{m}]" for m in tab.note_marks(row.key, col)) for c, col in zip(row.cells, tab.columns)]
        lines.append(_line(row.label, row.source, *cells))
        if ablation:
            lines.append(_ours_line(tab, f"**ours** ({row.key})", ours_rows.get(row.key)))
    known = {r.key for r in tab.rows} if ablation else set()
    extra = [o for k, o in ours_rows.items() if k not in known]
    for ours in extra:
        lines.append(_ours_line(tab, f"**{ours.key}** (ours)", ours))
    if not ablation and not extra:
        lines.append(_ours_line(tab, "**ours**", None))
    lines.append("")
    lines += [f"[{n.mark}] {n.text}" for n in tab.notes]
    return lines + ([""] if tab.notes else [])


def _other_section(bench: str, runs: list[dict]) -> list[str]:
    columns, published = LITERATURE.get(bench, ((), {}))
    ours = [(s.get("name") or "ours", summary_row(s)) for s in runs]
    if not columns:
        columns = tuple(k for k in ours[0][1] if isinstance(ours[0][1][k], (int, float)))
    protocol = sorted({str(s.get("protocol")) for s in runs if s.get("protocol")})
    lines = [f"## {bench}" + (f" (protocol: {', '.join(protocol)})" if protocol else ""), "",
             "| method | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for method, row in published.items():
        lines.append(f"| {method} (published) | " + " | ".join(_cell(row.get(c)) for c in columns) + " |")
    for name, row in ours:
        lines.append(f"| **{name}** (ours) | " + " | ".join(_cell(row.get(c)) for c in columns) + " |")
    return lines + [""]


def markdown_report(summaries: list[dict]) -> str:
    """Tables 1-7 of the paper with our rows, then one table per other benchmark."""
    paper, other = _place(summaries)
    parts = ["# Results beside the published numbers", "",
             ("Published rows as the OmniPT paper prints them (\"-\": left empty, N/A: the paper's); our cells "
              f"read \"{MISSING}\" where no summary gives them. [x] marks a note under the table."), ""]
    for key, tab in TABLES.items():
        parts += _paper_section(tab, paper[key])
    by_bench: dict[str, list[dict]] = {}
    for s in other:
        by_bench.setdefault(s.get("benchmark") or s.get("task", "results"), []).append(s)
    for bench, runs in by_bench.items():
        parts += _other_section(bench, runs)
    return "\n".join(parts)


def _read_summary(path: Path) -> dict:
    if path.is_dir():
        path = path / "summary.json"
    try:
        summary = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no summary.json (run `vptracker eval ...` with --out first)") from None
    summary.setdefault("_source", str(path.parent if path.name == "summary.json" else path))
    return summary


def _read_manifest(path: Path) -> list[dict]:
    """A sweep's manifest: ``{"table": ..., "rows": {row: {"summaries": [paths], "commit": ...}}}``."""
    manifest = json.loads(path.read_text())
    if "table" not in manifest or not isinstance(manifest.get("rows"), dict):
        raise ConfigError(f"{path}: expected a manifest with \"table\" and \"rows\" ({{row: {{\"summaries\": "
                         f"[...]}}}}), see docs/report.md")
    tab = _table(manifest["table"])
    out = []
    for row, entry in manifest["rows"].items():
        for rel in entry.get("summaries", []):
            summary = _read_summary(path.parent / rel)
            summary["paper_row"] = {"table": tab.key, "row": str(row)}
            if entry.get("commit"):
                summary["_source"] += f" @ {str(entry['commit'])[:9]}"
            out.append(summary)
    return out


def load_summaries(specs: list[str | Path]) -> list[dict]:
    """``PATH`` (a summary.json, its folder, or a manifest.json) or ``TABLE/ROW=PATH`` (a tag)."""
    summaries = []
    for spec in map(str, specs):
        tag = None
        if "=" in spec and not Path(spec).exists():
            tag, spec = spec.split("=", 1)
            if "/" not in tag:
                raise ConfigError(f"{tag}={spec}: expected TABLE/ROW=PATH, e.g. table7/8=runs/frames8/eval")
        path = Path(spec)
        if path.name == "manifest.json" or (path.is_dir() and not (path / "summary.json").exists()
                                            and (path / "manifest.json").is_file()):
            summaries += _read_manifest(path if path.name == "manifest.json" else path / "manifest.json")
            continue
        summary = _read_summary(path)
        if tag:
            name, row = tag.split("/", 1)
            summary["paper_row"] = {"table": _table(name).key, "row": row}
        summaries.append(summary)
    return summaries


def write_report(summary_specs: list[str | Path], out: str | Path) -> Path:
    text = markdown_report(load_summaries(summary_specs))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return out
