"""A deterministic synthetic tracking benchmark, written in the official layouts.

Tests, benchmarks and the CPU demo need tracking data without downloads. This module draws small
videos of textured objects moving over a textured background, with the difficulties real
benchmarks have: a vertical pillar that occludes objects passing behind it, targets that leave the
frame and come back, and distractors of the same shape and texture in another colour (only the
colour, which the language description names and the template shows, tells them apart). Target
colours are drawn per sequence, so a model cannot learn one fixed colour and must use its prompt.

* :func:`write_sot` writes the TNL2K layout ``{train,test}/<seq>/imgs/%05d.jpg``,
  ``groundtruth.txt`` (``x,y,w,h`` ints, ``0,0,0,0`` for absent frames), ``language.txt`` and the
  evaluation toolkit's ``annos/{gt_rect,absent}/<seq>.txt``.
* :func:`write_mot` writes the MOTChallenge layout ``<split>/<seq>/{img1/%06d.jpg, gt/gt.txt,
  seqinfo.ini}`` and ``<split>_seqmap.txt``.

Every sequence is a pure function of ``(seed, split, index)``: the same arguments write the same
bytes. The readers registered here (``synthetic_sot``, ``synthetic_mot``) read those layouts back.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from vptracker.datasets.base import DatasetFormatError, Sequence, Track, register
from vptracker.datasets.mot import read_seqinfo, read_seqmap, tracks_from_table
from vptracker.datasets.sot import read_absent, visibility_from_absent
from vptracker.datasets.textfiles import read_table_lines, read_text, read_xywh

# Object colours; red is left out because it is the visual prompt's outline colour.
COLOURS = {"green": (40, 200, 60), "blue": (40, 80, 230), "yellow": (235, 215, 40),
           "purple": (150, 60, 200), "orange": (245, 140, 30), "cyan": (40, 210, 220),
           "white": (245, 245, 245), "pink": (240, 120, 190)}
SHAPES = ("square", "ball", "diamond")
TEXTURES = ("striped", "checkered", "dotted", "plain")
SPLIT_IDS = {"train": 0, "test": 1, "val": 2}
MIN_VISIBLE = 0.15  # below this visible fraction a frame is annotated absent
BACKGROUND_GREY = 105  # the centre of the background blobs' 60-150 range, which contrast scales about


@dataclass(frozen=True)
class SyntheticConfig:
    """What a synthetic set looks like; the defaults suit a 2-core CPU demo."""

    width: int = 128
    height: int = 128
    frames: int = 40
    size_range: tuple[float, float] = (0.16, 0.3)   # object side as a fraction of the frame side
    speed_range: tuple[float, float] = (0.015, 0.04)  # pixels per frame as a fraction of the side
    distractors: tuple[int, int] = (1, 2)
    occluder_prob: float = 0.5
    leave_prob: float = 0.3       # chance that the target's path runs out of the frame and back
    # How far the background's blobs and grain, and an object's dark texture, stray from the plain
    # colour (1 = full); lower values make the set easier to see, not different in kind.
    background_contrast: float = 1.0
    texture_contrast: float = 1.0
    ext: str = "jpg"


def _rng(seed: int, split: str, index: int, salt: int = 0) -> np.random.Generator:
    return np.random.default_rng([seed, SPLIT_IDS.get(split, 9), index, salt])


def _background(rng: np.random.Generator, width: int, height: int, contrast: float = 1.0) -> np.ndarray:
    """Low-frequency colour blobs plus fine grain: textured, but never as saturated as an object."""
    coarse = rng.uniform(BACKGROUND_GREY - 45, BACKGROUND_GREY + 45, size=(5, 5, 3)).astype(np.uint8)
    smooth = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BILINEAR), dtype=np.float32)
    grain = rng.normal(0, 10, size=(height, width, 1)).astype(np.float32)
    return np.clip(BACKGROUND_GREY + (smooth - BACKGROUND_GREY + grain) * contrast, 0, 255)


def _sprite(shape: str, texture: str, colour: tuple[int, int, int], w: int, h: int,
            contrast: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """RGB pixels and a boolean mask of one object, ``h x w``."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    u, v = (xx + 0.5) / w * 2 - 1, (yy + 0.5) / h * 2 - 1
    if shape == "ball":
        mask = u ** 2 + v ** 2 <= 1.0
    elif shape == "diamond":
        mask = np.abs(u) + np.abs(v) <= 1.0
    else:
        mask = np.ones((h, w), dtype=bool)
    base = np.array(colour, dtype=np.float32)
    dark = base * (1 - 0.65 * contrast)
    period = max(3, min(w, h) // 4)
    if texture == "striped":
        pattern = (yy // period) % 2 == 0
    elif texture == "checkered":
        pattern = ((yy // period) + (xx // period)) % 2 == 0
    elif texture == "dotted":
        pattern = ~((((yy % period) - period / 2) ** 2 + ((xx % period) - period / 2) ** 2) < (period / 3) ** 2)
    else:
        pattern = np.ones((h, w), dtype=bool)
    pixels = np.where(pattern[..., None], base, dark)
    return pixels, mask


class _Mover:
    """A point moving at roughly constant speed, bouncing inside ``[lo, hi]`` per axis."""

    def __init__(self, rng, pos, speed, lo, hi):
        angle = rng.uniform(0, 2 * np.pi)
        self.pos = np.array(pos, dtype=np.float64)
        self.vel = speed * np.array([np.cos(angle), np.sin(angle)])
        self.lo, self.hi, self.rng, self.speed = np.array(lo, float), np.array(hi, float), rng, speed

    def step(self) -> np.ndarray:
        # Small random turns keep paths from being straight lines a model could extrapolate.
        turn = self.rng.normal(0, 0.15)
        c, s = np.cos(turn), np.sin(turn)
        self.vel = np.array([c * self.vel[0] - s * self.vel[1], s * self.vel[0] + c * self.vel[1]])
        self.pos = self.pos + self.vel
        for axis in (0, 1):
            if self.pos[axis] < self.lo[axis] or self.pos[axis] > self.hi[axis]:
                self.vel[axis] = -self.vel[axis]
                self.pos[axis] = np.clip(self.pos[axis], self.lo[axis], self.hi[axis])
        return self.pos.copy()


@dataclass
class _Object:
    shape: str
    texture: str
    colour: str
    w: int
    h: int
    path: np.ndarray  # (T, 2) top-left corners


def _objects(rng, cfg: SyntheticConfig, n_objects: int, same_look: bool, leave: bool) -> list[_Object]:
    side = min(cfg.width, cfg.height)
    shape, texture = rng.choice(SHAPES), rng.choice(TEXTURES)
    colours = rng.permutation(list(COLOURS))[:n_objects]
    objects = []
    for k in range(n_objects):
        w = int(round(rng.uniform(*cfg.size_range) * side))
        h = int(round(w * rng.uniform(0.7, 1.4)))
        if not same_look:
            shape, texture = rng.choice(SHAPES), rng.choice(TEXTURES)
        margin = np.array([w, h]) * (1.2 if (leave and k == 0) else 0.0)
        lo = -margin
        hi = np.array([cfg.width - w, cfg.height - h]) + margin
        start = rng.uniform([0, 0], [cfg.width - w, cfg.height - h])
        mover = _Mover(rng, start, rng.uniform(*cfg.speed_range) * side, lo, hi)
        path = np.stack([start] + [mover.step() for _ in range(cfg.frames - 1)])
        objects.append(_Object(str(shape), str(texture), str(colours[k]), w, h, path))
    return objects


def _paste(canvas: np.ndarray, owner: np.ndarray, pixels: np.ndarray, mask: np.ndarray, x: int, y: int, label: int):
    """Draws a sprite at integer top-left ``(x, y)``, clipped to the canvas, recording who owns each pixel."""
    H, W = canvas.shape[:2]
    h, w = mask.shape
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
    if x1 <= x0 or y1 <= y0:
        return
    m = mask[y0 - y:y1 - y, x0 - x:x1 - x]
    canvas[y0:y1, x0:x1][m] = pixels[y0 - y:y1 - y, x0 - x:x1 - x][m]
    owner[y0:y1, x0:x1][m] = label


def render_scene(objects: list[_Object], cfg: SyntheticConfig, rng: np.random.Generator,
                 occluder: tuple[int, int] | None, depth: list[int]):
    """Frames (uint8) and per-object ``(T, 4)`` clipped boxes with visible fractions ``(T,)``."""
    bg = _background(rng, cfg.width, cfg.height, cfg.background_contrast)
    sprites = [_sprite(o.shape, o.texture, COLOURS[o.colour], o.w, o.h, cfg.texture_contrast) for o in objects]
    frames, boxes, fractions = [], np.zeros((len(objects), cfg.frames, 4)), np.zeros((len(objects), cfg.frames))
    for t in range(cfg.frames):
        canvas = bg + rng.normal(0, 4, size=bg.shape[:2] + (1,)).astype(np.float32)
        owner = np.full((cfg.height, cfg.width), -1, dtype=np.int32)
        for k in depth:
            x, y = (int(round(v)) for v in objects[k].path[t])
            _paste(canvas, owner, *sprites[k], x, y, k)
        if occluder is not None:
            ox, ow = occluder
            canvas[:, ox:ox + ow] = np.array([95, 75, 55], dtype=np.float32) + canvas[:, ox:ox + ow] * 0.1
            owner[:, ox:ox + ow] = -2
        frames.append(np.clip(canvas, 0, 255).astype(np.uint8))
        for k, o in enumerate(objects):
            x, y = objects[k].path[t]
            x1, y1 = max(x, 0.0), max(y, 0.0)
            x2, y2 = min(x + o.w, cfg.width), min(y + o.h, cfg.height)
            full = float(sprites[k][1].sum())
            fractions[k, t] = float((owner == k).sum()) / full if full else 0.0
            boxes[k, t] = (round(x1), round(y1), round(x2 - x1), round(y2 - y1)) if x2 > x1 and y2 > y1 else 0
    return frames, boxes, fractions


def _direction(path: np.ndarray) -> str:
    dx, dy = path[-1] - path[0]
    if abs(dx) > abs(dy):
        return "right" if dx > 0 else "left"
    return "down" if dy > 0 else "up"


def make_sot_sequence(seed: int, split: str, index: int, cfg: SyntheticConfig = SyntheticConfig()):
    """``(name, frames, boxes (T,4) xywh with 0 rows when absent, visible (T,), language)``."""
    rng = _rng(seed, split, index)
    n_distractors = int(rng.integers(cfg.distractors[0], cfg.distractors[1] + 1))
    leave = bool(rng.random() < cfg.leave_prob)
    objects = _objects(rng, cfg, 1 + n_distractors, same_look=True, leave=leave)
    occluder = None
    if rng.random() < cfg.occluder_prob:
        ow = int(rng.integers(max(2, cfg.width // 16), max(3, cfg.width // 7)))
        occluder = (int(rng.integers(cfg.width // 6, cfg.width - cfg.width // 6 - ow)), ow)
    depth = [int(k) for k in rng.permutation(len(objects))]
    frames, boxes, fractions = render_scene(objects, cfg, rng, occluder, depth)
    target = objects[0]
    visible = fractions[0] >= MIN_VISIBLE
    visible[0] = True  # the first frame initialises the tracker and must show the target
    if fractions[0, 0] < MIN_VISIBLE:  # hidden at initialisation: drop the pillar, draw the target on top
        depth = [k for k in depth if k != 0] + [0]
        frames, boxes, fractions = render_scene(objects, cfg, _rng(seed, split, index, 1), None, depth)
        visible = fractions[0] >= MIN_VISIBLE
        visible[0] = True
    gt = np.where(visible[:, None], boxes[0], 0.0)
    language = f"the {target.colour} {target.texture} {target.shape} moving {_direction(target.path)}"
    return f"synth_{split}_{index:04d}", frames, gt, visible, language


def save_frame(frame: np.ndarray, path: Path, ext: str) -> None:
    img = Image.fromarray(frame)
    if ext == "jpg":
        img.save(path, quality=92, subsampling=0)
    else:
        img.save(path)


def write_sot(root: str | Path, splits: dict[str, int], seed: int = 0, cfg: SyntheticConfig = SyntheticConfig()) -> Path:
    """Writes a TNL2K-style SOT set; ``splits`` maps split name to number of sequences."""
    root = Path(root)
    for split, count in splits.items():
        for index in range(count):
            name, frames, gt, visible, language = make_sot_sequence(seed, split, index, cfg)
            seq_dir = root / split / name
            (seq_dir / "imgs").mkdir(parents=True, exist_ok=True)
            for t, frame in enumerate(frames, start=1):
                save_frame(frame, seq_dir / "imgs" / f"{t:05d}.{cfg.ext}", cfg.ext)
            rows = "\n".join(",".join(str(int(v)) for v in box) for box in gt) + "\n"
            (seq_dir / "groundtruth.txt").write_text(rows)
            (seq_dir / "language.txt").write_text(language + "\n")
            for sub, text in (("gt_rect", rows), ("absent", "\n".join("0" if v else "1" for v in visible) + "\n")):
                (root / "annos" / split / sub).mkdir(parents=True, exist_ok=True)
                (root / "annos" / split / sub / f"{name}.txt").write_text(text)
    return root


@dataclass
class MotScene:
    """One synthetic MOT video and what drew it: the objects (colour, shape, texture, path), the
    pillar (``(x, width)`` or None), per-object boxes ``(K, T, 4)`` and visible fractions ``(K, T)``;
    object ``k`` is gt id ``k + 1`` in the frames where its fraction reaches :data:`MIN_VISIBLE`."""

    name: str
    frames: list
    rows: list
    objects: list[_Object]
    occluder: tuple[int, int] | None
    boxes: np.ndarray
    fractions: np.ndarray


def mot_scene(seed: int, split: str, index: int, cfg: SyntheticConfig = SyntheticConfig(), people: int = 4) -> MotScene:
    """The scene :func:`make_mot_sequence` writes, with the generator's knowledge of every object."""
    rng = _rng(seed, split, index, salt=7)
    # Tall objects, half of them allowed to walk out of the frame and back.
    objects = []
    for k in range(people):
        obj = _objects(rng, cfg, 1, same_look=False, leave=bool(rng.random() < 0.5))[0]
        obj.h = int(min(cfg.height * 0.6, obj.w * rng.uniform(1.6, 2.2)))
        objects.append(obj)
    depth = [int(k) for k in rng.permutation(people)]
    occluder = (int(rng.integers(cfg.width // 4, cfg.width // 2)), max(2, cfg.width // 12)) if rng.random() < cfg.occluder_prob else None
    frames, boxes, fractions = render_scene(objects, cfg, rng, occluder, depth)
    rows = []
    for t in range(cfg.frames):
        for k in range(people):
            if fractions[k, t] >= MIN_VISIBLE:
                rows.append([t + 1, k + 1, *boxes[k, t], 1, 1, round(min(fractions[k, t], 1.0), 3)])
    return MotScene(f"SYNTH-{split}-{index:02d}", frames, rows, objects, occluder, boxes, fractions)


def make_mot_sequence(seed: int, split: str, index: int, cfg: SyntheticConfig = SyntheticConfig(), people: int = 4):
    """``(name, frames, gt rows [frame, id, x, y, w, h, 1, 1, visibility])``: pedestrians-like boxes."""
    scene = mot_scene(seed, split, index, cfg, people)
    return scene.name, scene.frames, scene.rows


def write_mot(root: str | Path, splits: dict[str, int], seed: int = 0, cfg: SyntheticConfig = SyntheticConfig(),
              people: int = 4) -> Path:
    """Writes a MOTChallenge-style set; ``splits`` maps split name to number of sequences."""
    root = Path(root)
    for split, count in splits.items():
        names = []
        for index in range(count):
            name, frames, rows = make_mot_sequence(seed, split, index, cfg, people)
            names.append(name)
            seq_dir = root / split / name
            (seq_dir / "img1").mkdir(parents=True, exist_ok=True)
            (seq_dir / "gt").mkdir(exist_ok=True)
            for t, frame in enumerate(frames, start=1):
                save_frame(frame, seq_dir / "img1" / f"{t:06d}.jpg", "jpg")
            (seq_dir / "gt" / "gt.txt").write_text(
                "".join(",".join(str(int(v)) for v in r[:8]) + f",{r[8]}\n" for r in rows))
            (seq_dir / "seqinfo.ini").write_text(
                f"[Sequence]\nname={name}\nimDir=img1\nframeRate=10\nseqLength={cfg.frames}\n"
                f"imWidth={cfg.width}\nimHeight={cfg.height}\nimExt=.jpg\n")
        (root / f"{split}_seqmap.txt").write_text("name\n" + "".join(f"{n}\n" for n in names))
    return root


# --------------------------------------------------------------------------- readers

def _frame_paths(folder: Path) -> list[str]:
    paths = [p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")]
    return [str(p) for p in sorted(paths, key=lambda p: int("".join(c for c in p.stem if c.isdigit()) or 0))]


@register("synthetic_sot")
def read_sot(root: Path, split: str | None = None, **_) -> list[Sequence]:
    """Reads what :func:`write_sot` wrote (the TNL2K layout), with visibility from ``annos/absent``."""
    split_dir = Path(root) / (split or "test")
    if not split_dir.is_dir():
        raise DatasetFormatError(split_dir, None, "a split folder written by write_sot")
    out = []
    for seq_dir in sorted(p for p in split_dir.iterdir() if (p / "groundtruth.txt").is_file()):
        boxes = read_xywh(seq_dir / "groundtruth.txt")
        absent = Path(root) / "annos" / split_dir.name / "absent" / f"{seq_dir.name}.txt"
        visible = (visibility_from_absent(read_absent(absent), len(boxes), absent) if absent.is_file()
                   else (boxes[:, 2:] > 0).all(1))
        frames = _frame_paths(seq_dir / "imgs")
        with Image.open(frames[0]) as im:
            width, height = im.size
        out.append(Sequence(seq_dir.name, "synthetic_sot", frames, width, height, [Track(1, boxes, visible)],
                            language=read_text(seq_dir / "language.txt")))
    return out


@register("synthetic_mot")
def read_mot(root: Path, split: str | None = None, **_) -> list[Sequence]:
    """Reads what :func:`write_mot` wrote (MOTChallenge layout, one Track per id)."""
    split = split or "train"
    seqmap = Path(root) / f"{split}_seqmap.txt"
    if not seqmap.is_file():
        raise DatasetFormatError(seqmap, None, "a seqmap written by write_mot")
    out = []
    for name in read_seqmap(seqmap):
        seq_dir = Path(root) / split / name
        info = read_seqinfo(seq_dir / "seqinfo.ini")
        gt_path = seq_dir / "gt" / "gt.txt"
        table, lines = read_table_lines(gt_path, min_columns=6)
        tracks = tracks_from_table(table, info["length"], gt_path, 1, classes=None, keep_ignored=True, lines=lines)
        frames = [str(seq_dir / info["im_dir"] / f"{t:06d}{info['ext']}") for t in range(1, info["length"] + 1)]
        out.append(Sequence(name, "synthetic_mot", frames, info["width"], info["height"], tracks))
    return out
