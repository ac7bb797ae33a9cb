"""Single-object trackers: VPTracker's released loop and OmniPT's iterative multi-round SOT.

Both produce one ``x,y,w,h`` box per frame, the first being the initial box (the toolkits'
``<seq>.txt``). Any answer that cannot be used keeps the previous box, as the released loop does
(VPTracker: the released keep/move decision; OmniPT: ``<None>``, garbage, an inverted box or one
outside the image).
"""
from __future__ import annotations

import random
import zlib
from dataclasses import replace

import numpy as np

from vptracker.boxes import (
    Box,
    is_valid_xyxy,
    parse_trajectory,
    parse_vptracker_released,
    released_box_accepted,
    render_box,
    xyxy_to_xywh,
)
from vptracker.datasets.base import Sequence
from vptracker.infer.common import SequenceTracker, TaskOptions, answer_box, initial_box, load_rgb, windows
from vptracker.infer.engine import Request
from vptracker.prompts import visual as released
from vptracker.prompts.texts import omnipt_sot, raw_language, vptracker_prompt
from vptracker.prompts.visual import crop_template, render


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


class VPTrackerSOTTracker(SOTTracker):
    """The released VPTracker inference rule (SPEC section 4).

    Template: the square crop around the frame-1 box, fixed for the whole sequence. Search: frame t
    with the outline (``vp_scale`` times the previous box, about its centre). Every step equals
    ``evaluation/infer_tracking_qwen_vlt_crop_absent.py``: the prompt with the raw description, the
    released geometry (:mod:`vptracker.prompts.visual`), and the keep/move decision of
    :func:`~vptracker.boxes.parse_vptracker_released` + :func:`~vptracker.boxes.released_box_accepted`.
    Without a frame-1 box (language-only initialisation, where the released loop stops with "Too
    small bounding box") the first call shows the whole first frame as the template and the search
    image without outline, and its answer becomes the initial box (the whole frame if the answer is
    unusable).
    """

    def __init__(self, seq: Sequence, options: TaskOptions):
        super().__init__(seq, options)
        self.language = raw_language(seq)
        self._rng = random.Random(zlib.crc32(seq.name.encode()))  # the released fallback rectangle's draws
        self._template = None
        self._template_region = None
        self._template_box = None
        first = initial_box(seq)
        if first is not None:
            self._start(first)

    def _start(self, first: Box) -> None:
        self.boxes.append(first)
        self.frames_done = 1
        self._template_box = first
        self._template_region = released.template_region(first, self.seq.width, self.seq.height,
                                                         self.options.template_scale)

    def _template_image(self):
        if self._template is None:
            self._template = crop_template(load_rgb(self.seq.frames[0]), self._template_region)
        return self._template

    def _prompt_text(self, visual_prompt: bool) -> str:
        return vptracker_prompt(self.language, self.options.vp_color, visual_prompt=visual_prompt)

    def _images(self, search):
        """The visual prompt of the next frame and the outlined search image."""
        opts, W, H = self.options, self.seq.width, self.seq.height
        prompt = released.test_time_prompt(self._template_box, self.boxes[-1], W, H, opts.vp_scale,
                                           opts.vp_color, opts.template_scale, opts.visual_prompt, self._rng)
        # the line width as the training rows drew it (the contract)
        prompt = replace(prompt, template_region=self._template_region, line_width=opts.line_width)
        if prompt.outline is None:
            return prompt, search
        return prompt, render(search, search, prompt)[1]

    def _next(self) -> Request | None:
        opts = self.options
        if not self.boxes:  # language-only initialisation on frame 1
            frame = load_rgb(self.seq.frames[0])
            return Request.user(self._prompt_text(False), [frame, frame],
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
            prompt, search = self._images(search)
            return Request.user(self._prompt_text(opts.visual_prompt), [template, search], frame=t,
                                images_from=[str(self.seq.frames[0]), str(self.seq.frames[t])],
                                template_region=list(prompt.template_region),
                                outline=None if prompt.outline is None else list(prompt.outline))
        return None

    def _answer_box(self, answer: str) -> Box | None:
        parsed = parse_vptracker_released(answer)
        if not parsed.visible or parsed.box is None:
            return None
        try:
            frame = self.cmap.to_frame(parsed.box)
        except (TypeError, ValueError, ZeroDivisionError, OverflowError):
            return None
        return frame if released_box_accepted(frame, self.seq.width, self.seq.height) else None

    def _consume(self, request: Request, answer: str) -> None:
        box = self._answer_box(answer)
        if not self.boxes:
            self._start(box if box is not None and is_valid_xyxy(box) else
                        (0.0, 0.0, float(self.seq.width), float(self.seq.height)))
            return
        self._keep_or(box)


class OmniSOTTracker(SOTTracker):
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
