"""OmniPT semantic tasks on BenSMOT: video captions and instance captions.

``omnipt_video_caption``: ``frames`` images spread evenly over the whole video (32 by default, as
the paper uses for semantic tasks), "Describe this video.", answered with the video caption.
``omnipt_instance_caption``: images spread from the person's first visible frame to the end of
the video; the first image carries the person's box; answered with that person's caption. Both
enumerate every unit once (``samples: all``) or draw random units.
"""
from __future__ import annotations

import random

import numpy as np

from vptracker.prompts import omnipt_instance_caption, omnipt_video_caption
from vptracker.tasks.base import Task, chat, register_task
from vptracker.tasks.omnipt_common import (
    OMNIPT_DEFAULTS,
    box_text,
    frame_paths,
    spread,
    task_coord,
    usable_mask,
    validate_common,
)


@register_task("omnipt_video_caption")
class VideoCaption(Task):
    defaults = {**OMNIPT_DEFAULTS, "frames": 32}

    def validate(self) -> None:
        validate_common(self)

    def index(self, sequences):
        out = [s for s in sequences if s.caption]
        if not out:
            raise ValueError(f"task {self.name}: no sequence has a video caption")
        return out

    def row(self, seq) -> dict:
        frames = spread(0, len(seq) - 1, int(self.frames))
        return {"messages": chat(omnipt_video_caption(len(frames)), seq.caption), "images": frame_paths(seq, frames)}

    def sample(self, index, rng: random.Random) -> dict:
        return self.row(index[rng.randrange(len(index))])

    def enumerate(self, index):
        for seq in index:
            yield self.row(seq)


@register_task("omnipt_instance_caption")
class InstanceCaption(VideoCaption):
    def index(self, sequences):
        out = []
        for seq in sequences:
            for track in seq.tracks:
                ok = np.flatnonzero(usable_mask(track, seq.width, seq.height))
                if track.caption and len(ok):
                    out.append((seq, track, int(ok[0])))
        if not out:
            raise ValueError(f"task {self.name}: no track has an instance caption")
        return out

    def row(self, unit) -> dict:
        seq, track, first = unit
        frames = spread(first, len(seq) - 1, int(self.frames))
        box = box_text(track, first, seq, task_coord(self, seq), self.grammar)
        return {"messages": chat(omnipt_instance_caption(len(frames), box), track.caption),
                "images": frame_paths(seq, frames)}
