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

import logging

from vptracker.boxes import (
    NONE_TOKEN,
    Box,
    iou_xyxy,
    iou_xyxy_matrix,
    parse_trajectories,
    parse_trajectory,
    render_trajectory,
)
from vptracker.datasets.base import Sequence
from vptracker.infer.common import TaskOptions, answer_box, frame_number, windows
from vptracker.infer.engine import Request
from vptracker.infer.loop import TrackerBase
from vptracker.prompts.texts import omnipt_crmot, omnipt_mot_first, omnipt_mot_new, omnipt_mot_track, omnipt_rmot
from vptracker.tasks.lengths import text_counter

DUPLICATE_IOU = 0.7  # a "new" object this close to a known track on the same frame is that track
logger = logging.getLogger(__name__)


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


_HEADING = "The trajectory of the twentieth people are: , "   # one trajectory's words, a long ordinal


class OmniMOT(MultiTracker):
    """MOT (and SMOT tracking): the three-query dialogue per round.

    Answer budget (``max_answer_tokens``, the engine's ``max_tokens``): the "track these objects"
    answer grows with objects x frames, and an answer cut at the budget loses its last objects for
    good. Before that query the round is shortened to the most frames (>= 2) whose worst-case
    answer fits, counted with the family's tokenizer (:func:`vptracker.tasks.lengths.text_counter`:
    the real Qwen tokenizer for the Qwen-VL families, else an estimate that errs high);
    ``shortened`` counts such rounds. Answers that still come back shorter than asked (fewer
    trajectories or frames) are counted in ``truncated`` and reported when the sequence ends.

    Re-detection (``redetect``, on by default): every round asks the first-frame query, as the
    first round does, and joins its boxes to the prior: a detection overlapping a prior track
    (IoU >= ``match_iou``, optimal assignment) is that track; one overlapping the last box of a
    track lost earlier re-finds that id; the rest are new objects. Without it, later rounds write
    the prior as the first answer and a lost object is never found again (the "added midway" query
    asks only for objects absent from the round's first frame).

    ``max_objects`` caps the objects one answer may add (a degenerate 2,000-box answer would
    otherwise make 2,000 ids); ``capped`` counts the boxes left out. Under a budget the cap is also
    the most objects whose shortest (2-frame) track answer fits it, and it bounds the objects a
    round carries: at 2,048 tokens 36 to 40 with the real tokenizer (50-56 tokens per object and
    round: a heading of 10 and two boxes of 18-21 tokens, each + 2 of margin), so more priors could
    never be tracked whole. Tracks over it are left out of the round (oldest ids kept; counted in
    ``capped``) and re-found by re-detection when room frees up.
    """

    def __init__(self, seq: Sequence, options: TaskOptions):
        super().__init__(seq.name, [seq], options)
        windows(max(len(seq.frames), 2), options.frames_per_sample)  # checks frames_per_sample >= 2
        self.seq = seq
        self._start, self._end, self._finished = 0, 0, False
        self._phase = "detect"
        self._messages: list[dict] = []
        self._priors: list[tuple[int, Box]] = []
        self._last_seen: dict[int, tuple[int, Box]] = {}
        self.truncated = self.capped = self.shortened = 0
        self._count = text_counter(options.family)[0]

    def _record(self, view: int, frame: int, track_id: int, box: Box | None) -> None:
        super()._record(view, frame, track_id, box)
        if box is not None and frame >= self._last_seen.get(track_id, (-1, None))[0]:
            self._last_seen[track_id] = (frame, box)

    def _fit(self, n_objects: int) -> int:
        """Frames of a round whose track answer for ``n_objects`` fits the budget (at least 2)."""
        per = int(self.options.frames_per_sample)
        budget = self.options.max_answer_tokens
        if not budget or not n_objects:
            return per
        slot, head = self._slot([b for _, b in self._priors]), self._count(_HEADING)
        for n in range(per, 1, -1):
            if n_objects * (head + n * slot) <= budget:
                return n
        return 2

    def _slot(self, boxes: list[Box]) -> int:
        """Tokens of one trajectory entry: the longest of these boxes, plus 2 for coordinates that
        gain a digit on the way."""
        return 2 + max([self._count(NONE_TOKEN)] + [self._count(self._box_text(b)) for b in boxes])

    def _cap(self, boxes: list[Box]) -> int:
        """``max_objects``, lowered to the most objects whose 2-frame track answer fits the budget."""
        cap = int(self.options.max_objects)
        budget = self.options.max_answer_tokens
        if budget:
            cap = min(cap, max(1, int(budget) // (self._count(_HEADING) + 2 * self._slot(boxes))))
        return cap

    def _box_text(self, box: Box) -> str:
        return render_trajectory([self._model(0, box)], self.cmaps[0].decimals, self.options.grammar)

    def _paths(self, end: int) -> list[str]:
        return [str(p) for p in self.seq.frames[self._start:end]]

    def _prior_text(self) -> str:
        return render_trajectory([self._model(0, b) for _, b in self._priors], self.cmaps[0].decimals,
                                 self.options.grammar)

    def _next(self) -> Request | None:
        if self._finished:
            return None
        start, n_frames = self._start, len(self.seq.frames)
        if self._phase == "detect":
            if not self._priors or self.options.redetect:
                end = min(start + self._fit(len(self._priors)), n_frames)
                return Request([{"role": "user", "content": omnipt_mot_first(end - start)}], self._paths(end),
                               {"frames": [start, end], "query": "detect"})
            self._phase = "track"
        if self._phase == "track":
            fitted = self._fit(len(self._priors))
            self.shortened += fitted < int(self.options.frames_per_sample) and start + fitted < n_frames
            self._end = min(start + fitted, n_frames)
            # the round's first answer: the prior (and this round's detections), as in training
            self._messages = [{"role": "user", "content": omnipt_mot_first(self._end - start)},
                              {"role": "assistant", "content": self._prior_text()}]
            if not self._priors:
                self._phase = "new"
            else:
                ask = {"role": "user", "content": omnipt_mot_track(self._prior_text())}
                return Request(self._messages + [ask], self._paths(self._end),
                               {"frames": [start, self._end], "query": "track"})
        ask = {"role": "user", "content": omnipt_mot_new()}
        return Request(self._messages + [ask], self._paths(self._end),
                       {"frames": [start, self._end], "query": "new"})

    def _capped(self, items: list, cap: int | None = None) -> list:
        cap = int(self.options.max_objects) if cap is None else cap
        self.capped += max(0, len(items) - cap)
        return items[:cap]

    def _consume(self, request: Request, answer: str) -> None:
        start, end = self._start, self._end
        n = end - start
        if self._phase == "detect":
            boxes = [b for b in (answer_box(p.box, self.cmaps[0]) for p in parse_trajectory(answer)) if b is not None]
            self._join(self._capped(boxes, self._cap(boxes + [b for _, b in self._priors])), start)
            self._phase = "track"
            return
        self._messages = request.messages + [{"role": "assistant", "content": answer}]
        trajectories = parse_trajectories(answer)
        if self._phase == "track":
            shown = trajectories[:len(self._priors)]
            self.truncated += len(shown) < len(self._priors) or any(len(t) < n for t in shown)
            for (track_id, _), traj in zip(self._priors, trajectories):
                for j in range(1, min(n, len(traj))):
                    self._record(0, start + j, track_id, answer_box(traj[j].box, self.cmaps[0]))
            self._phase = "new"
            return
        self.truncated += bool(trajectories) and len(trajectories[-1]) < n
        for traj in self._capped(trajectories):
            boxes = {start + j: answer_box(p.box, self.cmaps[0]) for j, p in enumerate(traj[:n])}
            boxes = {f: b for f, b in boxes.items() if b is not None}
            if not boxes or self._duplicate(boxes):
                continue
            track_id = self._new_id()
            for frame, box in boxes.items():
                self._record(0, frame, track_id, box)
        self._end_round(end)

    def _join(self, detections: list[Box], frame: int) -> None:
        """Adds this round's first-frame detections to the prior (see the class docstring), up to the
        objects a round can carry (:meth:`_cap`); detections left over are counted in ``capped``."""
        cap = self._cap(detections + [b for _, b in self._priors])
        prior_ids = {track_id for track_id, _ in self._priors}
        lost = [(tid, box) for tid, (_, box) in sorted(self._last_seen.items()) if tid not in prior_ids]
        free = list(range(len(detections)))
        for known in (self._priors, lost):
            matched = _assign([detections[i] for i in free], [b for _, b in known], self.options.match_iou)
            for d, k in matched:
                if known is lost and len(self._priors) < cap:  # re-found: the lost id continues
                    self._priors.append((known[k][0], detections[free[d]]))
                    self._record(0, frame, known[k][0], detections[free[d]])
                elif known is lost:
                    self.capped += 1
            free = [i for j, i in enumerate(free) if j not in {d for d, _ in matched}]
        room = max(0, cap - len(self._priors))
        self.capped += max(0, len(free) - room)
        for i in free[:room]:
            track_id = self._new_id()
            self._priors.append((track_id, detections[i]))
            self._record(0, frame, track_id, detections[i])

    def _duplicate(self, boxes: dict[int, Box]) -> bool:
        frame = min(boxes)
        return any(iou_xyxy(boxes[frame], known) > DUPLICATE_IOU for known in self.results[0].get(frame, {}).values())

    def _end_round(self, end: int) -> None:
        self._priors = sorted(self.results[0].get(end - 1, {}).items())
        self._priors = self._capped(self._priors, self._cap([b for _, b in self._priors]))
        self.frames_done = end
        self._finished = end >= len(self.seq.frames)
        self._start = end - 1
        self._phase = "detect"
        self._messages = []
        if self._finished and (self.truncated or self.capped):
            logger.warning("%s: %d answers came back shorter than asked (cut at max_tokens?), %d boxes beyond "
                           "max_objects=%s left out; %d rounds shortened to fit max_answer_tokens", self.name,
                           self.truncated, self.capped, self.options.max_objects, self.shortened)

    @property
    def report(self) -> dict:
        """What was cut or capped in this sequence, for the run's summary."""
        return {"truncated_answers": self.truncated, "capped_boxes": self.capped, "shortened_rounds": self.shortened}


def _assign(boxes: list[Box], known: list[Box], min_iou: float) -> list[tuple[int, int]]:
    """Index pairs of the IoU-maximal one-to-one assignment, keeping pairs with IoU >= ``min_iou``."""
    if not boxes or not known:
        return []
    from scipy.optimize import linear_sum_assignment

    iou = iou_xyxy_matrix(boxes, known)
    rows, cols = linear_sum_assignment(iou, maximize=True)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if iou[r, c] >= min_iou]


class OmniReferring(MultiTracker):
    """RMOT (one view) and CRMOT (several views of one scene, one description).

    ``max_objects`` caps the trajectories one answer may give, as in MOT: a degenerate answer with
    500 trajectory headings would otherwise make 500 ids per round (in every view); ``capped``
    counts the trajectories left out (the last ones) and is reported when the sequence ends.
    """

    def __init__(self, name: str, views: list[Sequence], description: str, options: TaskOptions):
        super().__init__(name, views, options)
        self.description = (description or "").strip()
        self.n_frames = min(len(v.frames) for v in views)
        per_view = max(2, options.frames_per_sample // len(views))
        self._rounds = _rounds(self.n_frames, per_view)
        self._round = 0
        self.capped = 0

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
        cap = int(self.options.max_objects)
        self.capped += max(0, len(candidates) - cap)
        candidates = candidates[:cap]
        ids = self._associate(candidates, start) if self._round > 0 else [None] * len(candidates)
        for per_view, track_id in zip(candidates, ids):
            track_id = track_id if track_id is not None else self._new_id()
            for v, boxes in enumerate(per_view):
                for j, box in enumerate(boxes):
                    self._record(v, start + j, track_id, box)
        self.frames_done = end
        self._round += 1
        if self._round == len(self._rounds) and self.capped:
            logger.warning("%s: %d trajectories beyond max_objects=%s left out", self.name, self.capped,
                           self.options.max_objects)

    @property
    def report(self) -> dict:
        """What was capped in this sequence, for the run's summary."""
        return {"capped_trajectories": self.capped}

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
