"""What every tracker shares: task options, frame loading and the answer-to-frame-box rule."""
from __future__ import annotations

from collections.abc import Sequence as Seq
from dataclasses import dataclass, fields, replace

from PIL import Image

from vptracker.boxes import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_MIN_PIXELS,
    GRAMMARS,
    Box,
    CoordMap,
    clip_xyxy,
    is_valid_xyxy,
    xywh_to_xyxy,
)
from vptracker.config import ConfigError, nearest
from vptracker.datasets.base import Sequence
from vptracker.infer.loop import TrackerBase
from vptracker.models.families import coord_map as family_coord_map
from vptracker.prompts.visual import TEMPLATE_SCALE, TEST_VP_SCALE, VP_COLOR, VP_LINE_WIDTH


@dataclass
class TaskOptions:
    """Knobs of the tracking loops (config keys of the same names, see configs/infer/base.yaml)."""

    family: str = "qwen2_5_vl"
    box_scale: str | None = None          # None: the task's training default; "family": the family's own (vptracker.models.families)
    grammar: str = "bbox"                 # OmniPT priors: "bbox" <bbox>x,y,w,h</bbox> | "qwen" <|box_start|>
    min_pixels: int = DEFAULT_MIN_PIXELS
    max_pixels: int = DEFAULT_MAX_PIXELS
    vp_scale: float = TEST_VP_SCALE
    template_scale: float = TEMPLATE_SCALE
    vp_color: str = VP_COLOR
    line_width: int = VP_LINE_WIDTH       # the outline's width, as the training rows drew it
    visual_prompt: bool = True
    frames_per_sample: int = 8            # OmniPT images per round (docs/paper_readings.md)
    caption_frames: int = 32
    match_iou: float = 0.3                # RMOT/CRMOT: overlap that carries an id into the next round
    tracks_from: str | None = None        # captions: caption the tracks of <dir>/<seq>.txt (SMOT), not gt
    # MOT (vptracker.infer.multi): the answer budget rounds are fitted to (the engine's max_tokens;
    # None: no fitting), the most objects one answer may add, and re-detection every round
    max_answer_tokens: int | None = None
    max_objects: int = 40
    redetect: bool = True

    def __post_init__(self):
        # checked here so a typo fails before the first engine call, not as prompts the model never saw
        if self.grammar not in GRAMMARS:
            raise ConfigError(f"task option grammar={self.grammar!r}, expected one of {GRAMMARS}")

    @classmethod
    def from_dict(cls, data: dict) -> TaskOptions:
        """Options from a mapping; an unknown key is a ConfigError naming the nearest known one
        (``max_visual_tokens`` is a config key that the command turns into ``max_pixels``)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known - {"max_visual_tokens"})
        if unknown:
            raise ConfigError("; ".join(f"unknown task option {k!r}{nearest(k, known)}" for k in unknown))
        # None means "not set" except for box_scale, where None selects the family's convention
        return cls(**{k: data[k] for k in known if k in data and (data[k] is not None or k == "box_scale")})

    def coord_map(self, width: int, height: int) -> CoordMap:
        scale = None if self.box_scale in (None, "family") else self.box_scale
        return family_coord_map(self.family, width, height, scale=scale,
                                min_pixels=self.min_pixels, max_pixels=self.max_pixels)


def load_rgb(path) -> Image.Image:
    with Image.open(path) as im:
        return im.convert("RGB")


def answer_box(model_xyxy: Seq[float] | None, cmap: CoordMap) -> Box | None:
    """A model-scale box as a frame box clipped to the image, or None when unusable.

    Unusable: missing, not finite, inverted or empty, or not overlapping the image at all (the
    released loop then keeps the previous box). A box that only pokes out of the image is clipped.
    """
    if model_xyxy is None:
        return None
    try:
        frame = cmap.to_frame(model_xyxy)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    return frame_box(frame, cmap.width, cmap.height)


def frame_box(box: Seq[float], width: float, height: float) -> Box | None:
    """A frame box clipped to the image, or None when it is unusable (not finite, empty, or outside).

    Every box a tracking loop writes or prompts with passes here or through :func:`answer_box`, so
    none leaves the image.
    """
    if not is_valid_xyxy(box, width, height):
        return None
    clipped = clip_xyxy(box, width, height)
    return clipped if is_valid_xyxy(clipped) else None


def initial_box(seq: Sequence) -> Box | None:
    """The first frame's target box (x1,y1,x2,y2) clipped to the image when usable, else None.

    A ground-truth box partly outside the frame is tracked as the part inside it (the template crop,
    the outline and every written box stay in the image).
    """
    if not seq.tracks:
        return None
    track = seq.tracks[0]
    if len(track.boxes) == 0 or not bool(track.visible[0]):
        return None
    try:
        box = xywh_to_xyxy(track.boxes[0])
    except (TypeError, ValueError):
        return None
    return frame_box(box, seq.width, seq.height)


def frame_number(seq: Sequence, index: int) -> int:
    """The frame number written to MOTChallenge files: the original id when known, else 1-based."""
    if seq.frame_ids is not None and index < len(seq.frame_ids):
        return int(seq.frame_ids[index])
    return index + 1


def windows(n_frames: int, per_window: int) -> list[tuple[int, int]]:
    """``[start, end)`` rounds of OmniPT's iterative loop; each starts on the previous one's last frame."""
    if per_window < 2:
        raise ValueError(f"frames_per_sample must be >= 2 (one prior frame + one new), got {per_window}")
    out, start = [], 0
    while start < n_frames - 1:
        end = min(start + per_window, n_frames)
        out.append((start, end))
        start = end - 1
    return out


def truncate(seq: Sequence, n_frames: int) -> Sequence:
    """The first ``n_frames`` frames of a sequence with its annotations (smoke runs, demos)."""
    if n_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {n_frames}")
    tracks = [replace(t, boxes=t.boxes[:n_frames], visible=t.visible[:n_frames]) for t in seq.tracks]
    ids = seq.frame_ids[:n_frames] if seq.frame_ids is not None else None
    return replace(seq, frames=list(seq.frames[:n_frames]), tracks=tracks, frame_ids=ids)


class SequenceTracker(TrackerBase):
    """A tracker over one sequence: checks it has frames and keeps its box mapping."""

    def __init__(self, seq: Sequence, options: TaskOptions):
        super().__init__(seq.name)
        if len(seq.frames) == 0:
            raise ValueError(f"{seq.dataset}/{seq.name}: sequence has no frames")
        self.seq = seq
        self.options = options
        self.cmap = options.coord_map(seq.width, seq.height)
