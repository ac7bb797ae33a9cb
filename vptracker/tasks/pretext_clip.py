"""CLIP-style image-text pairs on SYNTH-PEDES for the contrastive mid-training stage.

Rows use ms-swift's embedding format (``--task_type embedding --loss_type infonce``): the anchor
``messages`` hold the person image followed by the ``<CLS>`` token, ``positive_messages`` the
caption followed by ``<CLS>``; the other rows of a batch are the negatives, which makes the
batch's similarity matrix the CLIP objective. ``caption: random`` draws one of the entry's
captions per row (``first`` keeps the first).
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from vptracker.prompts.texts import clip_image_query, clip_text_query
from vptracker.tasks.base import Task, register_task


@dataclass(frozen=True)
class ClipOptions:
    caption: str = "first"


@register_task("pretext_clip")
class ClipPairs(Task):
    Options = ClipOptions

    def validate(self) -> None:
        if self.caption not in ("first", "random"):
            raise ValueError(f"task {self.name}: option caption={self.caption!r}, expected 'first' or 'random'")

    def index(self, sequences):
        out = [s for s in sequences if s.caption and s.frames]
        if not out:
            raise ValueError(f"task {self.name}: no image with a caption")
        return out

    def row(self, seq, rng: random.Random | None) -> dict:
        captions = seq.captions or [seq.caption]
        caption = captions[rng.randrange(len(captions))] if rng is not None and self.caption == "random" else captions[0]
        return {"messages": [{"role": "user", "content": clip_image_query()}], "images": [seq.frames[0]],
                "positive_messages": [[{"role": "user", "content": clip_text_query(caption)}]]}

    def sample(self, index, rng: random.Random) -> dict:
        return self.row(index[rng.randrange(len(index))], rng)

    def enumerate(self, index):
        rng = random.Random(0)
        for seq in index:
            yield self.row(seq, rng)
