"""Small sets of all nine datasets the README's recipes read, in their official layouts, with the
train and test/val splits each recipe uses, under one folder as ``DATA_ROOT`` expects it:
``TNL2K/{train,test}``, ``TNLLT/`` (with its own split lists), ``LaSOT/``, ``DanceTrack/{train,val,test}``,
``MOT17/``, ``Refer-KITTI-V2/`` (train video 0001, the four test videos), ``CRTrack/CRTrack_In-domain``
(train and test scenes, ``gt_test``), ``BenSMOT/{train,test}``, ``SYNTH-PEDES/``.

Every video is 34 frames long (32-frame caption rows fit) with people who enter and leave.
"""
from __future__ import annotations

from pathlib import Path

import layouts as fx
from omnipt_data import N_FRAMES, SIZE, _people


def _single(n: int, dx: int = 1) -> list[tuple]:
    return [(10 + dx * i % 40, 12, 16, 20) for i in range(n)]


def write_all(data: Path) -> None:
    """Writes the nine datasets under ``data`` (the README's ``DATA_ROOT``)."""
    for split, names in (("train", ("car_a", "car_b")), ("test", ("car_c", "car_d"))):
        for k, name in enumerate(names):
            fx.write_tnl2k(data / "TNL2K", split, name, _single(12, 1 + k), f"the green car number {k}", size=SIZE)
    for k, name in enumerate(("lt_a", "lt_b", "lt_c")):
        boxes = _single(14, 2 + k)
        absent = [1 if i in (5, 6) else 0 for i in range(14)]
        fx.write_tnllt(data / "TNLLT", name, [b if not a else (0, 0, 0, 0) for b, a in zip(boxes, absent)], absent,
                       f"the long-term target {k}", size=SIZE)
    (data / "TNLLT" / "train.txt").write_text("lt_a\nlt_b\n")
    (data / "TNLLT" / "test.txt").write_text("lt_c\n")
    track = [(10 + i, 12, 16, 20) for i in range(N_FRAMES)]
    fx.write_lasot(data / "LaSOT", "person", 1, track, [0] * N_FRAMES, [0] * N_FRAMES, "a person walking", size=SIZE)
    (data / "LaSOT" / "training_set.txt").write_text("person-1\n")
    for split, name in (("train", "dancetrack0001"), ("val", "dancetrack0004")):
        fx.write_mot(data / "DanceTrack", split, name, N_FRAMES, fx.mot_rows(_people()), size=SIZE, pad=8)
    fx.write_mot(data / "DanceTrack", "test", "dancetrack0003", N_FRAMES, None, size=SIZE, pad=8)
    fx.write_mot(data / "MOT17", "train", "MOT17-02-FRCNN", N_FRAMES, fx.mot_rows(_people(2)), size=SIZE)
    cars = {f: {1: (5 + f, 10, 20, 10), 2: (60, 30, 24, 12)} for f in range(N_FRAMES)}
    expressions = {"moving-cars": {f: [1, 2] for f in range(N_FRAMES)},
                   "left-car": {f: [1] for f in range(N_FRAMES // 2)}}
    for video in ("0001", "0005", "0011", "0013", "0019"):       # train 0001; the four test videos
        fx.write_refer_kitti(data / "Refer-KITTI-V2", video, N_FRAMES, cars, expressions, size=SIZE)
    for split, scene in (("train", "Gate2"), ("test", "Floor")):
        views = {f"View{k}": fx.mot_rows({tid: {f: (x + k, y, w, h) for f, (x, y, w, h) in per.items()}
                                          for tid, per in _people(2).items()}) for k in (1, 2, 3)}
        fx.write_crtrack(data / "CRTrack", split, scene, views, N_FRAMES, {"people walking": [1, 2, 4]},
                         per_query_gt=split == "test", size=SIZE)
    people = _people(2)
    for split, name in (("train", "v1"), ("test", "v2")):
        fx.write_bensmot(data / "BenSMOT", split, "dance", name, N_FRAMES, fx.mot_rows(people), "People walk by.",
                         [(f"person{i}", f"A person in coat number {i}.") for i in range(len(people))], size=SIZE)
    fx.write_synth_pedes(data / "SYNTH-PEDES", [(i % 3, f"a pedestrian wearing colour {i}") for i in range(6)])
