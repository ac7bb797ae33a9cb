"""OmniPT stage 1's proxy task: visual grounding on BenSMOT (paper, "Group Relative Policy
Optimization": "We use the BenSMOT dataset as the training set in this stage and use the visual
grounding as the proxy task").

``omnipt_grounding``: one frame where a captioned person is visible, the person's instance caption
as the description, answered with that person's box in the OmniPT grammar (``<bbox>x,y,w,h</bbox>``
normalised by default). Stage 1's reward reads the answer's format, so one box per row suffices;
``omnipt_grounding_grpo`` (``vptracker.tasks.grpo``) moves it to ``solution``.
"""
from __future__ import annotations

import random

import numpy as np

from vptracker.prompts.texts import omnipt_grounding
from vptracker.tasks.base import Task, chat, register_task
from vptracker.tasks.omnipt_common import (
    BoxOptions,
    box_text,
    has_missing,
    task_coord,
    usable_mask,
    validate_boxes,
)


@register_task("omnipt_grounding")
class Grounding(Task):
    Options = BoxOptions

    def validate(self) -> None:
        validate_boxes(self)

    def index(self, sequences):
        out = []
        for seq in sequences:
            for track in seq.tracks:
                frames = np.flatnonzero(usable_mask(track, seq.width, seq.height))
                if track.caption and len(frames):
                    out.append((seq, track, frames.astype(np.int32)))
        if not out:
            raise ValueError(f"task {self.name}: no track has an instance caption and a visible box")
        return out

    def sample(self, index, rng: random.Random) -> dict | None:
        seq, track, frames = index[rng.randrange(len(index))]
        t = int(frames[rng.randrange(len(frames))])
        if has_missing(seq, [t]):
            return None
        box = box_text(track, t, seq, task_coord(self, seq), self.grammar)
        return {"messages": chat(omnipt_grounding(track.caption), box), "images": [seq.frames[t]]}
