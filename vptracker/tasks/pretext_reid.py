"""Person re-identification pretext (mid-training): pick the anchor's match among candidates.

The anchor is a person's crop in one frame; the candidates are the same person in another frame
(at least ``min_gap`` frames away when the track allows) and ``negatives`` other people, half from
the same video when it has enough and the rest from other videos, in random order. Crops are not
written to disk: the row lists the source frames in ``images`` and one ``[x1, y1, x2, y2]`` per
image in ``crops``, which the ms-swift plugin cuts at load time. Answer: "Candidate k".
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from vptracker.boxes import clip_xyxy, xywh_to_xyxy
from vptracker.prompts.texts import pretext_reid, reid_answer
from vptracker.tasks.base import Task, chat, register_task
from vptracker.tasks.omnipt_common import usable_mask


@dataclass(frozen=True)
class ReIDOptions:
    negatives: int = 3     # candidates besides the positive
    min_gap: int = 10      # frames between the anchor and the positive, when the track allows
    min_size: float = 8    # pixels: smaller people are not used


@register_task("pretext_reid")
class ReID(Task):
    Options = ReIDOptions

    def validate(self) -> None:
        if self.negatives < 1:
            raise ValueError(f"task {self.name}: option negatives={self.negatives}, expected >= 1")

    def index(self, sequences):
        people = []
        for seq in sequences:
            for track in seq.tracks:
                mask = usable_mask(track, seq.width, seq.height)
                mask &= (track.boxes[:, 2] >= self.min_size) & (track.boxes[:, 3] >= self.min_size)
                frames = np.flatnonzero(mask).astype(np.int32)
                if len(frames) >= 2:
                    people.append((seq, track, frames))
        if len(people) < self.negatives + 1:
            raise ValueError(f"task {self.name}: fewer than {self.negatives + 1} people to draw from")
        by_seq: dict[int, list[int]] = {}
        for i, (seq, _, _) in enumerate(people):
            by_seq.setdefault(id(seq), []).append(i)
        return people, by_seq

    def _crop(self, person, t):
        seq, track, _ = person
        return [int(v) for v in clip_xyxy(xywh_to_xyxy(track.boxes[t].tolist()), seq.width, seq.height)]

    def sample(self, index, rng: random.Random) -> dict | None:
        people, by_seq = index
        a = rng.randrange(len(people))
        seq, _, frames = people[a]
        t_anchor = int(frames[rng.randrange(len(frames))])
        far = frames[np.abs(frames - t_anchor) >= self.min_gap]
        pool = far if len(far) else frames[frames != t_anchor]
        t_pos = int(pool[rng.randrange(len(pool))])
        same = [i for i in by_seq[id(seq)] if i != a]
        k = self.negatives
        negatives = rng.sample(same, min(len(same), (k + 1) // 2))
        for _ in range(20 * k):  # the rest from all people: mostly other videos
            if len(negatives) == k:
                break
            pick = rng.randrange(len(people))
            if pick != a and pick not in negatives:
                negatives.append(pick)
        if len(negatives) < k:
            return None
        candidates = [(a, t_pos)] + [(i, int(people[i][2][rng.randrange(len(people[i][2]))])) for i in negatives]
        rng.shuffle(candidates)
        answer = next(j for j, (i, t) in enumerate(candidates) if i == a and t == t_pos)
        images = [seq.frames[t_anchor]] + [people[i][0].frames[t] for i, t in candidates]
        crops = [self._crop(people[a], t_anchor)] + [self._crop(people[i], t) for i, t in candidates]
        return {"messages": chat(pretext_reid(len(candidates)), reid_answer(answer)), "images": images,
                "crops": crops}
