"""Prepared OmniPT shards stay byte-identical when the builders or the length budget get faster.

The digests below were computed with the row builders and the length budget as they were before
rows were counted once and in batches (one ``vptracker prepare`` per policy over small datasets in
the official layouts, several OmniPT tasks each). A digest covers every shard's bytes (the fixture's
folder replaced by ``ROOT``) and the card's ``lengths``: a change to either is a change to what
training reads, and must be deliberate (update the digest in the same commit, saying why).
"""
from __future__ import annotations

import hashlib
import json
import random

import layouts as fx
import pytest

from vptracker.models.qwen_tokenizer import find_tokenizer
from vptracker.tasks.prepare import prepare

N_FRAMES = 40
HD = (640, 360)   # 301 image tokens at the paper's pixels: 16 of them go over the budgets below


def _walkers(n: int, seed: int, width: int, height: int) -> dict[int, dict[int, tuple]]:
    """``n`` people with boxes of one to three digits in 0-1000, some entering or leaving midway."""
    rng = random.Random(seed)
    people = {}
    for tid in range(1, n + 1):
        first = 1 if tid % 3 else rng.randint(5, 20)
        last = N_FRAMES if tid % 4 else rng.randint(first + 4, N_FRAMES)
        x, y = rng.uniform(-20, width - 30), rng.uniform(0, height - 40)
        w, h = rng.uniform(4, width / 3), rng.uniform(8, height / 2)
        per = {}
        for f in range(first, last + 1):
            x, y = x + rng.uniform(-6, 9), y + rng.uniform(-3, 3)
            per[f] = (round(x, 2), round(y, 2), round(w, 2), round(h, 2))
        people[tid] = per
    return people


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    root = tmp_path_factory.mktemp("golden")
    out = {name: root / name for name in ("dancetrack", "lasot", "refer_kitti_v2", "crtrack", "bensmot")}
    for i in range(2):
        fx.write_mot(out["dancetrack"], "train", f"dancetrack000{i + 1}", N_FRAMES,
                     fx.mot_rows(_walkers(7, i, *HD)), size=HD, pad=8)
    walk = _walkers(1, 9, *HD)[1]
    track = [walk.get(f + 1, (0, 0, 0, 0)) for f in range(N_FRAMES)]
    occluded = [int(8 <= f < 12) for f in range(N_FRAMES)]
    fx.write_lasot(out["lasot"], "person", 1, track, occluded, [0] * N_FRAMES, "a person walking", size=HD)
    (out["lasot"] / "training_set.txt").write_text("person-1\n")
    cars = {f: {1: (5 + f, 10, 20, 10), 2: (60, 30, 24, 12), 3: (2 * f, 40, 30, 20)} for f in range(N_FRAMES)}
    fx.write_refer_kitti(out["refer_kitti_v2"], "0001", N_FRAMES, cars,
                         {"moving-cars": {f: [1, 3] for f in range(N_FRAMES)},
                          "left-car": {f: [1] for f in range(N_FRAMES // 2)}}, size=(320, 96))
    views = {f"View{k}": fx.mot_rows({tid: {f: (x + 3 * k, y, w, h) for f, (x, y, w, h) in per.items()}
                                      for tid, per in _walkers(3, 20, 160, 120).items()}) for k in (1, 2, 3)}
    fx.write_crtrack(out["crtrack"], "train", "Gate2", views, N_FRAMES, {"people walking": [1, 2, 3]},
                     size=(160, 120))
    out["crtrack"] = out["crtrack"] / "CRTrack_In-domain"
    people = _walkers(3, 30, *HD)
    fx.write_bensmot(out["bensmot"], "train", "dance", "v1", N_FRAMES, fx.mot_rows(people), "People dance.",
                     [(f"person{i}", f"A person in coat number {i}.") for i in range(len(people))], size=HD)
    return root, out


def _config(roots: dict, out, length_budget: dict) -> dict:
    def job(task, source, options, samples=24):
        return {"task": task, "options": options, "sources": {source: {"dataset": source, "split": "train"}},
                "samples": {"train": samples}}

    jobs = {"sot": job("omnipt_sot", "lasot", {"frames": 16}),
            "mot": job("omnipt_mot", "dancetrack", {"frames": 16}),
            "mot_jitter": job("omnipt_mot", "dancetrack", {"frames": 12, "prior_jitter": 0.1}),
            "mot_grpo": job("omnipt_mot_grpo", "dancetrack", {"frames": 12}),
            "rmot": job("omnipt_rmot", "refer_kitti_v2", {"frames": 16}),
            "crmot": job("omnipt_crmot", "crtrack", {"frames": 15}),
            "smot": job("omnipt_mot", "bensmot", {"frames": 32}),
            "location": job("pretext_location", "dancetrack", {"frames": 8}),
            "detection": job("pretext_detection", "dancetrack", {"scale": "resized", "grammar": "qwen"}),
            "video_caption": job("omnipt_video_caption", "bensmot", {"frames": 32}, "all"),
            "instance_caption": job("omnipt_instance_caption", "bensmot", {"frames": 32}, "all")}
    return {"seed": 3, "out": str(out), "workers": 1, "shard_size": 10, "roots": {k: str(v) for k, v in roots.items()},
            "jobs": jobs, "length_budget": length_budget}


def digest(folder, root, card: dict) -> str:
    sha = hashlib.sha256()
    for path in sorted(folder.glob("*.jsonl")):
        sha.update(path.name.encode() + b"\0" + path.read_bytes().replace(str(root).encode(), b"ROOT"))
    # counted_with names the tokenizer's folder, which moves with the checkout: keep only what counted
    lengths = json.loads(json.dumps(card["lengths"]))
    for jobs in lengths.values():
        for stats in jobs.values():
            stats["counted_with"] = str(stats.get("counted_with", "")).split(" (", 1)[0]
    sha.update(json.dumps(lengths, sort_keys=True).encode())
    return sha.hexdigest()


# policy, max_length, tokenizer -> digest
CASES = {
    ("fewer_frames", 4500, None): "adabcc3384986775ebbf89d56cc9c96948ac22a33f530ccc1f47ac55ad86b35f",
    ("lower_max_pixels", 4500, None): "87aa52a8c083fd8fde91cbc9b50fb361378cc39823c6da056d0ceec08d153116",
    ("stop", None, None): "b20e137de0eed2ed05b886bc46c2b80a0904dc2eb25f2cdff8f5282038935c54",
    ("fewer_frames", 4000, "estimate"): "664df4f1412eca1ab63ffda6753e0c9c06fa7f0fcbfb2a7545a9f664ddef3b58",
}


@pytest.mark.filterwarnings("ignore:.*reach past the image border")  # on purpose: clipped boxes are rows too
@pytest.mark.parametrize("case", list(CASES), ids=lambda c: f"{c[0]}-{c[1]}-{c[2] or 'qwen'}")
def test_prepared_shards_match_the_golden_digest(roots, tmp_path, case):
    policy, max_length, tokenizer = case
    if tokenizer is None and find_tokenizer() is None:
        pytest.skip("the real Qwen tokenizer is not built: `python -m vptracker.models.qwen_tokenizer` (scripts/setup.sh)")
    root, sources = roots
    config = _config(sources, tmp_path / "out", {"max_length": max_length, "policy": policy, "tokenizer": tokenizer})
    card = prepare(config, progress=False)
    changed = sum(stats["changed_by_policy"] for stats in card["lengths"]["train"].values())
    assert (changed > 0) == (policy != "stop"), card["lengths"]
    assert digest(tmp_path / "out", root, card) == CASES[case]
