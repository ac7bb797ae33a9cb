"""Token lengths of prepared rows (ms-swift JSONL), for the plan's sequence lengths and vLLM limits.

Counted as ``vptracker prepare`` counts them (:mod:`vptracker.tasks.lengths`, the one counter): each
image by its family's rule (Qwen-VL: resized under ``max_pixels`` to multiples of ``patch x merge``,
one token per ``(patch x merge)^2`` pixels, plus ``<|vision_start|>``/``<|vision_end|>``; tiling
families by their tiles), crops and VPTracker templates at their cut size, every text turn (and a
GRPO row's ``solution``) by the real Qwen tokenizer where setup wrote it (else the estimate, with a
message), plus the chat wrapping per turn.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from vptracker.boxes import DEFAULT_MIN_PIXELS, smart_resize
from vptracker.tasks.lengths import TURN_OVERHEAD, image_tokens, row_image_sizes, row_texts
from vptracker.tasks.token_count import text_counter


@dataclass
class RowLengths:
    rows: int
    max_tokens: int
    mean_tokens: float
    max_visual_tokens: int
    max_images: int
    source: str
    max_answer_tokens: int | None = None  # the assistant turns: the only tokens whose logits swift computes

    def describe(self) -> str:
        return (f"{self.rows} rows of {self.source}: at most {self.max_tokens} tokens (mean {self.mean_tokens:.0f}), "
                f"at most {self.max_visual_tokens} visual tokens and {self.max_images} images per row")


def visual_tokens(width: int, height: int, max_pixels: int, factor: int = 28,
                  min_pixels: int = DEFAULT_MIN_PIXELS) -> int:
    """Tokens of one image after Qwen's smart_resize (qwen-vl-utils, as the processors resize), both
    sides multiples of ``factor``: the inference plan's frames, from the model's own patch and merge."""
    h, w = smart_resize(int(height), int(width), factor=factor, min_pixels=min_pixels, max_pixels=max_pixels)
    return max(h // factor, 1) * max(w // factor, 1)


def _absolute(row: dict, base: Path) -> dict:
    """The row with image paths relative to its file made absolute (prepare writes absolute ones)."""
    images = []
    for item in row.get("images") or []:
        path = item.get("path") if isinstance(item, dict) else item
        images.append(str(path) if Path(str(path)).is_absolute() else str(base / str(path)))
    return {**row, "images": images}


def row_lengths(data: str | Path, max_pixels: int, family: str = "qwen2_5_vl", tokenizer: str | None = None,
                limit: int = 2000) -> RowLengths:
    """Lengths of up to ``limit`` rows spread over every ``*.jsonl`` under ``data`` (a file or a folder),
    for a model of ``family`` (its images' rule; ``tokenizer`` as ``length_budget.tokenizer``)."""
    data = Path(data)
    # measured from the rows themselves: card.json's length report (tasks/lengths.py) is per job and
    # holds no image counts, which the plan needs
    files = sorted(data.rglob("*.jsonl")) if data.is_dir() else [data]
    if not files:
        raise ValueError(f"{data}: no *.jsonl rows to measure")
    lines = [(f, i, line) for f in files for i, line in enumerate(f.read_text().splitlines(), 1) if line.strip()]
    step = max(1, len(lines) // limit)
    rows, texts = [], []
    for name, lineno, line in lines[::step]:
        try:
            row = _absolute(json.loads(line), name.parent)
            roles = [m.get("role") for m in row.get("messages", [])] + (["solution"] if row.get("solution") else [])
            pixels = int(row.get("max_pixels") or max_pixels)
            vis = [image_tokens(max(int(w), 1), max(int(h), 1), family, pixels) for w, h in row_image_sizes(row)]
            texts.append(row_texts(row))
        except (json.JSONDecodeError, OSError, AttributeError, TypeError, KeyError) as err:
            raise ValueError(f"{name}:{lineno}: expected an ms-swift row with messages and images ({err})") from None
        rows.append((roles, vis))
    counts = iter(text_counter(family, tokenizer)[0].many([x for turns in texts for x in turns]))
    totals, max_vis, max_images, max_answer = [], 0, 0, 0
    for roles, vis in rows:
        turns = [(role, next(counts) + TURN_OVERHEAD) for role in roles]
        totals.append(sum(vis) + sum(n for _, n in turns))
        max_answer = max([max_answer] + [n for role, n in turns if role == "assistant"])
        max_vis, max_images = max(max_vis, sum(vis)), max(max_images, len(vis))
    source = f"{data} ({len(totals)} of {len(lines)} rows measured)"
    return RowLengths(len(totals), max(totals), sum(totals) / len(totals), max_vis, max_images, source, max_answer)
