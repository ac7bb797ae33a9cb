"""Small ms-swift JSONL sets for every stage, with generated images, for tests and smoke runs.

Each row follows the layouts the real builders write: OmniPT prompts from ``vptracker.prompts``,
answers in the ``<bbox>x,y,w,h</bbox>`` grammar normalised 0-1000 (``vptracker.boxes``), a
``solution`` column for GRPO and ``{"images", "caption"}`` pairs for the CLIP-style phase.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

from vptracker import prompts
from vptracker.boxes import render_bbox, render_trajectory

SIZE = 56  # two 28-pixel patches a side: the smallest image the Qwen processors accept


def _frame(path: Path, box: tuple[int, int, int, int] | None, colour: tuple[int, int, int]) -> str:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (SIZE, SIZE), (90, 90, 90))
    if box is not None:
        ImageDraw.Draw(image).rectangle(box, fill=colour)
    image.save(path)
    return str(path)


def _norm(box: tuple[int, int, int, int]) -> tuple[float, float, float, float]:
    return tuple(v * 1000 / SIZE for v in box)  # type: ignore[return-value]


def write_tiny_datasets(out: str | Path, rows: int = 8, frames: int = 2, seed: int = 0) -> dict[str, Path]:
    """Writes ``sft``, ``grpo``, ``midtrain`` and ``clip`` folders under ``out``; returns their paths."""
    rng = random.Random(seed)
    out = Path(out)
    dirs = {name: out / name for name in ("sft", "grpo", "midtrain", "clip")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    images = out / "images"
    images.mkdir(exist_ok=True)
    sft, grpo, midtrain, clip = [], [], [], []
    for i in range(rows):
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        boxes = []
        for f in range(frames):
            x, y = rng.randrange(0, SIZE - 20), rng.randrange(0, SIZE - 20)
            boxes.append(None if (f > 0 and rng.random() < 0.2) else (x, y, x + 16, y + 16))
        paths = [_frame(images / f"s{i}_f{f}.png", b, colour) for f, b in enumerate(boxes)]
        norm = [None if b is None else _norm(b) for b in boxes]
        first = render_bbox(norm[0])
        answer = render_trajectory(norm)
        sot = prompts.omnipt_sot(frames, first)
        sft.append({"messages": [{"role": "user", "content": sot}, {"role": "assistant", "content": answer}],
                    "images": paths})
        grounding = f"{prompts.IMAGE} Locate the coloured square and answer with its box."
        grpo.append({"messages": [{"role": "user", "content": grounding}], "images": paths[:1], "solution": first})
        location = prompts.pretext_location(frames, first)
        midtrain.append({"messages": [{"role": "user", "content": location}, {"role": "assistant", "content": answer}],
                         "images": paths})
        clip.append({"images": paths[:1], "caption": f"a square of colour {colour[0]} {colour[1]} {colour[2]}"})
    for name, data in (("sft", sft), ("grpo", grpo), ("midtrain", midtrain), ("clip", clip)):
        (dirs[name] / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in data))
        (dirs[name] / "card.json").write_text(json.dumps({"source": "tiny_data", "rows": len(data), "seed": seed}))
    return dirs


def tiny_overrides(model_dir: str | Path, data: dict[str, Path], run_dir: str | Path) -> list[str]:
    """Overrides that point every stage at a tiny model, tiny data and a scratch run folder."""
    return [
        "profile=tiny", f"model={model_dir}", f"run_dir={run_dir}",
        f"stage1_format_grpo.dataset=[{data['grpo']}]", f"stage4_iou_grpo.dataset=[{data['grpo']}]",
        f"stage2_midtrain.dataset=[{data['midtrain']}]", f"stage2_midtrain.clip.dataset=[{data['clip']}]",
        f"stage3_sft.dataset=[{data['sft']}]", "stage3_sft.val_dataset=[]",
    ]
