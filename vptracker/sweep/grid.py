"""The rows of an ablation table and which training runs they share.

A row is what the paper varies in it (``vptracker.eval.published``): the model preset (Table 5),
the stages (Table 6) or the frames per sample (Table 7); the other two come from the sweep's
defaults. Rows that train the same data with the same model and seed form one group, and within a
group a stage prefix (``s1``, ``s1 -> s2`` ...) is trained once: Table 6's four rows need 6 stage
runs instead of 11.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from vptracker.config import ConfigError
from vptracker.eval.published import Row, table
from vptracker.train.stages import CONFIG_DIR, SHORT

SWEEP_TABLES = ("table5", "table6", "table7")
# the tracking column of each table, the one a toy MOT run fills (Table 7 tracks BenSMOT; MOT stands in)
TRACKING_COLUMN = {"table5": "HOTA", "table6": "MOT", "table7": "HOTA"}


@dataclass(frozen=True)
class SweepRow:
    key: str                     # the paper's row key: a preset, a stage label, a frame count
    stages: tuple[str, ...]
    preset: str
    frames: int
    settings: dict = field(default_factory=dict, compare=False)   # what the row varies, for the manifest

    def group(self, seed: int) -> str:
        """Rows of one group share data, model and seed, hence their stage prefixes."""
        return f"{self.preset}-f{self.frames}-seed{seed}"


def stage_label(stages) -> str:
    return " -> ".join(SHORT.get(s, s) for s in stages)


def sweep_rows(name: str, stages: tuple[str, ...], preset: str, frames: int,
               selected: list[str] | None = None) -> list[SweepRow]:
    """The rows of Table 5, 6 or 7 (all, or ``selected`` by key, in the paper's order)."""
    if name not in SWEEP_TABLES:
        raise ConfigError(f"sweep: no ablation table {name!r}; expected one of {', '.join(SWEEP_TABLES)}")
    tab = table(name)
    keys = [r.key for r in tab.rows]
    wanted = [str(s) for s in selected] if selected else keys
    # Table 5 takes any model preset: one the paper lacks (qwen3_vl_4b) is an extra row of ours
    extra = [k for k in wanted if k not in keys and name == "table5" and k in model_presets()]
    unknown = [k for k in wanted if k not in keys and k not in extra]
    if unknown:
        raise ConfigError(f"sweep {name}: rows={unknown} are not rows of {tab.title}; rows: {', '.join(keys)}")
    out = []
    for row in [*tab.rows, *(Row(k, k, "ours", "", {"preset": k}) for k in extra)]:
        if row.key not in wanted:
            continue
        s = row.settings
        row_stages = tuple(s.get("stages") or stages)
        row_preset = s.get("preset") or preset
        row_frames = int(s.get("frames") or frames)
        settings = {"stages": list(row_stages), "model_preset": row_preset, "frames": row_frames}
        out.append(SweepRow(row.key, row_stages, row_preset, row_frames, settings))
    return out


def model_presets() -> list[str]:
    return sorted(p.stem for p in (CONFIG_DIR / "models").glob("*.yaml"))


def stage_runs(rows: list[SweepRow], seeds: int) -> tuple[int, int]:
    """(stage runs with prefixes shared, stage runs if every row trained alone)."""
    shared = {(r.group(s), r.stages[:i + 1]) for r in rows for s in range(seeds) for i in range(len(r.stages))}
    return len(shared), sum(len(r.stages) for r in rows) * seeds
