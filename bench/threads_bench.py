"""CPU thread settings for the demos' tiny models, with the machine to itself and beside one competing
CPU-bound process, side by side in one run.

    .venv/bin/python bench/threads_bench.py [--steps 30] [--loaded-steps 10] [--settings threads2,...]

Each setting runs in its own process (the OpenMP runtime reads its environment once, at start): the
SOT demo's model (``configs/demo/demo.yaml``: tiny Qwen3-VL, hidden 128, 3 layers, compact
vocabulary, 64 px frames, one visual token per 16 px patch) takes ``--steps`` SFT steps of batch 8 on
rows of the demo's shape (template + search image, ~230 prompt tokens, a ~35-token answer), then one
tracking pass (greedy decoding of 16 requests of 48 tokens). "loaded" starts one competing process
first (``nice -n 19``, or ``--nice 0`` for a neighbour as busy as us): ``--competitor busy`` a
Python busy loop that never sleeps; ``--competitor torch`` another torch job (two threads, bursts of
small matrix products with 2 ms pauses, as a test suite or a second small training run runs). The
kernel's scheduler treats them differently: a task that never sleeps soon has used its small nice-19
share, while one that wakes again and again is let in each time it wakes, and then takes a core away
from one of our two threads while the other waits for it at the next barrier. The table prints
seconds per SFT step and per tracking pass, and loaded / idle.

Settings: ``threads2`` (the demos' default until now: 2 OpenMP threads, active waiting),
``threads2_passive`` (the same threads, ``OMP_WAIT_POLICY=PASSIVE``: a thread that waits for the one
whose core is taken sleeps instead of spinning; same arithmetic, so the same numbers),
``threads2_spin10k`` / ``threads2_spin1k`` (active waiting cut short: ``GOMP_SPINCOUNT``, same arithmetic),
``threads1`` (one thread: other sums, other last bits), ``threads2_interop1`` (one inter-op thread),
``auto`` (the demos' ``threads: auto``: the child counts the idle cores when it starts, after the
competitor, and takes that many threads, at most two).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SETTINGS = {
    "threads2": {"threads": 2, "env": {}},
    "threads2_passive": {"threads": 2, "env": {"OMP_WAIT_POLICY": "PASSIVE"}},
    "threads2_spin10k": {"threads": 2, "env": {"GOMP_SPINCOUNT": "10000"}},
    "threads2_spin1k": {"threads": 2, "env": {"GOMP_SPINCOUNT": "1000"}},
    "threads1": {"threads": 1, "env": {}},
    "threads2_interop1": {"threads": 2, "env": {}, "interop": 1},
    "auto": {"threads": "auto", "env": {}},
}
COMPETITORS = {
    "busy": "while True: pass",
    "torch": ("import time, torch\ntorch.set_num_threads(2)\nx = torch.randn(192, 192)\nwhile True:\n"
              "    for _ in range(40):\n        x = torch.tanh(x @ x.T / 192)\n    time.sleep(0.002)"),
}


def worker(setting: str, steps: int, model_dir: Path) -> dict:
    """Runs in the child process: SFT steps and one tracking pass under ``setting``."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    spec = SETTINGS[setting]
    threads = spec["threads"]
    if threads == "auto":
        from vptracker.demo.pipeline import AUTO_MOST
        from vptracker.infer.threads import choose_threads

        threads = choose_threads("auto", most=AUTO_MOST)
    torch.set_num_threads(threads)
    if spec.get("interop"):
        torch.set_num_interop_threads(spec["interop"])
    torch.manual_seed(0)
    processor = AutoProcessor.from_pretrained(model_dir)
    model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.float32)
    from PIL import Image

    images = [Image.new("RGB", (64, 64), (90 + 10 * i, 120, 150)) for i in range(2)]
    prompt = ("<|vision_start|><|image_pad|><|vision_end|> " * 2) + "track the target " * 20
    answer = '```json\n{"visible": "yes", "bbox": [12, 34, 56, 60]}\n```'
    batch = processor(text=[prompt + answer] * 8, images=images * 8, return_tensors="pt", padding=True)
    batch["labels"] = batch["input_ids"].clone()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-4)
    model.train()
    start = time.perf_counter()
    for _ in range(steps):
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    step_s = (time.perf_counter() - start) / steps
    model.eval()
    requests = processor(text=[prompt] * 16, images=images * 16, return_tensors="pt", padding=True)
    start = time.perf_counter()
    with torch.no_grad():
        model.generate(**requests, max_new_tokens=48, min_new_tokens=48, do_sample=False)
    return {"setting": setting, "threads": threads, "step_s": step_s, "track_s": time.perf_counter() - start}


def _build_model(folder: Path) -> Path:
    from vptracker.demo import demo_config
    from vptracker.demo.pipeline import make_model

    cfg = demo_config(False)
    return make_model(cfg, folder)


def _run(setting: str, steps: int, model_dir: Path) -> dict:
    spec = SETTINGS[setting]
    env = {**os.environ, **spec["env"]}
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.pop(var, None)
        if spec["threads"] != "auto":
            env[var] = str(spec["threads"])
    if "OMP_WAIT_POLICY" not in spec["env"]:
        env.pop("OMP_WAIT_POLICY", None)
    out = subprocess.run([sys.executable, __file__, "--worker", setting, "--steps", str(steps),
                          "--model", str(model_dir)], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--loaded-steps", type=int, default=10)
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--nice", type=int, default=19, help="the competing process's niceness (0: as busy as us)")
    parser.add_argument("--competitor", choices=sorted(COMPETITORS), default="busy",
                        help="busy: a loop that never sleeps; torch: another small torch job, in bursts")
    parser.add_argument("--session", choices=["same", "new"], default="same",
                        help="new: the competitor in a session of its own, as a job started from another terminal "
                             "(the kernel's autogroups then share the CPU between sessions and niceness counts "
                             "only inside one)")
    parser.add_argument("--worker")
    parser.add_argument("--model")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.steps, Path(args.model))))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = _build_model(Path(tmp))
        rows = []
        for setting in args.settings.split(","):
            idle = _run(setting, args.steps, model_dir)
            hog = subprocess.Popen(["nice", "-n", str(args.nice), sys.executable, "-c", COMPETITORS[args.competitor]],
                                   env={k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_"))},
                                   start_new_session=args.session == "new")
            try:
                time.sleep(1.0)
                loaded = _run(setting, args.loaded_steps, model_dir)
            finally:
                hog.kill()
                hog.wait()
            rows.append((setting, idle, loaded))
            print(f"{setting}: idle {idle['threads']} threads {idle['step_s']:.3f} s/step {idle['track_s']:.2f} s/pass; "
                  f"loaded {loaded['threads']} threads {loaded['step_s']:.3f} s/step {loaded['track_s']:.2f} s/pass",
                  flush=True)
    print(f"\ncompetitor: {args.competitor}, nice {args.nice}, session {args.session}")
    print("\n| setting | threads idle / loaded | SFT step idle (s) | loaded (s) | loaded/idle | tracking pass idle (s) "
          "| loaded (s) | loaded/idle |\n|---|---|---:|---:|---:|---:|---:|---:|")
    for setting, idle, loaded in rows:
        print(f"| {setting} | {idle['threads']} / {loaded['threads']} | {idle['step_s']:.3f} | {loaded['step_s']:.3f} | {loaded['step_s'] / idle['step_s']:.1f}x "
              f"| {idle['track_s']:.2f} | {loaded['track_s']:.2f} | {loaded['track_s'] / idle['track_s']:.1f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
