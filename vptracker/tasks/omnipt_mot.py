"""OmniPT MOT (three queries in one conversation) and the detection pretext.

``omnipt_mot`` (paper Fig. 4): one window of ``frames`` images and three turns:
1. where are the objects in the first frame -> their boxes, in random order;
2. track these objects (the first-frame boxes are given, in that order; true ones, or moved under
   ``prior_jitter``, see :class:`PriorOptions`) -> one trajectory per object, same order, true boxes;
3. are there objects added midway -> the trajectories of objects absent from the first frame
   (or "There are no objects.").
Windows whose first frame has no object are redrawn. ``max_objects`` caps each list (answers
of dense scenes otherwise exceed the 2,048-token output budget).

``pretext_detection``: one random frame, every object's box (sorted left to right).
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from vptracker.boxes import join_trajectories, render_box, render_trajectory_array
from vptracker.datasets.base import Sequence
from vptracker.prompts.texts import (
    no_objects_answer,
    omnipt_mot_first,
    omnipt_mot_new,
    omnipt_mot_track,
    pretext_detection,
)
from vptracker.tasks.base import Task, register_task
from vptracker.tasks.omnipt_common import (
    BoxOptions,
    PriorOptions,
    frame_paths,
    has_missing,
    model_box,
    model_box_array,
    omnipt_contract,
    prior_box,
    task_coord,
    usable_mask,
    validate_boxes,
    validate_prior,
    window,
)


@dataclass
class _MotEntry:
    seq: Sequence
    present: np.ndarray   # (n_tracks, T) usable masks


def mot_index(task, sequences: list[Sequence], min_frames: int) -> list[_MotEntry]:
    out = [_MotEntry(s, np.stack([usable_mask(t, s.width, s.height) for t in s.tracks]))
           for s in sequences if s.tracks and len(s) >= min_frames]
    if not out:
        raise ValueError(f"task {task.name}: no sequence with tracks and at least {min_frames} frames")
    return out


def draw_window(task, index: list[_MotEntry], rng: random.Random):
    """A random entry and a window of ``task.frames`` frames in it, or ``(None, None)`` to redraw."""
    entry = index[rng.randrange(len(index))]
    frames = window(len(entry.seq), task.frames, task.stride, rng)
    if frames is None or has_missing(entry.seq, frames):
        return None, None
    return entry, frames


def _boxes_text(boxes, decimals: int, grammar: str) -> str:
    return "".join(render_box(b, decimals, grammar) for b in boxes)


@dataclass(frozen=True)
class MOTOptions(PriorOptions):
    # 5: the most whole 16-frame trajectories that always fit the paper's 2,048 output tokens, counted with
    # the real Qwen tokenizer: a 0-1000 <bbox> is 17-21 tokens (21 with four 3-digit values), ~347 tokens per
    # object and answer at worst (6 fit with typical boxes, 7 never). Other frame counts:
    # lengths.trajectory_objects_within (39 at 2 frames, 3 at 32). Checked by tests/test_lengths.py.
    max_objects: int = 5    # objects per query answer


@register_task("omnipt_mot")
class OmniPTMOT(Task):
    Options = MOTOptions
    trackable = True

    def resolve_contract(self):
        return omnipt_contract(self, frames_per_sample=self.frames)

    def validate(self) -> None:
        validate_prior(self)
        if self.max_objects < 1:
            raise ValueError(f"task {self.name}: option max_objects={self.max_objects}, expected >= 1")

    def index(self, sequences):
        return mot_index(self, sequences, self.frames)

    def sample(self, index, rng: random.Random) -> dict | None:
        entry, frames = draw_window(self, index, rng)
        if entry is None:
            return None
        seq = entry.seq
        present = entry.present[:, frames]
        first = np.flatnonzero(present[:, 0]).tolist()
        if not first:
            return None
        new = np.flatnonzero(~present[:, 0] & present[:, 1:].any(axis=1)).tolist()
        rng.shuffle(first)
        first, new = first[: self.max_objects], new[: self.max_objects]
        coord = task_coord(self, seq)
        d, g = coord.decimals, self.grammar
        boxes, present = model_box_array(seq, first + new, frames, coord)   # every box of the row at once
        trajectories = render_trajectory_array(boxes, present, d, g)
        # the first frame's boxes of the objects in it, one after the other: a "trajectory" across objects
        first_boxes = render_trajectory_array(boxes[None, :len(first), 0], present[None, :len(first), 0], d, g)[0]
        # the track query's given boxes; the first answer keeps the true ones (it teaches detection)
        given = (_boxes_text([prior_box(self, seq.tracks[i], frames[0], seq, coord, rng) for i in first], d, g)
                 if self.prior_jitter else first_boxes)
        new_answer = join_trajectories(trajectories[len(first):]) if new else no_objects_answer()
        messages = [
            {"role": "user", "content": omnipt_mot_first(len(frames))},
            {"role": "assistant", "content": first_boxes},
            {"role": "user", "content": omnipt_mot_track(given)},
            {"role": "assistant", "content": join_trajectories(trajectories[:len(first)])},
            {"role": "user", "content": omnipt_mot_new()},
            {"role": "assistant", "content": new_answer},
        ]
        return {"messages": messages, "images": frame_paths(seq, frames)}


@register_task("pretext_detection")
class Detection(Task):
    Options = BoxOptions

    def validate(self) -> None:
        validate_boxes(self)

    def index(self, sequences):
        return mot_index(self, sequences, 1)

    def sample(self, index, rng: random.Random) -> dict | None:
        entry = index[rng.randrange(len(index))]
        seq = entry.seq
        t = rng.randrange(len(seq))
        if has_missing(seq, [t]):
            return None
        coord = task_coord(self, seq)
        boxes = sorted(model_box(seq.tracks[i], t, seq, coord) for i in np.flatnonzero(entry.present[:, t]))
        answer = _boxes_text(boxes, coord.decimals, self.grammar) if boxes else no_objects_answer()
        return {"messages": [{"role": "user", "content": pretext_detection()},
                             {"role": "assistant", "content": answer}],
                "images": [seq.frames[t]]}
