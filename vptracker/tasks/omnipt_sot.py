"""OmniPT SOT and the location-prediction pretext: follow one object given its first-frame box.

``omnipt_sot`` (paper Fig. 2): "There are some images of a video: <image>... Track the object
located at <bbox> in the first image ..." answered with one ``<bbox>`` or ``<None>`` per image,
the first included. Any sequence with tracks is a source (SOT benchmarks, or one person of a MOT
video). ``pretext_location`` (mid-training) gives the first box and asks for the following images
only; with probability ``disappear_ratio`` it picks an object that leaves within the window, so the
model sees trajectories that end in ``<None>`` (the paper uses DanceTrack).

``prior_jitter`` (default 0, the paper's samples) moves and rescales the box the prompt gives by up
to that fraction of its size while the answer keeps the true boxes: at inference the prior is the
model's own last answer, and a model only ever shown exact priors learns to copy them (the
search-region jitter of Siamese trackers, for the same reason).
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from vptracker.boxes import render_box, render_trajectory
from vptracker.datasets.base import Sequence, Track
from vptracker.prompts.texts import omnipt_sot, pretext_location
from vptracker.tasks.base import Task, chat, register_task
from vptracker.tasks.omnipt_common import (
    PriorOptions,
    frame_paths,
    has_missing,
    omnipt_contract,
    prior_box,
    task_coord,
    trajectory,
    usable_mask,
    validate_prior,
)


@dataclass
class _Start:
    seq: Sequence
    track: Track
    starts: np.ndarray      # frames where the object is usable and a full window fits
    leaving: np.ndarray     # the subset whose window ends with the object gone


def _span(task) -> int:
    return (task.frames - 1) * task.stride


def track_starts(task, sequences: list[Sequence]) -> list[_Start]:
    out = []
    span = _span(task)
    for seq in sequences:
        n = len(seq)
        if n <= span:
            continue
        for track in seq.tracks:
            ok = usable_mask(track, seq.width, seq.height)
            starts = np.flatnonzero(ok[: n - span])
            if len(starts):
                leaving = starts[~ok[starts + span]]
                out.append(_Start(seq, track, starts.astype(np.int32), leaving.astype(np.int32)))
    if not out:
        raise ValueError(f"task {task.name}: no track is visible at the start of a {task.frames}-frame window")
    return out


@dataclass(frozen=True)
class LocationOptions(PriorOptions):
    disappear_ratio: float = 0.3


@register_task("omnipt_sot")
class OmniPTSOT(Task):
    Options = PriorOptions
    trackable = True

    def resolve_contract(self):
        return omnipt_contract(self, frames_per_sample=self.frames)

    def validate(self) -> None:
        validate_prior(self)

    def prior_text(self, entry, t: int, coord, rng: random.Random) -> str | None:
        box = prior_box(self, entry.track, t, entry.seq, coord, rng)
        return None if box is None else render_box(box, coord.decimals, self.grammar)

    def index(self, sequences):
        return track_starts(self, sequences)

    def _pick(self, entries, rng: random.Random, leaving: bool = False):
        entry = entries[rng.randrange(len(entries))]
        pool = entry.leaving if leaving else entry.starts
        t0 = int(pool[rng.randrange(len(pool))])
        frames = list(range(t0, t0 + _span(self) + 1, self.stride))
        return (None, None) if has_missing(entry.seq, frames) else (entry, frames)

    def sample(self, index, rng: random.Random) -> dict | None:
        entry, frames = self._pick(index, rng)
        if entry is None:
            return None
        coord = task_coord(self, entry.seq)
        first = self.prior_text(entry, frames[0], coord, rng)
        answer = render_trajectory(trajectory(entry.track, frames, entry.seq, coord), coord.decimals,
                                   self.grammar)
        return {"messages": chat(omnipt_sot(len(frames), first), answer),
                "images": frame_paths(entry.seq, frames)}


@register_task("pretext_location")
class LocationPrediction(OmniPTSOT):
    Options = LocationOptions
    trackable = False   # a mid-training pretext: its rows train no tracking loop
    serves = None

    def validate(self) -> None:
        super().validate()
        if not 0.0 <= self.disappear_ratio <= 1.0:
            raise ValueError(f"task {self.name}: option disappear_ratio={self.disappear_ratio}, expected 0..1")

    def index(self, sequences):
        entries = track_starts(self, sequences)
        return entries, [e for e in entries if len(e.leaving)]

    def sample(self, index, rng: random.Random) -> dict | None:
        entries, leavers = index
        leave = bool(leavers) and rng.random() < self.disappear_ratio
        entry, frames = self._pick(leavers if leave else entries, rng, leaving=leave)
        if entry is None:
            return None
        coord = task_coord(self, entry.seq)
        first = self.prior_text(entry, frames[0], coord, rng)
        answer = render_trajectory(trajectory(entry.track, frames[1:], entry.seq, coord), coord.decimals,
                                   self.grammar)
        return {"messages": chat(pretext_location(len(frames), first), answer),
                "images": frame_paths(entry.seq, frames)}
