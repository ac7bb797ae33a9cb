"""OmniPT's multi-object loops (MOT, RMOT, CRMOT) as per-sequence state machines.

Each round covers ``frames_per_sample`` images (divided evenly among views for CRMOT) and starts on
the previous round's last frame, whose results are the round's prior (paper, "Inference").

* MOT: one dialogue per round with the three training queries: where are the objects in the first
  frame, track these objects (their first-frame boxes given, one trajectory each, in order), and
  are there objects added midway. From the second round on, the first answer is the prior itself
  (the tracks alive on the shared frame, written into the dialogue as the assistant's turn), so
  ids stay the same across rounds and only new objects get new ids.
* RMOT / CRMOT: the query carries a description, not boxes, so the prior enters by association:
  a trajectory whose box on the shared frame overlaps a track of the previous round (IoU >=
  ``match_iou``, summed over views, greedy) continues that track's id; the others get new ids.
  In CRMOT trajectory ``i`` is the same person in every view, so ids are shared across views.
"""
from __future__ import annotations

from vptracker.boxes import Box, iou_xyxy, parse_trajectories, parse_trajectory, render_trajectory
from vptracker.datasets.base import Sequence
from vptracker.infer.common import TaskOptions, answer_box, frame_number, windows
from vptracker.infer.engine import Request
from vptracker.infer.loop import TrackerBase
from vptracker.prompts import omnipt_crmot, omnipt_mot_first, omnipt_mot_new, omnipt_mot_track, omnipt_rmot

DUPLICATE_IOU = 0.7  # a "new" object this close to a known track on the same frame is that track


def _rounds(n_frames: int, per_window: int) -> list[tuple[int, int]]:
    return windows(n_frames, per_window) if n_frames > 1 else [(0, 1)]


class MultiTracker(TrackerBase):
    """Results per view as ``{frame_index: {track_id: x1,y1,x2,y2}}``; ids start at 1."""

    def __init__(self, name: str, views: list[Sequence], options: TaskOptions):
        super().__init__(name)
        if not views or any(len(v.frames) == 0 for v in views):
            raise ValueError(f"{name}: every view needs at least one frame")
        self.views = views
        self.options = options
        self.cmaps = [options.coord_map(v.width, v.height) for v in views]
        self.results: list[dict[int, dict[int, Box]]] = [{} for _ in views]
        self._next_id = 1

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    def _record(self, view: int, frame: int, track_id: int, box: Box | None) -> None:
        if box is not None:
            self.results[view].setdefault(frame, {}).setdefault(track_id, box)

    def rows(self, view: int = 0, image_index: bool = False) -> list[tuple[int, int, Box]]:
        """``(frame number, id, x1,y1,x2,y2)`` sorted by frame then id.

        ``image_index``: number frames as the image file's index + 1 (Refer-KITTI's 0-based files,
        the RMOT evaluation's convention) instead of the file number itself.
        """
        seq = self.views[view]
        shift = 1 if image_index and seq.frame_ids is not None else 0
        return [(frame_number(seq, f) + shift, tid, box) for f in sorted(self.results[view])
                for tid, box in sorted(self.results[view][f].items())]

    def _model(self, view: int, box: Box):
        return self.cmaps[view].to_model(box)


