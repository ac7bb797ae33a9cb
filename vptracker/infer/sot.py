"""Single-object trackers: VPTracker's released loop and OmniPT's iterative multi-round SOT.

Both produce one ``x,y,w,h`` box per frame, the first being the initial box (the toolkits'
``<seq>.txt``). Any answer that cannot be used (``"visible": "no"``, ``<None>``, garbage, an
inverted box or one outside the image) keeps the previous box, as the released loop does.
"""
from __future__ import annotations

import numpy as np

from vptracker.boxes import Box, parse_trajectory, parse_vptracker, render_box, xyxy_to_xywh
from vptracker.datasets.base import Sequence
from vptracker.infer.common import SequenceTracker, TaskOptions, answer_box, initial_box, load_rgb, windows
from vptracker.infer.engine import Request
from vptracker.prompts import omnipt_sot, vptracker_prompt
from vptracker.visual_prompt import crop_template, draw_outline, template_region, test_time_prompt


class SOTTracker(SequenceTracker):
    """Holds the per-frame boxes; ``boxes`` is what ``<seq>.txt`` gets."""

    def __init__(self, seq: Sequence, options: TaskOptions):
        super().__init__(seq, options)
        self.boxes: list[Box] = []   # x1,y1,x2,y2 per finished frame

    def _keep_or(self, box: Box | None) -> None:
        self.boxes.append(box if box is not None else self.boxes[-1])
        self.frames_done = len(self.boxes)

    def result(self) -> np.ndarray:
        """``(T, 4)`` x,y,w,h, one row per frame."""
        return np.asarray([xyxy_to_xywh(b) for b in self.boxes], dtype=np.float64).reshape(-1, 4)


class VPTrackerSOT(SOTTracker):
    """The released VPTracker inference rule (SPEC section 4).

    Template: the square crop around the frame-1 box, fixed for the whole sequence. Search: frame t
    with the outline (``vp_scale`` times the previous box, about its centre). Without a frame-1 box
    (language-only initialisation) the first call shows the whole first frame as the template and
    the search image without outline, and its answer becomes the initial box (the whole frame if the
    answer is unusable).
    """

    def __init__(self, seq: Sequence, options: TaskOptions):
        super().__init__(seq, options)
        self.language = (seq.language or "").strip()
        self._template = None
        self._template_region = None
        self._template_box = None
        first = initial_box(seq)
        if first is not None:
            self._start(first)

    def _start(self, first: Box) -> None:
        self.boxes.append(first)
        self.frames_done = 1
        self._template_box = xyxy_to_xywh(first)
        self._template_region = template_region(self._template_box, self.seq.width, self.seq.height,
                                                self.options.template_scale)

    def _template_image(self):
        if self._template is None:
            self._template = crop_template(load_rgb(self.seq.frames[0]), self._template_region)
        return self._template

    def _next(self) -> Request | None:
        opts = self.options
        if not self.boxes:  # language-only initialisation on frame 1
            frame = load_rgb(self.seq.frames[0])
            return Request.user(vptracker_prompt(self.language, opts.vp_color, visual_prompt=False), [frame, frame],
                                frame=0, images_from=[str(self.seq.frames[0])] * 2, init="language")
        t = len(self.boxes)
        while t < len(self.seq.frames):
            try:
                search = load_rgb(self.seq.frames[t])
                template = self._template_image()
            except OSError as err:  # a damaged frame: keep the previous box, say so in the log
                self.responses.append({"sequence": self.name, "frame": t, "error": f"{self.seq.frames[t]}: {err}"})
                self._keep_or(None)
                t += 1
                continue
            prompt = test_time_prompt(self._template_box, xyxy_to_xywh(self.boxes[-1]), self.seq.width,
                                      self.seq.height, opts.vp_scale, opts.vp_color, opts.template_scale,
                                      opts.visual_prompt)
            if prompt.outline is not None:
                search = draw_outline(search, prompt.outline, prompt.color, prompt.line_width)
            text = vptracker_prompt(self.language, opts.vp_color, visual_prompt=opts.visual_prompt)
            return Request.user(text, [template, search], frame=t,
                                images_from=[str(self.seq.frames[0]), str(self.seq.frames[t])],
                                template_region=list(prompt.template_region),
                                outline=None if prompt.outline is None else [round(v, 2) for v in prompt.outline])
        return None

    def _consume(self, request: Request, answer: str) -> None:
        parsed = parse_vptracker(answer)
        box = None if parsed.visible is False else answer_box(parsed.box, self.cmap)
        if not self.boxes:
            self._start(box if box is not None else (0.0, 0.0, float(self.seq.width), float(self.seq.height)))
            return
        self._keep_or(box)


class OmniSOT(SOTTracker):
    """OmniPT SOT: rounds of ``frames_per_sample`` images, the last box of a round is the next prior."""

    def __init__(self, seq: Sequence, options: TaskOptions):
        super().__init__(seq, options)
        first = initial_box(seq)
        if first is None:
            raise ValueError(f"{seq.dataset}/{seq.name}: omnipt_sot needs a visible first-frame box "
                             "(use vptracker_sot for language-only initialisation)")
        self.boxes.append(first)
        self.frames_done = 1
        self._rounds = windows(len(seq.frames), options.frames_per_sample)
        self._round = 0

    def _next(self) -> Request | None:
        if self._round >= len(self._rounds):
            return None
        start, end = self._rounds[self._round]
        prior = render_box(self.cmap.to_model(self.boxes[start]), self.cmap.decimals, self.options.grammar)
        paths = [str(p) for p in self.seq.frames[start:end]]
        return Request.user(omnipt_sot(end - start, prior), paths, frames=[start, end], prior=prior)

    def _consume(self, request: Request, answer: str) -> None:
        start, end = self._rounds[self._round]
        parsed = parse_trajectory(answer)
        for i in range(1, end - start):  # image 0 is the prior frame, already decided
            box = parsed[i].box if i < len(parsed) else None
            self._keep_or(answer_box(box, self.cmap))
        self._round += 1
