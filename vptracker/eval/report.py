"""Markdown tables of our numbers beside the published ones (SPEC section 9).

Each ``vptracker eval`` command writes ``summary.json`` with ``task`` and ``benchmark``; the report
groups the summaries by benchmark and prints the published rows first, then ours. Published
numbers come from the OmniPT paper (Tables 1-3) and the vision-language SOT literature on TNL2K;
VPTracker's own table was not available offline.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from vptracker.eval.registry import Registry

# benchmark -> (columns, {method: {column: value}})
PUBLISHED: dict[str, tuple[tuple[str, ...], dict[str, dict[str, float]]]] = {
    "TNL2K": (("AUC", "P", "P_norm"), {
        "JointNLT": {"AUC": 56.9, "P": 58.1}, "UVLTrack-L": {"AUC": 64.9, "P": 69.3},
        "DUTrack-384": {"AUC": 65.6}, "MVLM": {"AUC": 66.3, "P": 71.4},
        "MambaVLT": {"AUC": 66.5, "P": 69.9}, "SUTrack": {"AUC": 67.9}}),
    "DanceTrack": (("HOTA", "DetA", "AssA", "MOTA", "IDF1"), {
        "FairMOT": {"HOTA": 39.7, "DetA": 66.7, "AssA": 23.8, "MOTA": 82.2, "IDF1": 40.8},
        "TransTrack": {"HOTA": 45.5, "DetA": 75.9, "AssA": 27.5, "MOTA": 88.5, "IDF1": 45.2},
        "MOTR": {"HOTA": 54.2, "DetA": 73.5, "AssA": 40.2, "MOTA": 79.7, "IDF1": 51.5},
        "ByteTrack": {"HOTA": 47.7, "DetA": 71.0, "AssA": 32.1, "MOTA": 89.6, "IDF1": 53.9},
        "OC-SORT": {"HOTA": 55.1, "DetA": 80.3, "AssA": 38.3, "MOTA": 92.0, "IDF1": 54.6},
        "OmniPT (72B)": {"HOTA": 56.4, "DetA": 81.7, "AssA": 41.0, "MOTA": 90.2, "IDF1": 55.4}}),
    "Refer-KITTI-V2": (("HOTA", "DetA", "AssA"), {"OmniPT (72B)": {"HOTA": 36.15}}),
    "CRTrack-In-domain": (("CVRIDF1", "CVRMA"), {
        "TransRMOT": {"CVRIDF1": 23.30, "CVRMA": 8.03}, "TempRMOT": {"CVRIDF1": 23.43, "CVRMA": 10.14},
        "CRTracker": {"CVRIDF1": 54.88, "CVRMA": 35.97}, "OmniPT (72B)": {"CVRIDF1": 62.13, "CVRMA": 42.39}}),
    "CRTrack-Cross-domain": (("CVRIDF1", "CVRMA"), {
        "TransRMOT": {"CVRIDF1": 3.66, "CVRMA": 0.2}, "TempRMOT": {"CVRIDF1": 3.78, "CVRMA": 0.39},
        "CRTracker": {"CVRIDF1": 12.52, "CVRMA": 2.32}, "OmniPT (72B)": {"CVRIDF1": 46.54, "CVRMA": 33.67}}),
    "BenSMOT": (("video BLEU", "video ROUGE", "video METEOR", "video CIDEr", "instance BLEU", "instance ROUGE",
                 "instance METEOR", "instance CIDEr", "HOTA", "IDF1", "MOTA"), {
        "SMOTer": dict(zip(("video BLEU", "video ROUGE", "video METEOR", "video CIDEr", "instance BLEU",
                            "instance ROUGE", "instance METEOR", "instance CIDEr", "HOTA", "IDF1", "MOTA"),
                           (0.245, 0.261, 0.223, 0.343, 0.306, 0.223, 0.209, 0.087, 71.98, 80.65, 77.71))),
        "OmniPT (72B)": dict(zip(("video BLEU", "video ROUGE", "video METEOR", "video CIDEr", "instance BLEU",
                                  "instance ROUGE", "instance METEOR", "instance CIDEr", "HOTA", "IDF1", "MOTA"),
                                 (0.519, 0.488, 0.459, 1.826, 0.512, 0.342, 0.353, 0.482, 75.04, 81.13, 77.78)))}),
}


def _sot_row(summary: dict) -> dict[str, float]:
    from vptracker.eval.sot import protocol_class

    return {column: summary[field] for column, field in protocol_class(summary["protocol"]).columns.items()}


# task of a summary.json -> its report columns; a SOT summary's columns are its protocol's ``columns``.
REPORT_ROWS: Registry[Callable[[dict], dict]] = Registry("summary task")
REPORT_ROWS.add("sot", _sot_row)
REPORT_ROWS.add("mot", lambda s: dict(s["COMBINED"]))
REPORT_ROWS.add("rmot", lambda s: dict(s["COMBINED"]))
REPORT_ROWS.add("crmot", lambda s: {"CVRIDF1": s["cvridf1"], "CVRMA": s["cvrma"]})
REPORT_ROWS.add("smot", lambda s: dict(s["table_row"]))
REPORT_ROWS.add("captions", lambda s: {k: s[k] for k in ("BLEU-1", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D")})


def summary_row(summary: dict) -> dict[str, float]:
    """The report columns of one of our ``summary.json`` files."""
    task = summary.get("task")
    if task not in REPORT_ROWS:
        raise ValueError(f"summary without a known task (got {task!r}); expected one written by `vptracker eval` "
                         f"({', '.join(REPORT_ROWS.names())})")
    return REPORT_ROWS.get(task)(summary)


def _cell(value) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if abs(value) < 10 and not float(value).is_integer() else f"{value:.2f}"


def markdown_report(summaries: list[dict]) -> str:
    """One section per benchmark: published rows, then ours (``name`` of each summary)."""
    by_bench: dict[str, list[dict]] = {}
    for s in summaries:
        by_bench.setdefault(s.get("benchmark") or s.get("task", "results"), []).append(s)
    parts = ["# Results beside the published numbers", ""]
    for bench, runs in by_bench.items():
        columns, published = PUBLISHED.get(bench, ((), {}))
        ours = [(s.get("name") or "ours", s, summary_row(s)) for s in runs]
        if not columns:
            columns = tuple(k for k in ours[0][2] if isinstance(ours[0][2][k], (int, float)))
        protocol = sorted({str(s.get("protocol")) for s in runs if s.get("protocol")})
        parts.append(f"## {bench}" + (f" (protocol: {', '.join(protocol)})" if protocol else ""))
        parts.append("")
        parts.append("| method | " + " | ".join(columns) + " |")
        parts.append("|---|" + "---|" * len(columns))
        for method, row in published.items():
            parts.append(f"| {method} (published) | " + " | ".join(_cell(row.get(c)) for c in columns) + " |")
        for name, _, row in ours:
            parts.append(f"| **{name}** (ours) | " + " | ".join(_cell(row.get(c)) for c in columns) + " |")
        parts.append("")
    return "\n".join(parts)


def write_report(summary_paths: list[str | Path], out: str | Path) -> Path:
    summaries = []
    for p in summary_paths:
        p = Path(p)
        if p.is_dir():
            p = p / "summary.json"
        try:
            summaries.append(json.loads(p.read_text()))
        except FileNotFoundError:
            raise FileNotFoundError(f"{p}: no summary.json (run `vptracker eval ...` with --out first)") from None
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown_report(summaries))
    return out
