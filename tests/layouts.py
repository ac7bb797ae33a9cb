"""Tiny datasets written in every official on-disk layout, for tests and smoke checks.

Each writer takes plain annotations (``x,y,w,h`` boxes per frame, ids, texts) and writes small
generated frames plus the benchmark's annotation files exactly as the release lays them out, so
that the readers are exercised on the layout itself. Frames are flat grey with the first track's
box filled, which lets pixel-level checks find the target.
"""
from __future__ import annotations

import json
from collections.abc import Sequence as Seq
from pathlib import Path

import numpy as np
from PIL import Image

Box = Seq[float]


def write_frames(folder: Path, n: int, size: tuple[int, int], ext: str = ".jpg", pad: int = 6, start: int = 1,
                 boxes: Seq[Box] | None = None, skip: Seq[int] = ()) -> list[Path]:
    """``n`` frames numbered from ``start`` (zero-padded to ``pad``); ``skip`` leaves those indices out."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        if i in skip:
            continue
        pixels = np.full((size[1], size[0], 3), 90, dtype=np.uint8)
        if boxes is not None and i < len(boxes):
            x, y, w, h = (int(round(v)) for v in boxes[i])
            if w > 0 and h > 0:
                pixels[max(y, 0):max(y + h, 0), max(x, 0):max(x + w, 0)] = (40, 200, 60)
        path = folder / f"{start + i:0{pad}d}{ext}"
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


def _box_lines(boxes: Seq[Box], sep: str = ",", newline: str = "\n") -> str:
    return "".join(sep.join(f"{v:g}" for v in b) + newline for b in boxes)


def write_tnl2k(root: Path, split: str, name: str, boxes: Seq[Box], language: str, size=(64, 48),
                ext: str = ".jpg", pad: int = 5, absent: Seq[int] | None = None, annos: Path | None = None,
                newline: str = "\n") -> Path:
    seq = root / split / name
    write_frames(seq / "imgs", len(boxes), size, ext, pad, boxes=boxes)
    (seq / "groundtruth.txt").write_text(_box_lines(boxes, newline=newline))
    (seq / "language.txt").write_text(language + newline)
    if annos is not None:
        (annos / "gt_rect").mkdir(parents=True, exist_ok=True)
        (annos / "absent").mkdir(parents=True, exist_ok=True)
        (annos / "gt_rect" / f"{name}.txt").write_text(_box_lines(boxes))
        flags = absent if absent is not None else [0] * len(boxes)
        (annos / "absent" / f"{name}.txt").write_text("".join(f"{f}\n" for f in flags))
    return seq


def write_tnllt(root: Path, name: str, boxes: Seq[Box], absent: Seq[int], language: str, size=(64, 48)) -> Path:
    seq = root / name
    write_frames(seq / "imgs", len(boxes), size, ".png", 5, boxes=boxes)
    (seq / "groundtruth.txt").write_text("".join(",".join(f"{v:.2f}" for v in b) + "\n" for b in boxes))
    (seq / "absent_label.txt").write_text("".join(f"{f}\n" for f in absent))
    (seq / "attributes.txt").write_text("1,0,0,1\n")
    (seq / "language.txt").write_text(language + "\n")
    return seq


def write_lasot(root: Path, cls: str, index: int, boxes: Seq[Box], occlusion: Seq[int], out_of_view: Seq[int],
                language: str, size=(64, 48)) -> Path:
    seq = root / cls / f"{cls}-{index}"
    write_frames(seq / "img", len(boxes), size, ".jpg", 8, boxes=boxes)
    (seq / "groundtruth.txt").write_text(_box_lines(boxes))
    (seq / "full_occlusion.txt").write_text(",".join(str(f) for f in occlusion))
    (seq / "out_of_view.txt").write_text(",".join(str(f) for f in out_of_view))
    (seq / "nlp.txt").write_text(language)
    return seq


def write_otb(root: Path, name: str, boxes: Seq[Box], sep: str = "\t", size=(64, 48), extra_frames: int = 0) -> Path:
    seq = root / name
    write_frames(seq / "img", len(boxes) + extra_frames, size, ".jpg", 4, boxes=boxes)
    (seq / "groundtruth_rect.txt").write_text(_box_lines(boxes, sep))
    return seq


def mot_rows(tracks: dict[int, dict[int, Box]], flag: int = 1, cls: int = 1) -> list[list[float]]:
    """``frame,id,x,y,w,h,flag,class,visibility`` rows from ``{id: {frame (1-based): box}}``."""
    return [[f, tid, *box, flag, cls, 1.0] for tid, per in tracks.items() for f, box in sorted(per.items())]


def write_rows(path: Path, rows: Seq[Seq[float]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(",".join(f"{v:g}" for v in r) + "\n" for r in rows))


def write_mot(root: Path, split: str, name: str, n_frames: int, rows: Seq[Seq[float]] | None, size=(64, 48),
              pad: int = 6, seqmap: bool = True, first_boxes: Seq[Box] | None = None) -> Path:
    seq = root / split / name
    write_frames(seq / "img1", n_frames, size, ".jpg", pad, boxes=first_boxes)
    (seq / "seqinfo.ini").write_text(
        f"[Sequence]\nname={name}\nimDir=img1\nframeRate=30\nseqLength={n_frames}\nimWidth={size[0]}\n"
        f"imHeight={size[1]}\nimExt=.jpg\n")
    if rows is not None:
        write_rows(seq / "gt" / "gt.txt", rows)
    if seqmap:
        path = root / f"{split}_seqmap.txt"
        names = path.read_text().split()[1:] if path.is_file() else []
        path.write_text("name\n" + "".join(f"{n}\n" for n in sorted(set(names) | {name})))
    return seq


def write_refer_kitti(root: Path, video: str, n_frames: int, labels: dict[int, dict[int, Box]],
                      expressions: dict[str, dict[int, list[int]]], size=(80, 40), v2: bool = True) -> Path:
    """``labels``: ``{frame (0-based): {track_id: x,y,w,h in pixels}}``; expressions: name -> frame -> ids."""
    kitti = root / "KITTI"
    write_frames(kitti / "training" / "image_02" / video, n_frames, size, ".png", 6, start=0)
    lab_dir = kitti / "labels_with_ids" / "image_02" / video
    lab_dir.mkdir(parents=True, exist_ok=True)
    W, H = size
    for f, objs in labels.items():
        (lab_dir / f"{f:06d}.txt").write_text("".join(
            f"0 {tid} {x / W:.6f} {y / H:.6f} {w / W:.6f} {h / H:.6f}\n" for tid, (x, y, w, h) in objs.items()))
    exp_dir = root / "expression" / video
    exp_dir.mkdir(parents=True, exist_ok=True)
    for name, label in expressions.items():
        data = {"label": {str(f): ids for f, ids in label.items()}, "ignore": [], "video_name": video,
                "sentence": name.replace("-", " ")}
        if v2:
            data["raw_sentence"] = name
        (exp_dir / f"{name}.json").write_text(json.dumps(data))
    return root


def write_crtrack(root: Path, split: str, scene: str, views: dict[str, list[list[float]]], n_frames: int,
                  queries: dict[str, list[int]], per_query_gt: bool = False, size=(64, 48)) -> Path:
    """``views``: ``{"View1": gt rows}`` with ids shared across views; ``queries``: sentence -> ids."""
    base = root / "CRTrack_In-domain"
    for view, rows in views.items():
        write_mot(base / "images", split, f"{scene}_{view}", n_frames, rows, size, seqmap=False)
    (base / "tackled_text").mkdir(parents=True, exist_ok=True)
    (base / "tackled_text" / f"{scene}.txt").write_text(
        "".join(f"{scene}_{s}:{','.join(str(i) for i in ids)}\n" for s, ids in queries.items()))
    if per_query_gt:
        for sentence, ids in queries.items():
            for view, rows in views.items():
                write_rows(base / "gt_test" / f"{scene}_{sentence}" / "gt" / f"{view}.txt",
                           [r for r in rows if int(r[1]) in ids])
    return base


def write_bensmot(root: Path, split: str, category: str, name: str, n_frames: int, rows: Seq[Seq[float]],
                  video_caption: str, instance_captions: Seq[tuple[str, str]], size=(64, 48)) -> Path:
    seq = root / split / category / name
    write_frames(seq / "imgs", n_frames, size, ".jpg", 3)
    write_rows(seq / "gt" / "gt.txt", rows)
    (seq / "video_caption.txt").write_text(video_caption + "\n")
    (seq / "instance_captions.txt").write_text("".join(f"{n}: {c}\n" for n, c in instance_captions))
    (seq / "interactions.graphml").write_text("<graphml/>\n")
    return seq


def write_synth_pedes(root: Path, entries: Seq[tuple[int, str]], size=(32, 64)) -> Path:
    """``entries``: ``(person_id, caption)``; one image each under ``root/Part1/``."""
    records = []
    for i, (pid, caption) in enumerate(entries):
        rel = f"Part1/{pid}/{i}.jpg"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size, (30 * (pid % 8), 100, 150)).save(root / rel)
        records.append({"id": pid, "file_path": rel, "attributes": [], "captions": [caption, caption + "."],
                        "prompt_caption": caption})
    (root / "synthpedes_dataset.json").write_text(json.dumps(records))
    return root
