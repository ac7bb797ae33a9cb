"""OmniPT referring MOT (RMOT, Refer-KITTI-V2) and cross-view referring MOT (CRMOT, CRTrack).

``omnipt_rmot``: the SOT query with the first-frame box replaced by the expression; the answer
holds one trajectory per referred object seen in the window (``<None>`` when none is).

``omnipt_crmot``: the views of one (scene, description) share the sample: the frame budget is
divided evenly among the views (``frames // n_views`` each, the same time steps in every view),
the images are listed view after view, and the answer has one trajectory per person over all
images, so a person's id is the same across views. Every view gets at least one frame: with fewer
frames than views (``frames=2`` of Table 7 on CRTrack's three views) a sample holds one frame per
view, ``n_views`` images, since a cross-view sample without every view is not the task.
"""
from __future__ import annotations

import random
from collections import defaultdict

import numpy as np

from vptracker.boxes import render_trajectories
from vptracker.prompts.texts import omnipt_crmot, omnipt_rmot
from vptracker.tasks.base import Task, chat, register_task
from vptracker.tasks.omnipt_common import (
    OmniPTOptions,
    frame_paths,
    has_missing,
    model_box,
    omnipt_contract,
    task_coord,
    usable_mask,
    validate_common,
    window,
)
from vptracker.tasks.omnipt_mot import draw_window, mot_index


@register_task("omnipt_rmot")
class OmniPTRMOT(Task):
    Options = OmniPTOptions
    trackable = True

    def resolve_contract(self):
        return omnipt_contract(self, frames_per_sample=self.frames)

    def validate(self) -> None:
        validate_common(self)

    def index(self, sequences):
        usable = [s for s in sequences if s.language]
        if not usable:
            raise ValueError(f"task {self.name}: no sequence has a referring expression")
        return mot_index(self, usable, self.frames)

    def sample(self, index, rng: random.Random) -> dict | None:
        entry, frames = draw_window(self, index, rng)
        if entry is None:
            return None
        seq = entry.seq
        coord = task_coord(self, seq)
        seen = np.flatnonzero(entry.present[:, frames].any(axis=1)).tolist()
        trajectories = [[model_box(seq.tracks[i], t, seq, coord) for t in frames] for i in seen]
        return {"messages": chat(omnipt_rmot(len(frames), seq.language),
                                 render_trajectories(trajectories, coord.decimals, grammar=self.grammar)),
                "images": frame_paths(seq, frames)}


def frames_per_view(frames: int, n_views: int) -> int:
    """The frame budget split evenly among the views, at least one frame each."""
    return max(1, frames // n_views)


@register_task("omnipt_crmot")
class OmniPTCRMOT(Task):
    Options = OmniPTOptions
    trackable = True

    def resolve_contract(self):
        return omnipt_contract(self, frames_per_sample=self.frames)

    def validate(self) -> None:
        validate_common(self)

    def index(self, sequences):
        groups = defaultdict(list)
        for s in sequences:
            if s.language and s.view:
                groups[(s.scene, s.language)].append(s)
        out = []
        for key in sorted(groups):
            views = sorted(groups[key], key=lambda s: s.view)
            if min(len(v) for v in views) >= frames_per_view(self.frames, len(views)):
                out.append(views)
        if not out:
            raise ValueError(f"task {self.name}: no (scene, description) with views long enough for "
                             f"{self.frames} frames split among them")
        return out

    def sample(self, index, rng: random.Random) -> dict | None:
        views = index[rng.randrange(len(index))]
        per_view = frames_per_view(self.frames, len(views))
        frames = window(min(len(v) for v in views), per_view, self.stride, rng) if per_view > 1 else \
            [rng.randrange(min(len(v) for v in views))]
        if frames is None or any(has_missing(v, frames) for v in views):
            return None
        ids = sorted({t.id for v in views for t in v.tracks if usable_mask(t, v.width, v.height)[frames].any()})
        trajectories = []
        for tid in ids:
            traj = []
            for v in views:
                track = next((t for t in v.tracks if t.id == tid), None)
                coord = task_coord(self, v)
                traj += [None if track is None else model_box(track, t, v, coord) for t in frames]
            trajectories.append(traj)
        decimals = task_coord(self, views[0]).decimals
        images = [p for v in views for p in frame_paths(v, frames)]
        return {"messages": chat(omnipt_crmot([len(frames)] * len(views), views[0].language),
                                 render_trajectories(trajectories, decimals, grammar=self.grammar)),
                "images": images}
