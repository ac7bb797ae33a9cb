"""OmniPT's semantic tasks (BenSMOT): one video caption per sequence and one caption per person.

The video caption sees ``caption_frames`` frames spread evenly over the sequence. An instance
caption sees up to ``caption_frames`` frames spread over the span where the person is tracked,
starting on their first frame (the one rule the training rows use too:
:func:`vptracker.tasks.contract.caption_frames`), whose box the query gives ("There is a people at <bbox> in the first
image"). The persons are the ground-truth tracks, or with ``tracks_from`` the tracks an
``omnipt_mot`` run wrote (``<dir>/<seq>.txt``): SMOT scores a caption through the predicted
track it describes.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from vptracker.boxes import render_box, xywh_to_xyxy
from vptracker.datasets.base import Sequence, Track, tracks_from_rows
from vptracker.infer.common import SequenceTracker, TaskOptions, frame_box, frame_number
from vptracker.infer.engine import Request
from vptracker.infer.visualize import read_prediction
from vptracker.prompts.texts import omnipt_instance_caption, omnipt_video_caption
from vptracker.tasks.contract import caption_frames
from vptracker.tasks.omnipt_common import usable_mask

logger = logging.getLogger(__name__)


def predicted_tracks(seq: Sequence, results_dir: str | Path) -> list[Track]:
    """The tracks of a MOTChallenge result file ``<results_dir>/<seq>.txt`` on the sequence's frames."""
    path = Path(results_dir) / f"{seq.name}.txt"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no tracking result to caption (run omnipt_mot into {results_dir} first)")
    kind, rows = read_prediction(path)
    if kind != "mot":
        raise ValueError(f"{path}: expected MOTChallenge rows frame,id,x,y,w,h,...")
    index = {frame_number(seq, t): t for t in range(len(seq.frames))}
    t = np.array([index.get(int(frame), -1) for frame in rows[:, 0]], dtype=np.int64)
    inside = t >= 0
    if not inside.all():
        logger.warning("%s: %d of %d rows name a frame that is not in sequence %s; left out", path,
                       int((~inside).sum()), len(rows), seq.name)
    return tracks_from_rows(t[inside], rows[inside, 1].astype(np.int64), rows[inside, 2:6], len(seq.frames))


class CaptionTracker(SequenceTracker):
    def __init__(self, seq: Sequence, options: TaskOptions):
        super().__init__(seq, options)
        self.video_caption: str | None = None
        self.instance_captions: dict[int, str] = {}
        self._queue: list[tuple[str, int | None, Request]] = [("video", None, self._video_request())]
        tracks = seq.tracks if options.tracks_from is None else predicted_tracks(seq, options.tracks_from)
        for track in tracks:
            request = self._instance_request(track)
            if request is not None:
                self._queue.append(("instance", int(track.id), request))

    def _video_request(self) -> Request:
        idx = caption_frames(0, len(self.seq.frames) - 1, self.options.caption_frames)
        return Request.user(omnipt_video_caption(len(idx)), [str(self.seq.frames[i]) for i in idx],
                            frames=idx, query="video_caption")

    def _instance_request(self, track) -> Request | None:
        visible = np.flatnonzero(usable_mask(track, self.seq.width, self.seq.height))   # as the training rows
        if not len(visible):
            return None
        idx = caption_frames(int(visible[0]), int(visible[-1]), self.options.caption_frames)
        first = frame_box(xywh_to_xyxy(track.boxes[idx[0]]), self.seq.width, self.seq.height)  # in the image
        box = render_box(self.cmap.to_model(first), self.cmap.decimals, self.options.grammar)
        return Request.user(omnipt_instance_caption(len(idx), box), [str(self.seq.frames[i]) for i in idx],
                            frames=idx, query="instance_caption", track_id=int(track.id))

    def _next(self) -> Request | None:
        return self._queue[0][2] if self._queue else None

    def _consume(self, request: Request, answer: str) -> None:
        kind, track_id, _ = self._queue.pop(0)
        text = answer.strip()
        if kind == "video":
            self.video_caption = text
        else:
            self.instance_captions[track_id] = text
        if not self._queue:
            self.frames_done = len(self.seq.frames)

    def result(self) -> dict:
        return {"sequence": self.seq.name, "video_caption": self.video_caption,
                "instance_captions": {str(k): v for k, v in sorted(self.instance_captions.items())}}
