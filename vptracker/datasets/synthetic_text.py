"""The synthetic MOT videos with language: Refer-KITTI expressions and BenSMOT captions.

The generator of :mod:`vptracker.datasets.synthetic` knows every object's colour, shape, texture
and path, so it can say true things about them. This module writes the videos of
:func:`~vptracker.datasets.synthetic.write_mot` (same seed, split and index: the same frames and
boxes) again in two official layouts, read back by the real readers (``refer_kitti``, ``bensmot``):

* :func:`write_refer_kitti`: ``KITTI/training/image_02/<vid>/%06d.png`` (0-based),
  ``KITTI/labels_with_ids/image_02/<vid>/%06d.txt`` (``0 id x/W y/H w/W h/H``) and
  ``expression/<vid>/<name>.json``. Expressions are templates over the objects' attributes ("the
  green striped squares", "the ball", "the objects moving left", "the yellow objects moving up");
  each refers to a proper subset of the video's objects, and its ``label`` lists an object only in
  the frames where the object is annotated and the expression holds (a motion holds in a frame where
  the object's displacement over its two neighbouring frames points that way). Video names follow
  the reader's split rule: test video ``i`` is Refer-KITTI's ``i``-th test video (0005, 0011, 0013,
  0019, so at most four), train video ``i`` the ``i``-th four-digit name that is not a test video.
* :func:`write_bensmot`: ``<split>/<category>/<seq>/{gt/gt.txt, imgs/%03d.jpg, video_caption.txt,
  instance_captions.txt}``; gt ids numbered by first appearance (``1, 2, ...``, as BenSMOT's
  instance names are), one caption per id ("A green striped square moving right, then down, hidden
  behind the pillar for a while.") and one sentence about the whole scene. Sequence names are the
  MOT set's (``SYNTH-<split>-<index>``), so a MOT result file of the MOT set is one of this set.

Every file is a pure function of ``(seed, split, index)`` and the arguments, as in ``synthetic``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from vptracker.datasets.refer_kitti import TEST_VIDEOS
from vptracker.datasets.synthetic import MIN_VISIBLE, MotScene, SyntheticConfig, _rng, mot_scene, save_frame

CATEGORY = "shapes"       # the one BenSMOT category folder of the synthetic set
DIRECTIONS = ("left", "right", "up", "down")
_EXPRESSION_SALT = 11     # the rng stream that picks a video's expressions
_NUMBERS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def refer_kitti_video(split: str, index: int) -> str:
    """The Refer-KITTI video name of sequence ``index`` of ``split`` (see the module docstring)."""
    if split == "test":
        if index >= len(TEST_VIDEOS):
            raise ValueError(f"Refer-KITTI has {len(TEST_VIDEOS)} test videos ({', '.join(TEST_VIDEOS)}); "
                             f"test sequence {index} has no name the reader's split rule keeps in test")
        return TEST_VIDEOS[index]
    names = (f"{n:04d}" for n in range(10000) if f"{n:04d}" not in TEST_VIDEOS)
    for i, name in enumerate(names):
        if i == index:
            return name
    raise ValueError(f"Refer-KITTI layout: no four-digit video name for {split} sequence {index}")


def _plural(shape: str) -> str:
    return shape + "s"


def frame_directions(path: np.ndarray) -> list[set[str]]:
    """Per frame, the directions the object moves in: its displacement over frames ``t-1 .. t+1``
    points that way with at least 30% of its length (a diagonal move holds two directions)."""
    out = []
    for t in range(len(path)):
        dx, dy = path[min(t + 1, len(path) - 1)] - path[max(t - 1, 0)]
        norm = float(np.hypot(dx, dy))
        held = set()
        if norm > 1e-6:
            for name, value in (("right", dx), ("left", -dx), ("down", dy), ("up", -dy)):
                if value >= 0.3 * norm:
                    held.add(name)
        out.append(held)
    return out


def _visible(scene: MotScene) -> np.ndarray:
    return scene.fractions >= MIN_VISIBLE


def candidate_expressions(scene: MotScene) -> list[tuple[str, dict[int, list[int]]]]:
    """``[(sentence, {frame index: [gt ids]})]``: every template whose label holds in at least two
    frames and is not every annotated object in every frame (it refers to a subset), the first
    template of each distinct label."""
    visible = _visible(scene)
    present = [k for k in range(len(scene.objects)) if visible[k].any()]
    moves = [frame_directions(o.path) for o in scene.objects]
    templates: list[tuple[str, dict, str | None]] = []   # (sentence, attributes that must match, motion)
    for o in scene.objects:
        templates += [(f"the {o.colour} objects", {"colour": o.colour}, None),
                      (f"the {_plural(o.shape)}", {"shape": o.shape}, None),
                      (f"the {o.texture} objects", {"texture": o.texture}, None),
                      (f"the {o.colour} {_plural(o.shape)}", {"colour": o.colour, "shape": o.shape}, None),
                      (f"the {o.colour} {o.texture} {_plural(o.shape)}",
                       {"colour": o.colour, "texture": o.texture, "shape": o.shape}, None)]
    templates += [(f"the objects moving {d}", {}, d) for d in DIRECTIONS]
    templates += [(f"the {o.colour} objects moving {d}", {"colour": o.colour}, d)
                  for o in scene.objects for d in DIRECTIONS]

    def holds(k: int, t: int, attributes: dict, motion: str | None) -> bool:
        obj = scene.objects[k]
        return all(getattr(obj, a) == v for a, v in attributes.items()) and (motion is None or motion in moves[k][t])

    frames = range(visible.shape[1])
    everything = {t: [k + 1 for k in present if visible[k, t]] for t in frames}
    seen_label = {json.dumps(sorted((t, ids) for t, ids in everything.items() if ids))}   # not a subset
    out, seen_text = [], set()
    for text, attributes, motion in templates:
        if text in seen_text:
            continue
        seen_text.add(text)
        label = {t: [i for i in everything[t] if holds(i - 1, t, attributes, motion)] for t in frames}
        label = {t: ids for t, ids in label.items() if ids}
        key = json.dumps(sorted(label.items()))
        if len(label) < 2 or key in seen_label:
            continue
        seen_label.add(key)
        out.append((text, label))
    return out


def video_expressions(scene: MotScene, seed: int, split: str, index: int, count: int
                      ) -> list[tuple[str, dict[int, list[int]]]]:
    """``count`` of the candidates (all when there are fewer), drawn without replacement, in the
    order of the templates."""
    candidates = candidate_expressions(scene)
    rng = _rng(seed, split, index, _EXPRESSION_SALT)
    chosen = sorted(rng.permutation(len(candidates))[:count].tolist())
    return [candidates[i] for i in chosen]


def write_refer_kitti(root: str | Path, splits: dict[str, int], seed: int = 0,
                      cfg: SyntheticConfig = SyntheticConfig(), people: int = 4, expressions: int = 3) -> Path:
    """Writes the MOT videos in the Refer-KITTI layout, ``expressions`` per video (see above)."""
    root = Path(root)
    kitti = root / "KITTI"
    for split, count in splits.items():
        for index in range(count):
            vid = refer_kitti_video(split, index)
            scene = mot_scene(seed, split, index, cfg, people)
            images, labels = kitti / "training" / "image_02" / vid, kitti / "labels_with_ids" / "image_02" / vid
            images.mkdir(parents=True, exist_ok=True)
            labels.mkdir(parents=True, exist_ok=True)
            visible = _visible(scene)
            for t, frame in enumerate(scene.frames):
                save_frame(frame, images / f"{t:06d}.png", "png")
                lines = []
                for k in range(len(scene.objects)):
                    if visible[k, t]:
                        x, y, w, h = scene.boxes[k, t]
                        lines.append(f"0 {k + 1} {x / cfg.width:.6f} {y / cfg.height:.6f} "
                                     f"{w / cfg.width:.6f} {h / cfg.height:.6f}\n")
                (labels / f"{t:06d}.txt").write_text("".join(lines))
            folder = root / "expression" / vid
            folder.mkdir(parents=True, exist_ok=True)
            for sentence, label in video_expressions(scene, seed, split, index, expressions):
                data = {"label": {str(t): ids for t, ids in label.items()}, "ignore": [], "video_name": vid,
                        "sentence": sentence}
                (folder / f"{sentence.replace(' ', '-')}.json").write_text(json.dumps(data) + "\n")
    return root


def _path_directions(path: np.ndarray) -> list[str]:
    """The main direction of each half of a path, one when both agree."""
    half = len(path) // 2
    parts = [path[: half + 1], path[half:]] if len(path) > 3 else [path]
    out = []
    for part in parts:
        dx, dy = part[-1] - part[0]
        name = ("right" if dx > 0 else "left") if abs(dx) >= abs(dy) else ("down" if dy > 0 else "up")
        if not out or out[-1] != name:
            out.append(name)
    return out


def _a(word: str) -> str:
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


def hidden_reason(scene: MotScene, k: int) -> str | None:
    """Why object ``k`` is unannotated in some frame between its first and last annotated ones:
    ``"leaving the view"`` (its box mostly outside the image), ``"hidden behind the pillar"`` or
    ``"hidden behind another object"``, the first that holds in any such frame; None when never hidden."""
    o, visible = scene.objects[k], _visible(scene)[k]
    shown = np.flatnonzero(visible)
    reasons = set()
    for t in range(shown[0], shown[-1] + 1):
        if visible[t]:
            continue
        x, y, w, h = scene.boxes[k, t]
        x0 = scene.objects[k].path[t][0]
        if w * h < MIN_VISIBLE * o.w * o.h:
            reasons.add(0)
        elif scene.occluder is not None and x0 < scene.occluder[0] + scene.occluder[1] and x0 + o.w > scene.occluder[0]:
            reasons.add(1)
        else:
            reasons.add(2)
    names = ("leaving the view", "hidden behind the pillar", "hidden behind another object")
    return names[min(reasons)] if reasons else None


def instance_caption(scene: MotScene, k: int) -> str:
    """One true sentence about object ``k``: its look, its motion, whether it enters late and why it
    is out of sight for a while (:func:`hidden_reason`)."""
    o = scene.objects[k]
    text = f"{_a(o.colour).capitalize()} {o.texture} {o.shape} moving {', then '.join(_path_directions(o.path))}"
    reason = hidden_reason(scene, k)
    if reason:
        text += f", {reason} for a while"
    if not _visible(scene)[k, 0]:
        text += ", appearing after the start"
    return text + "."


def video_caption(scene: MotScene, order: list[int]) -> str:
    """One sentence about the scene: how many objects, what they are (in order of appearance), the pillar."""
    n = len(order)
    things = [f"{_a(scene.objects[k].colour)} {scene.objects[k].shape}" for k in order]
    listed = things[0] if n == 1 else ", ".join(things[:-1]) + " and " + things[-1]
    count = _NUMBERS[n] if n < len(_NUMBERS) else str(n)
    text = f"{count.capitalize()} object{'s' if n != 1 else ''} move{'s' if n == 1 else ''} over a grey background: "
    text += listed
    if scene.occluder is not None:
        text += ", passing a brown pillar"
    return text + "."


def write_bensmot(root: str | Path, splits: dict[str, int], seed: int = 0,
                  cfg: SyntheticConfig = SyntheticConfig(), people: int = 4) -> Path:
    """Writes the MOT videos in the BenSMOT layout with their captions (see above)."""
    root = Path(root)
    digits = max(3, len(str(cfg.frames)))
    for split, count in splits.items():
        for index in range(count):
            scene = mot_scene(seed, split, index, cfg, people)
            visible = _visible(scene)
            shown = [k for k in range(len(scene.objects)) if visible[k].any()]
            order = sorted(shown, key=lambda k: (int(np.flatnonzero(visible[k])[0]), k))   # first appearance
            new_id = {k + 1: i + 1 for i, k in enumerate(order)}
            seq_dir = root / split / CATEGORY / scene.name
            (seq_dir / "imgs").mkdir(parents=True, exist_ok=True)
            (seq_dir / "gt").mkdir(exist_ok=True)
            for t, frame in enumerate(scene.frames, start=1):
                save_frame(frame, seq_dir / "imgs" / f"{t:0{digits}d}.jpg", "jpg")
            rows = sorted(([r[0], new_id[r[1]], *r[2:]] for r in scene.rows), key=lambda r: (r[0], r[1]))
            (seq_dir / "gt" / "gt.txt").write_text(
                "".join(",".join(str(int(v)) for v in r[:8]) + f",{r[8]}\n" for r in rows))
            names: dict[str, int] = {}
            lines = []
            for k in order:
                shape = scene.objects[k].shape
                lines.append(f"{shape}{names.get(shape, 0)}: {instance_caption(scene, k)}\n")
                names[shape] = names.get(shape, 0) + 1
            (seq_dir / "instance_captions.txt").write_text("".join(lines))
            (seq_dir / "video_caption.txt").write_text(video_caption(scene, order) + "\n")
    return root