class OmniMOT(MultiTracker):
    """MOT (and SMOT tracking): the three-query dialogue per round."""

    def __init__(self, seq: Sequence, options: TaskOptions):
        super().__init__(seq.name, [seq], options)
        self.seq = seq
        self._rounds = _rounds(len(seq.frames), options.frames_per_sample)
        self._round = 0
        self._phase = "detect"
        self._messages: list[dict] = []
        self._priors: list[tuple[int, Box]] = []

    def _window(self):
        start, end = self._rounds[self._round]
        return start, end, [str(p) for p in self.seq.frames[start:end]]

    def _prior_text(self) -> str:
        return render_trajectory([self._model(0, b) for _, b in self._priors], self.cmaps[0].decimals,
                                 self.options.grammar)

    def _next(self) -> Request | None:
        if self._round >= len(self._rounds):
            return None
        start, end, paths = self._window()
        first = {"role": "user", "content": omnipt_mot_first(end - start)}
        if self._phase == "detect":
            if not self._priors:
                return Request([first], paths, {"frames": [start, end], "query": "detect"})
            # later rounds: the prior answers the first query
            self._messages = [first, {"role": "assistant", "content": self._prior_text()}]
            self._phase = "track"
        if self._phase == "track":
            if not self._priors:
                self._phase = "new"
            else:
                ask = {"role": "user", "content": omnipt_mot_track(self._prior_text())}
                return Request(self._messages + [ask], paths, {"frames": [start, end], "query": "track"})
        ask = {"role": "user", "content": omnipt_mot_new()}
        return Request(self._messages + [ask], paths, {"frames": [start, end], "query": "new"})

    def _consume(self, request: Request, answer: str) -> None:
        start, end, _ = self._window()
        n = end - start
        self._messages = request.messages + [{"role": "assistant", "content": answer}]
        if self._phase == "detect":
            for parsed in parse_trajectory(answer):
                box = answer_box(parsed.box, self.cmaps[0])
                if box is not None:
                    track_id = self._new_id()
                    self._priors.append((track_id, box))
                    self._record(0, start, track_id, box)
            self._phase = "track"
        elif self._phase == "track":
            trajectories = parse_trajectories(answer)
            for i, (track_id, _) in enumerate(self._priors):
                traj = trajectories[i] if i < len(trajectories) else []
                for j in range(1, min(n, len(traj))):
                    self._record(0, start + j, track_id, answer_box(traj[j].box, self.cmaps[0]))
            self._phase = "new"
        else:
            for traj in parse_trajectories(answer):
                boxes = {start + j: answer_box(p.box, self.cmaps[0]) for j, p in enumerate(traj[:n])}
                boxes = {f: b for f, b in boxes.items() if b is not None}
                if not boxes or self._duplicate(boxes):
                    continue
                track_id = self._new_id()
                for frame, box in boxes.items():
                    self._record(0, frame, track_id, box)
            self._end_round(end)

    def _duplicate(self, boxes: dict[int, Box]) -> bool:
        frame = min(boxes)
        return any(iou_xyxy(boxes[frame], known) > DUPLICATE_IOU for known in self.results[0].get(frame, {}).values())

    def _end_round(self, end: int) -> None:
        last = end - 1
        self._priors = sorted(self.results[0].get(last, {}).items())
        self.frames_done = end
        self._round += 1
        self._phase = "detect"
        self._messages = []


class OmniReferring(MultiTracker):
    """RMOT (one view) and CRMOT (several views of one scene, one description)."""

    def __init__(self, name: str, views: list[Sequence], description: str, options: TaskOptions):
        super().__init__(name, views, options)
        self.description = (description or "").strip()
        self.n_frames = min(len(v.frames) for v in views)
        per_view = max(2, options.frames_per_sample // len(views))
        self._rounds = _rounds(self.n_frames, per_view)
        self._round = 0

    def _next(self) -> Request | None:
        if self._round >= len(self._rounds):
            return None
        start, end = self._rounds[self._round]
        n = end - start
        paths = [str(p) for v in self.views for p in v.frames[start:end]]
        if len(self.views) == 1:
            text = omnipt_rmot(n, self.description)
        else:
            text = omnipt_crmot([n] * len(self.views), self.description)
        return Request.user(text, paths, frames=[start, end], views=[v.view or v.name for v in self.views])

    def _consume(self, request: Request, answer: str) -> None:
        start, end = self._rounds[self._round]
        n = end - start
        candidates = []
        for traj in parse_trajectories(answer):
            per_view = []
            for v in range(len(self.views)):
                chunk = traj[v * n:(v + 1) * n]
                per_view.append([answer_box(p.box, self.cmaps[v]) for p in chunk] + [None] * (n - len(chunk)))
            if any(b is not None for boxes in per_view for b in boxes):
                candidates.append(per_view)
        ids = self._associate(candidates, start) if self._round > 0 else [None] * len(candidates)
        for per_view, track_id in zip(candidates, ids):
            track_id = track_id if track_id is not None else self._new_id()
            for v, boxes in enumerate(per_view):
                for j, box in enumerate(boxes):
                    self._record(v, start + j, track_id, box)
        self.frames_done = end
        self._round += 1

    def _associate(self, candidates: list, frame: int) -> list[int | None]:
        """Greedy IoU matching on the shared frame between new trajectories and known tracks."""
        known: dict[int, list[Box | None]] = {}
        for v in range(len(self.views)):
            for track_id, box in self.results[v].get(frame, {}).items():
                known.setdefault(track_id, [None] * len(self.views))[v] = box
        pairs = []
        for c, per_view in enumerate(candidates):
            for track_id, boxes in known.items():
                score = sum(iou_xyxy(per_view[v][0], boxes[v]) for v in range(len(self.views))
                            if per_view[v][0] is not None and boxes[v] is not None)
                if score >= self.options.match_iou:
                    pairs.append((score, c, track_id))
        ids: list[int | None] = [None] * len(candidates)
        used: set[int] = set()
        for score, c, track_id in sorted(pairs, key=lambda p: (-p[0], p[1], p[2])):
            if ids[c] is None and track_id not in used:
                ids[c] = track_id
                used.add(track_id)
        return ids
