"""The tracking side of each trackable task: its units, its tracker and its result files.

A task (:mod:`vptracker.tasks`) builds training rows and states its contract; how it is tracked
lives here, so that ``tasks/`` never imports ``infer/`` (imports run tasks -> infer). Adding a
trackable task: its file in ``tasks/`` with ``trackable = True`` and one registration below.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vptracker.infer.caption import CaptionTracker
from vptracker.infer.multi import OmniMOT, OmniReferring
from vptracker.infer.sot import OmniSOTTracker, VPTrackerSOTTracker
from vptracker.infer.units import (
    CAPTION_UNITS,
    crmot_units,
    per_sequence,
    rmot_units,
    write_caption,
    write_crmot,
    write_mot,
    write_rmot,
    write_sot,
)
from vptracker.registry import Registry
from vptracker.tasks import Task, get_task, trackable_tasks


@dataclass(frozen=True)
class Tracking:
    """``units`` lists what one tracker handles (and the files it writes), ``tracker`` makes the
    tracker of one unit from :class:`~vptracker.infer.common.TaskOptions`, ``write`` writes its
    result files, ``images_per_request`` is the most images one request carries (vLLM reserves
    memory for them). Units, resume and shards: :mod:`vptracker.infer.runner`.
    """

    units: Callable[[list], list]
    tracker: Callable[[Any, Any], Any]
    write: Callable[[Any, Any, Path], None]
    images_per_request: Callable[[Any], int]


def _frames(options) -> int:
    return int(options.frames_per_sample)


def _referring(unit, options):
    return OmniReferring(unit.key, unit.sequences, unit.language, options)


SIDES: Registry[Tracking] = Registry("tracking side")
SIDES.add("omnipt_sot", Tracking(per_sequence(".txt"), lambda unit, options: OmniSOTTracker(unit.sequences[0], options),
                                 write_sot, _frames))
# the template crop and the search frame
SIDES.add("vptracker_sot", Tracking(per_sequence(".txt"),
                                    lambda unit, options: VPTrackerSOTTracker(unit.sequences[0], options),
                                    write_sot, lambda options: 2))
SIDES.add("omnipt_mot", Tracking(per_sequence(".txt"), lambda unit, options: OmniMOT(unit.sequences[0], options),
                                 write_mot, _frames))
SIDES.add("omnipt_rmot", Tracking(rmot_units, _referring, write_rmot, _frames))
# at least two frames per view; CRTrack has up to 4 views
SIDES.add("omnipt_crmot", Tracking(crmot_units, _referring, write_crmot,
                                   lambda options: max(int(options.frames_per_sample), 8)))
SIDES.add("omnipt_caption", Tracking(CAPTION_UNITS, lambda unit, options: CaptionTracker(unit.sequences[0], options),
                                     write_caption, lambda options: int(options.caption_frames)))


def tracking(task: str | Task) -> Tracking:
    """The tracking side of ``task``; a training-only task refuses, naming the trackable ones."""
    task = get_task(task) if isinstance(task, str) else task
    if not task.trackable:
        raise ValueError(f"task {task.name} is training-only: it has no tracking side; tasks that track: "
                         f"{', '.join(trackable_tasks())}")
    return SIDES[task.name]
