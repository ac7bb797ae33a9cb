"""Token lengths of prepared rows (ms-swift JSONL), for the plan's sequence lengths and vLLM limits.

Visual tokens are exact for the Qwen-VL families: each image's header gives its size, resized as
``qwen_vl_utils.smart_resize`` does under ``max_pixels``, one token per ``(patch * merge)^2`` pixels.
Text tokens are counted without a tokenizer (none is available offline for the real models): one
per digit, per punctuation mark and per word, which is how Qwen's BPE splits box answers and an
upper bound for English words. A data card (``card.json``) that records lengths is used as is.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

TEXT_PIECES = re.compile(r"\d|[^\W\d_]+|[^\w\s]|_")
TEMPLATE_TOKENS = 5  # <|im_start|>role\n ... <|im_end|>\n per message


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


def text_tokens(text: str) -> int:
    return len(TEXT_PIECES.findall(text))


def visual_tokens(width: int, height: int, max_pixels: int, factor: int = 28, min_pixels: int = 3136) -> int:
    """Tokens of one image after Qwen's smart_resize (both sides multiples of ``factor``)."""
    h = max(factor, round(height / factor) * factor)
    w = max(factor, round(width / factor) * factor)
    if h * w > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h = max(factor, math.floor(height / beta / factor) * factor)
        w = max(factor, math.floor(width / beta / factor) * factor)
    elif h * w < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h, w = math.ceil(height * beta / factor) * factor, math.ceil(width * beta / factor) * factor
    return (h // factor) * (w // factor)


def _image_size(item, base: Path, cache: dict) -> tuple[int, int]:
    from PIL import Image

    path = item.get("path") if isinstance(item, dict) else item
    path = Path(str(path))
    path = path if path.is_absolute() else base / path
    if path not in cache:
        with Image.open(path) as im:  # reads the header only
            cache[path] = im.size
    return cache[path]


def row_lengths(data: str | Path, max_pixels: int, factor: int = 28, limit: int = 2000) -> RowLengths:
    """Lengths of up to ``limit`` rows spread over every ``*.jsonl`` under ``data`` (a file or a folder)."""
    data = Path(data)
    # measured from the rows themselves: card.json's length report (tasks/lengths.py) is per job and
    # holds no image counts, which the plan needs
    files = sorted(data.rglob("*.jsonl")) if data.is_dir() else [data]
    if not files:
        raise ValueError(f"{data}: no *.jsonl rows to measure")
    lines = [(f, i, line) for f in files for i, line in enumerate(f.read_text().splitlines(), 1) if line.strip()]
    step = max(1, len(lines) // limit)
    sizes: dict = {}
    totals, max_vis, max_images, max_answer = [], 0, 0, 0
    for name, lineno, line in lines[::step]:
        try:
            row = json.loads(line)
            images = row.get("images") or []
            vis = sum(visual_tokens(*_image_size(im, name.parent, sizes), max_pixels, factor) for im in images)
            turns = [(m.get("role"), text_tokens(str(m.get("content", ""))) + TEMPLATE_TOKENS)
                     for m in row.get("messages", [])]
        except (json.JSONDecodeError, OSError, AttributeError, TypeError) as err:
            raise ValueError(f"{name}:{lineno}: expected an ms-swift row with messages and images ({err})") from None
        totals.append(vis + sum(n for _, n in turns))
        max_answer = max([max_answer] + [n for role, n in turns if role == "assistant"])
        max_vis, max_images = max(max_vis, vis), max(max_images, len(images))
    source = f"{data} ({len(totals)} of {len(lines)} rows measured)"
    return RowLengths(len(totals), max(totals), sum(totals) / len(totals), max_vis, max_images, source, max_answer)
