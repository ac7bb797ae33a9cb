"""Length budgets of prepared rows: counted when ``vptracker prepare`` writes them, never silent.

ms-swift deletes a training row longer than ``max_length`` without a word, so a 32-frame row of
1080p frames (about 20,800 tokens at the paper's 28x28x646 pixels) simply disappears under
``max_length: 16384``. Here every row is counted before it is written:

* image tokens from the frame's real size (:meth:`vptracker.models.families.Family.image_tokens`): a
  Qwen-VL processor resizes it to multiples of ``patch x merge`` under ``max_pixels``
  (:func:`vptracker.boxes.smart_resize`), one token per ``(patch x merge)^2`` pixels, plus
  ``<|vision_start|>`` and ``<|vision_end|>``; InternVL2.5 and LLaVA-NeXT count their tiles;
* text tokens counted by a tokenizer (:func:`text_counter`), plus a few tokens of chat template per
  turn. ``length_budget.tokenizer``: a model directory; ``estimate`` for :func:`estimate_tokens`;
  unset (the default): for the Qwen-VL families the real Qwen tokenizer that setup writes
  (:func:`vptracker.models.qwen_tokenizer.find_tokenizer`; exact, Qwen2/2.5/3-VL share its BPE), and the
  estimate, with a logged message, where it is absent or for other families. The estimate counts
  one token per digit, word and punctuation mark; it errs high (a ``<bbox>`` box is 22 estimated
  tokens against 17-21 real ones). Each row is counted once, all its texts in one call, from
  counts cached per recurring piece (:mod:`vptracker.tasks.token_count`): a million rows would
  otherwise spend hours of CPU in the tokenizer.

A data config's ``length_budget`` says what to do with a row over ``max_length``::

    length_budget: {max_length: 16384, policy: fewer_frames, max_pixels: 506464, tokenizer: null}

Answer budgets (the engine's ``max_tokens``, the paper's 2,048 output tokens) use the same
counting: :func:`trajectory_objects_within` is how many whole trajectories of ``frames`` boxes one
answer can hold. Measured with the real tokenizer (0-1000 boxes, 17-21 tokens each, a heading of
10): with the longest boxes 39 objects at 2 frames, 21 at 4, 11 at 8, 5 at 16, 3 at 32 (6 at 16 with
typical boxes); a 16-frame answer passes 2,048 tokens from 7 objects on.

* ``stop`` (the default): stop with the counts (the rows over, the longest);
* ``fewer_frames``: draw the row again with fewer frames (3/4 each try, down to 2) for tasks with a
  ``frames`` option, so the row keeps a consistent answer for the frames it shows;
* ``lower_max_pixels``: give the row a ``max_pixels`` column low enough to fit (down to the
  family's minimum), which the swift plugin (``vptracker/models/swift_plugin.py``) applies when it loads
  the row's images; boxes in normalised scales do not depend on it (refused with ``scale:
  resized``, whose boxes are pixels of the resized image).

``card.json`` gets ``lengths.<split>.<job>``: the budget, rows counted, the longest row, a
histogram in 1,024-token bins, and how many rows the policy changed. ``check_cards`` lets the stage
runner refuse data whose rows its ``max_length`` would drop.
"""
from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from vptracker.boxes import DEFAULT_MIN_PIXELS
from vptracker.models.families import get_family
from vptracker.tasks.base import get_task
from vptracker.tasks.token_count import (  # noqa: F401  (re-exported: the counters live there)
    ESTIMATE,
    QWEN_BPE_FAMILIES,
    TOKEN_PIECE,
    TextCounter,
    _count_with,
    _fallback_note,
    _resolve,
    _tokenizer,
    estimate_tokens,
    text_counter,
)

POLICIES = ("stop", "fewer_frames", "lower_max_pixels")
TURN_OVERHEAD = 5      # <|im_start|>role\n ... <|im_end|>\n
BIN = 1024


