"""Predicted and ground-truth boxes drawn on the frames: an animation per sequence and a contact sheet.

Reads any result file this package writes: SOT ``x,y,w,h`` per line, or MOTChallenge / RMOT rows
``frame,id,x,y,w,h,...`` (CRMOT's corner rows with ``corners=True``). Ground truth is drawn in green,
an SOT prediction in red, MOT predictions in one colour per id with the id written beside the box.
"""
from __future__ import annotations

import colorsys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from vptracker.datasets.base import Sequence
from vptracker.infer.common import frame_number, load_rgb
from vptracker.infer.outputs import path_part

GT_COLOR = (0, 220, 0)
SOT_COLOR = (255, 40, 40)


def read_prediction(path: str | Path, corners: bool = False) -> tuple[str, np.ndarray]:
    """``("sot", (T, 4) xywh)`` or ``("mot", (N, 6) frame,id,x,y,w,h)`` from a result file."""
    path = Path(path)
    rows = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append([float(v) for v in line.replace("\t", ",").split(",") if v.strip()])
        except ValueError:
            raise ValueError(f"{path}:{lineno}: expected comma-separated numbers, got {line!r}") from None
    if not rows:
        return "mot", np.zeros((0, 6))
    width = min(len(r) for r in rows)
    if width == 4:
        return "sot", np.asarray([r[:4] for r in rows], dtype=np.float64)
    if width < 6:
        raise ValueError(f"{path}: expected 4 (x,y,w,h) or at least 6 (frame,id,x,y,w,h) columns, got {width}")
    data = np.asarray([r[:6] for r in rows], dtype=np.float64)
    if corners:
        data[:, 4:6] -= data[:, 2:4]
    return "mot", data


def id_color(track_id: int) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb((track_id * 0.618033988749895) % 1.0, 0.85, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def _rect(draw: ImageDraw.ImageDraw, box_xywh, color, scale: float, width: int = 2, label: str | None = None):
    x, y, w, h = (float(v) * scale for v in box_xywh)
    if w <= 0 or h <= 0 or not np.isfinite([x, y, w, h]).all():
        return
    draw.rectangle((x, y, x + w, y + h), outline=color, width=width)
    if label:
        draw.text((x + 2, max(y - 11, 0)), label, fill=color)


def draw_frame(seq: Sequence, t: int, kind: str, pred: np.ndarray, max_width: int = 480) -> Image.Image:
    """Frame ``t`` scaled to at most ``max_width`` pixels wide, with gt and predicted boxes."""
    image = load_rgb(seq.frames[t])
    scale = min(1.0, max_width / image.width)
    if scale < 1.0:
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
    draw = ImageDraw.Draw(image)
    for track in seq.tracks:
        if t < len(track.boxes) and track.visible[t]:
            _rect(draw, track.boxes[t], GT_COLOR, scale)
    if kind == "sot":
        if t < len(pred):
            _rect(draw, pred[t], SOT_COLOR, scale, width=3)
    else:
        number = frame_number(seq, t)
        for row in pred[pred[:, 0] == number] if len(pred) else []:
            _rect(draw, row[2:6], id_color(int(row[1])), scale, label=str(int(row[1])))
    draw.text((4, 2), f"{seq.name} #{t + 1}", fill=(255, 255, 0))
    return image


def write_animation(frames: list[Image.Image], path: Path, fps: float = 10.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gif":
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=int(1000 / fps), loop=0)
        return path
    import av

    with av.open(str(path), mode="w") as container:
        stream = None
        for codec in ("libx264", "mpeg4"):  # libx264 is not in every ffmpeg build
            try:
                stream = container.add_stream(codec, rate=max(1, round(fps)))
                break
            except (ValueError, av.error.FFmpegError):
                continue
        if stream is None:
            raise RuntimeError(f"{path}: no mp4 encoder available (tried libx264, mpeg4); use --format gif")
        # encoders want even sizes
        width, height = frames[0].width // 2 * 2, frames[0].height // 2 * 2
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for image in frames:
            frame = av.VideoFrame.from_image(image.crop((0, 0, width, height)))
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def contact_sheet(images: list[Image.Image], columns: int = 4) -> Image.Image:
    w = max(im.width for im in images)
    h = max(im.height for im in images)
    rows = (len(images) + columns - 1) // columns
    sheet = Image.new("RGB", (w * min(columns, len(images)), h * rows), (30, 30, 30))
    for i, im in enumerate(images):
        sheet.paste(im, ((i % columns) * w, (i // columns) * h))
    return sheet


def render_sequence(seq: Sequence, prediction: str | Path, out_dir: str | Path, fmt: str = "gif",
                    max_frames: int | None = None, stride: int = 1, sheet_frames: int = 8, max_width: int = 480,
                    corners: bool = False, fps: float = 10.0) -> dict[str, Path]:
    """Writes ``<seq>.<fmt>`` (every ``stride``-th frame) and ``<seq>_sheet.png``; returns their paths."""
    if fmt not in ("gif", "mp4"):
        raise ValueError(f"format {fmt!r}: expected gif or mp4")
    kind, pred = read_prediction(prediction, corners)
    out_dir = Path(out_dir)
    n = len(seq.frames) if max_frames is None else min(len(seq.frames), max_frames)
    frames = [draw_frame(seq, t, kind, pred, max_width) for t in range(0, n, max(1, stride))]
    if not frames:
        raise ValueError(f"{seq.name}: no frames to draw")

    stem = path_part(seq.name)
    picks = sorted(set(np.rint(np.linspace(0, len(frames) - 1, min(sheet_frames, len(frames)))).astype(int).tolist()))
    sheet_path = out_dir / f"{stem}_sheet.png"
    out_dir.mkdir(parents=True, exist_ok=True)
    contact_sheet([frames[i] for i in picks]).save(sheet_path)
    return {"animation": write_animation(frames, out_dir / f"{stem}.{fmt}", fps), "sheet": sheet_path}


def find_prediction(pred_dir: str | Path, seq: Sequence) -> Path | None:
    """Where this package writes a sequence's result: ``<name>.txt`` or ``<video>/<expr>/predict.txt``."""
    pred_dir = Path(pred_dir)
    video = path_part(seq.scene or seq.name)
    expression = path_part(seq.expression or seq.name)
    name = path_part(seq.name)
    for candidate in (pred_dir / f"{name}.txt", pred_dir / video / expression / "predict.txt",
                      pred_dir / name / "predict.txt",
                      pred_dir / path_part(f"{seq.scene}_{(seq.language or '').strip()}") / f"{path_part(seq.view)}.txt"):
        if candidate.is_file():
            return candidate
    return None
