"""Success, precision and normalised-precision plots with several trackers on one chart.

Input is what :func:`vptracker.eval.sot_eval.evaluate_sot` returns (its ``curves`` entry), keyed by
the tracker's display name; the legend carries each tracker's score, best first, as the
toolkits draw it.
"""
from __future__ import annotations

from pathlib import Path

PLOTS = {
    # kind: (x thresholds key, curve key, score key, title, x label, legend score format)
    "success": ("overlap_thresholds", "success", "auc", "Success plot", "Overlap threshold", "AUC"),
    "precision": ("center_thresholds", "precision", "precision", "Precision plot",
                  "Location error threshold (pixels)", "P@20"),
    "norm_precision": ("norm_center_thresholds", "norm_precision", "norm_precision",
                       "Normalized precision plot", "Normalized location error threshold", "P_norm@0.2"),
}


def plot_curves(summaries: dict[str, dict], out_dir: str | Path, title: str = "",
                kinds: tuple[str, ...] = tuple(PLOTS)) -> list[Path]:
    """Writes ``<kind>_plot.png`` for each kind; returns the paths."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers and CI
    import matplotlib.pyplot as plt

    if not summaries:
        raise ValueError("no tracker summaries to plot")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for kind in kinds:
        x_key, curve_key, score_key, kind_title, x_label, score_name = PLOTS[kind]
        fig, ax = plt.subplots(figsize=(6, 5))
        ranked = sorted(summaries.items(), key=lambda kv: -kv[1][score_key])
        for name, s in ranked:
            ax.plot(s["curves"][x_key], s["curves"][curve_key], linewidth=2,
                    label=f"[{s[score_key]:.1f}] {name}")
        ax.set_xlabel(x_label)
        ax.set_ylabel("Success rate (%)" if kind == "success" else "Precision (%)")
        ax.set_ylim(0, 100)
        ax.set_xlim(min(s["curves"][x_key][0] for s in summaries.values()),
                    max(s["curves"][x_key][-1] for s in summaries.values()))
        protocol = next(iter(summaries.values())).get("protocol", "")
        ax.set_title(" - ".join(p for p in (title, f"{kind_title} ({score_name}, {protocol})") if p))
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower left" if kind == "success" else "lower right", fontsize=8)
        path = out_dir / f"{kind}_plot.png"
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    return paths
