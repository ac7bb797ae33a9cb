"""OmniPT semantic tasks on BenSMOT: video captions and instance captions.

``omnipt_video_caption``: ``frames`` images spread evenly over the whole video (32 by default, as
the paper uses for semantic tasks), "Describe this video.", answered with the video caption.
``omnipt_instance_caption``: images spread over the person's span (first to last frame where they
are visible in the image); the first image carries the person's box; answered with that person's
caption. ``omnipt_caption`` writes both kinds, one video caption and one caption per person of each
video, and is the task the caption tracker runs (``vptracker infer --task omnipt_caption``). The
frames are picked by :func:`vptracker.tasks.contract.caption_frames`, the rule the tracker uses.
Each enumerates every unit once (``samples: all``) or draws random units.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from vptracker.prompts.texts import omnipt_instance_caption, omnipt_video_caption
from vptracker.tasks.base import Task, chat, register_task
from vptracker.tasks.contract import caption_frames
from vptracker.tasks.omnipt_common import (
    OmniPTOptions,
    box_text,
    frame_paths,
    omnipt_contract,
    task_coord,
    usable_mask,
    validate_common,
)


@dataclass(frozen=True)
class CaptionOptions(OmniPTOptions):
    frames: int = 32   # the paper's frames for the semantic tasks


class _Captions(Task):
    Options = CaptionOptions
    serves = "omnipt_caption"

    def validate(self) -> None:
        validate_common(self)

    def resolve_contract(self):
        return omnipt_contract(self, caption_frames=self.frames)

    def video_units(self, sequences) -> list:
        return [("video", s) for s in sequences if s.caption]

    def instance_units(self, sequences) -> list:
        out = []
        for seq in sequences:
            for track in seq.tracks:
                ok = np.flatnonzero(usable_mask(track, seq.width, seq.height))
                if track.caption and len(ok):
                    out.append(("instance", (seq, track, int(ok[0]), int(ok[-1]))))
        return out

    def row(self, unit) -> dict:
        kind, item = unit
        if kind == "video":
            frames = caption_frames(0, len(item) - 1, self.frames)
            return {"messages": chat(omnipt_video_caption(len(frames)), item.caption),
                    "images": frame_paths(item, frames)}
        seq, track, first, last = item
        frames = caption_frames(first, last, self.frames)
        box = box_text(track, first, seq, task_coord(self, seq), self.grammar)
        return {"messages": chat(omnipt_instance_caption(len(frames), box), track.caption),
                "images": frame_paths(seq, frames)}

    def sample(self, index, rng: random.Random) -> dict:
        return self.row(index[rng.randrange(len(index))])

    def enumerate(self, index):
        for unit in index:
            yield self.row(unit)


@register_task("omnipt_video_caption")
class VideoCaption(_Captions):
    def index(self, sequences):
        out = self.video_units(sequences)
        if not out:
            raise ValueError(f"task {self.name}: no sequence has a video caption")
        return out


@register_task("omnipt_instance_caption")
class InstanceCaption(_Captions):
    def index(self, sequences):
        out = self.instance_units(sequences)
        if not out:
            raise ValueError(f"task {self.name}: no track has an instance caption")
        return out


@register_task("omnipt_caption")
class Captions(_Captions):
    trackable = True

    def index(self, sequences):
        out = []
        for seq in sequences:   # per video: its caption, then its persons', as the tracker asks them
            out += self.video_units([seq]) + self.instance_units([seq])
        if not out:
            raise ValueError(f"task {self.name}: no sequence has a video or instance caption")
        return out