def trajectory_objects_within(max_tokens: int, frames: int, count: Callable[[str], int], box_text: str,
                              heading: str) -> int:
    """The most trajectories of ``frames`` boxes like ``box_text`` (each after ``heading``) whose answer
    fits ``max_tokens``; 0 when not even one does."""
    per_object = count(heading) + frames * count(box_text)
    return max(0, int(max_tokens) // max(per_object, 1))


_FOLDER_SIZE: dict[str, tuple[int, int]] = {}


def image_size(path: str, per_folder: bool = True) -> tuple[int, int]:
    """A frame's size, read once per folder (``per_folder``): every official video layout keeps
    one video per folder, and opening each of a million rows' 32 frames would cost more than
    building the rows. Single images (SYNTH-PEDES crops, detection frames) are read one by one."""
    from PIL import Image

    folder = os.path.dirname(path)
    if not per_folder or folder not in _FOLDER_SIZE:
        with Image.open(path) as im:
            if not per_folder:
                return im.size
            _FOLDER_SIZE[folder] = im.size
    return _FOLDER_SIZE[folder]


def row_image_sizes(row: dict) -> list[tuple[float, float]]:
    """The size of each image the model sees: crops (ReID) and the VPTracker template are cut."""
    images = row.get("images") or []
    # a path, or swift's {"bytes", "path"} entry once its dataset loader has read the row
    paths = [str(p["path"] if isinstance(p, dict) else p) for p in images]
    sizes = [image_size(p, per_folder=len(paths) > 1) for p in paths]
    for i, region in enumerate(row.get("crops") or []):
        if region is not None and i < len(sizes):
            sizes[i] = (region[2] - region[0], region[3] - region[1])
    template = (row.get("visual_prompt") or {}).get("template_region")
    if template and sizes:
        sizes[0] = (template[2] - template[0], template[3] - template[1])
    return sizes


@lru_cache(maxsize=65536)
def image_tokens(width: int, height: int, family: str, max_pixels: int) -> int:
    """Tokens of one image of ``width x height`` after the family's resize under ``max_pixels``."""
    return get_family(family).image_tokens(width, height, max_pixels)


def row_texts(row: dict) -> list[str]:
    """Every text turn of a row (and its ``solution``) as the tokenizer sees it: images are counted apart."""
    turns = list(row.get("messages") or [])
    if row.get("solution"):
        turns.append({"content": row["solution"]})
    return [t["content"].replace("<image>", "") if isinstance(t.get("content"), str) else "" for t in turns]


@dataclass
class LengthBudget:
    """A data config's ``length_budget`` and the counts it gathers (see the module docstring).

    ``lengths`` counts rows per length (``{tokens: rows}``), so a million rows cost no more memory
    than a thousand."""

    max_length: int | None = None
    policy: str = "stop"
    family: str = "qwen2_5_vl"
    max_pixels: int = 28 * 28 * 646
    tokenizer: str | None = None
    lengths: Counter = field(default_factory=Counter)
    changed: int = 0

    @classmethod
    def from_config(cls, config: dict | None, task=None) -> LengthBudget:
        """The config's ``length_budget``; family and max_pixels default to the task's options."""
        config = dict(config or {})
        unknown = sorted(set(config) - {"max_length", "policy", "max_pixels", "tokenizer", "family"})
        if unknown:
            raise ValueError(f"data config: length_budget has unknown key(s) {unknown}")
        options = getattr(task, "options", {}) or {}
        defaults = {k: options[k] for k in ("family", "max_pixels") if options.get(k)}
        budget = cls(**{**defaults, **config})
        if budget.policy not in POLICIES:
            raise ValueError(f"data config: length_budget.policy={budget.policy!r}, expected one of {POLICIES}")
        return budget

    @property
    def counted_with(self) -> str:
        return text_counter(self.family, self.tokenizer)[1]

    @property
    def rows(self) -> int:
        return sum(self.lengths.values())

    def _text_tokens(self, rows: list[dict]) -> list[int]:
        """Each row's text tokens, every turn plus its chat wrapping, counted in one call for all rows."""
        texts = [row_texts(row) for row in rows]
        counts = iter(text_counter(self.family, self.tokenizer)[0].many([t for turns in texts for t in turns]))
        return [sum(next(counts) for _ in turns) + TURN_OVERHEAD * len(turns) for turns in texts]

    def _image_tokens(self, row: dict, max_pixels: int | None = None) -> int:
        pixels = int(max_pixels or row.get("max_pixels") or self.max_pixels)
        return sum(image_tokens(max(int(w), 1), max(int(h), 1), self.family, pixels) for w, h in row_image_sizes(row))

    def row_tokens(self, row: dict, max_pixels: int | None = None) -> int:
        """The tokens of a row: its images at ``max_pixels`` and every text turn (and ``solution``)."""
        return self._image_tokens(row, max_pixels) + self._text_tokens([row])[0]

    def _tokens(self, rows: list[dict]) -> list[int]:
        return [self._image_tokens(row) + text for row, text in zip(rows, self._text_tokens(rows))]

    def fits(self, row: dict) -> bool:
        return self.max_length is None or self.row_tokens(row) <= self.max_length

    def lower_pixels(self, row: dict, text_tokens: int | None = None) -> tuple[dict, int] | None:
        """The row with the largest ``max_pixels`` column that fits and its tokens, or None when none
        does; ``text_tokens``: the row's text, when already counted."""
        text = self._text_tokens([row])[0] if text_tokens is None else text_tokens
        pixels = int(self.max_pixels)
        while pixels >= DEFAULT_MIN_PIXELS:
            tokens = self._image_tokens(row, pixels) + text
            if tokens <= self.max_length:
                return {**row, "max_pixels": pixels}, tokens
            pixels = int(pixels * 0.8)
        return None

    def record(self, row: dict) -> None:
        self.lengths[self.row_tokens(row)] += 1

    def fresh(self) -> LengthBudget:
        """The same budget with empty counts (one per shard; :meth:`merge` adds them back)."""
        return LengthBudget(self.max_length, self.policy, self.family, self.max_pixels, self.tokenizer)

    def merge(self, other: LengthBudget) -> None:
        self.lengths.update(other.lengths)
        self.changed += other.changed

    def apply(self, task, drawn, redraw):
        """``drawn`` (a row, or the rows drawn together) within the budget by the policy; counts it.

        ``redraw(smaller_task)`` draws again with a task of fewer frames (None when the caller
        cannot). Under ``stop`` over-long rows are counted and :meth:`finish` stops the job.
        Each row is counted once: its tokens are kept for the policy's decision and the counts.
        """
        rows = drawn if isinstance(drawn, list) else [drawn]
        texts = self._text_tokens(rows)
        tokens = [self._image_tokens(row) + text for row, text in zip(rows, texts)]
        if self.max_length is None or self.policy == "stop" or max(tokens, default=0) <= self.max_length:
            self.lengths.update(tokens)
            return drawn
        fitted = None
        if self.policy == "fewer_frames" and "frames" in task.options and redraw is not None:
            fitted = self._fewer_frames(task, redraw)
        elif self.policy == "lower_max_pixels":
            if getattr(task, "scale", None) == "resized":
                raise OverBudget(f"task {task.name}: length_budget.policy lower_max_pixels would move boxes "
                                 "written in the resized scale; use fewer_frames or a normalised scale")
            if get_family(self.family).resize_factor is None:
                raise OverBudget(f"task {task.name}: length_budget.policy lower_max_pixels needs a family whose "
                                 f"image tokens follow max_pixels; {self.family} tiles the image: use fewer_frames")
            lowered = [(r, t) if t <= self.max_length else self.lower_pixels(r, text)
                       for r, t, text in zip(rows, tokens, texts)]
            if all(pair is not None for pair in lowered):
                fitted = ([r for r, _ in lowered] if isinstance(drawn, list) else lowered[0][0]), [t for _, t in lowered]
        if fitted is None:
            raise OverBudget(f"task {task.name}: a row of {max(tokens)} tokens cannot be "
                             f"brought under length_budget.max_length {self.max_length} by policy {self.policy} "
                             f"({self.rows} rows counted before it)")
        fitted, tokens = fitted
        self.changed += len(tokens)
        self.lengths.update(tokens)
        return fitted

    def _fewer_frames(self, task, redraw):
        """A redraw with fewer frames that fits and its rows' tokens, or None."""
        frames = int(task.options["frames"])
        while frames > 2:
            frames = max(2, int(frames * 0.75))  # 32, 24, 18, 13, 9, 6, 4, 3, 2: keep as many as fit
            smaller = get_task(task.name, **{**task.options, "frames": frames})
            for _ in range(100):  # a random task may need a few draws, as any draw does
                candidate = redraw(smaller)
                if candidate is not None:
                    break
            else:
                continue
            tokens = self._tokens(candidate if isinstance(candidate, list) else [candidate])
            if max(tokens, default=0) <= self.max_length:
                return candidate, tokens
        return None

    def finish(self, where: str) -> dict:
        """The job's length summary; under ``stop``, raises with the counts when rows are over."""
        summary = self.summary()
        if self.policy == "stop" and summary["over_max_length"]:
            raise OverBudget(f"{where}: {summary['over_max_length']} of {summary['rows']} rows are over "
                             f"length_budget.max_length {self.max_length} tokens (longest {summary['max']}, "
                             f"histogram {summary['histogram']}); ms-swift would drop them without a word. Set "
                             "length_budget.policy to fewer_frames or lower_max_pixels, or lower frames / max_pixels")
        return summary

    def summary(self) -> dict:
        n = self.rows
        hist: dict[str, int] = {}
        ordered = sorted(self.lengths.items())
        for length, rows in ordered:
            lo = length // BIN * BIN
            key = f"{lo}-{lo + BIN - 1}"
            hist[key] = hist.get(key, 0) + rows
        return {"max_length": self.max_length, "policy": self.policy, "max_pixels": self.max_pixels,
                "counted_with": self.counted_with, "rows": n, "changed_by_policy": self.changed,
                "max": ordered[-1][0] if n else 0, "p50": _nth(ordered, n // 2) if n else 0,
                "p99": _nth(ordered, min(n - 1, math.ceil(n * 0.99) - 1)) if n else 0,
                "over_max_length": sum(rows for v, rows in ordered if v > self.max_length) if self.max_length else 0,
                "histogram": dict(sorted(hist.items(), key=lambda kv: int(kv[0].split("-")[0])))}


def _nth(ordered: list[tuple[int, int]], k: int) -> int:
    """The ``k``-th smallest length (from 0) of ``(length, rows)`` pairs in order."""
    for length, rows in ordered:
        if k < rows:
            return length
        k -= rows
    raise IndexError(k)


class OverBudget(ValueError):
    """A row over ``max_length`` under the ``stop`` policy (or one no policy could fit)."""


def check_cards(cards: list[dict], max_length: int | None, where: str, max_pixels: int | None = None,
                echo=print) -> None:
    """Refuses prepared data that a stage's ``max_length`` would silently cut: rows longer than it,
    as counted by ``prepare`` (``card.json`` ``lengths``). Counts made at a larger ``max_pixels``
    than the stage's overstate the stage's rows, so those are reported, not refused; cards without
    counts (data not written by ``prepare``) are reported too."""
    if not max_length:
        return
    problems, unchecked, seen = [], [], set()
    for entry in cards:
        card_path = str(Path(str(entry.get("path"))).parent / "card.json")
        if card_path in seen:   # every shard of a folder shares its card: one line per card
            continue
        seen.add(card_path)
        lengths = (entry.get("card") or {}).get("lengths")
        if not lengths:
            unchecked.append(f"{entry.get('path')} (no length counts in its card.json)")
            continue
        for split, jobs in lengths.items():
            for job, stats in jobs.items():
                if stats.get("max", 0) <= max_length:
                    continue
                counted_at = (stats.get("max_pixels") or 0)
                if max_pixels and counted_at > int(max_pixels):
                    unchecked.append(f"{card_path}: {split}-{job} counted at max_pixels {counted_at}, "
                                     f"the stage uses {max_pixels}")
                    continue
                over = sum(n for key, n in stats.get("histogram", {}).items() if int(key.split("-")[0]) > max_length)
                problems.append(f"{card_path}: {split}-{job}: longest row {stats['max']} tokens, "
                                f"at least {max(over, 1)} of {stats['rows']} rows over max_length {max_length}")
    if unchecked:
        echo(f"# {where}: row lengths not checked against max_length {max_length}: " + "; ".join(sorted(set(unchecked))))
    if problems:
        raise OverBudget(f"{where}: ms-swift would drop these rows without a word:\n  " + "\n  ".join(problems)
                         + "\nprepare the data with length_budget.max_length <= the stage's max_length "
                         "(policy fewer_frames or lower_max_pixels), or raise the stage's max_length")
