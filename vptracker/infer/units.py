"""Units of tracking work and their result files, per task kind (the tasks' tracking sides use them).

A *unit* is what one tracker handles and what one set of result files holds: a sequence for SOT,
MOT, RMOT (one expression over one video) and captions, a (scene, description) pair over all its
views for CRMOT.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vptracker.datasets.base import Sequence
from vptracker.infer.outputs import CAPTION_DIR, atomic_write_text, crmot_text, json_text, mot_text, path_part, sot_text


@dataclass
class Unit:
    key: str
    sequences: list[Sequence]
    outputs: list[str]                 # paths relative to the output directory
    language: str | None = None

    @property
    def frames(self) -> int:
        return sum(len(s.frames) for s in self.sequences)


def per_sequence(suffix: str, folder: str = "") -> Callable[[list[Sequence]], list[Unit]]:
    """One unit per sequence, writing ``<folder>/<seq><suffix>``."""
    prefix = f"{folder}/" if folder else ""

    def units(sequences):
        return [Unit(s.name, [s], [f"{prefix}{path_part(s.name)}{suffix}"]) for s in sequences]
    return units


def rmot_units(sequences: list[Sequence]) -> list[Unit]:
    """One unit per (video, expression): ``<video>/<expression>/predict.txt``."""
    out = []
    for s in sequences:
        video = str(s.scene or s.name)
        expression = str(s.expression or s.name)
        rel = f"{path_part(video)}/predict.txt" if expression == video else \
            f"{path_part(video)}/{path_part(expression)}/predict.txt"
        out.append(Unit(s.name, [s], [rel], s.language))
    return out


def crmot_units(sequences: list[Sequence]) -> list[Unit]:
    """One unit per (scene, description) over all its views: ``<scene>_<description>/<view>.txt``."""
    groups: dict[tuple[str, str], list[Sequence]] = {}
    for s in sequences:
        if not s.language:
            raise ValueError(f"{s.dataset}/{s.name}: CRMOT needs a description (Sequence.language)")
        scene = str(s.scene or s.name)
        groups.setdefault((scene, s.language.strip()), []).append(s)
    units = []
    for (scene, description), views in sorted(groups.items()):
        views = sorted(views, key=lambda v: str(v.view or v.name))
        key = f"{scene}_{description}"
        units.append(Unit(key, views, [f"{path_part(key)}/{path_part(str(v.view or v.name))}.txt" for v in views],
                          description))
    return units


def write_sot(tracker, unit: Unit, out_dir: Path) -> None:
    atomic_write_text(out_dir / unit.outputs[0], sot_text(tracker.result()))


def write_mot(tracker, unit: Unit, out_dir: Path) -> None:
    atomic_write_text(out_dir / unit.outputs[0], mot_text(tracker.rows(0)))


def write_rmot(tracker, unit: Unit, out_dir: Path) -> None:
    atomic_write_text(out_dir / unit.outputs[0], mot_text(tracker.rows(0, image_index=True)))


def write_crmot(tracker, unit: Unit, out_dir: Path) -> None:
    for v, rel in enumerate(unit.outputs):
        atomic_write_text(out_dir / rel, crmot_text(tracker.rows(v)))


def write_caption(tracker, unit: Unit, out_dir: Path) -> None:
    atomic_write_text(out_dir / unit.outputs[0], json_text(tracker.result(), indent=1) + "\n")


CAPTION_UNITS = per_sequence(".json", CAPTION_DIR)
