"""vptracker infer: run a tracking task over a dataset with a model, resumable and sharded.

Config form: ``vptracker infer --config configs/infer/vptracker_sot.yaml model=DIR root=DIR out=DIR``.
Direct form: ``vptracker infer --task vptracker_sot --model DIR [--adapter DIR] --dataset otb --root DIR
--out DIR [--shard i/n]``. Flags override the config file; ``key=value`` overrides override both.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

HELP = "track every sequence of a dataset with a model (batched, resumable, sharded)"

REPO_CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "infer"
_FLAGS = ("task", "model", "adapter", "family", "backend", "dataset", "root", "split", "out", "shard", "concurrency",
          "loop", "max_tokens", "limit", "max_frames")


def add_arguments(parser) -> None:
    parser.add_argument("--config", help=f"YAML config (default: {REPO_CONFIGS / 'base.yaml'})")
    parser.add_argument("--task", help="vptracker_sot | omnipt_sot | omnipt_mot | omnipt_rmot | omnipt_crmot | "
                                       "omnipt_caption")
    parser.add_argument("--model", help="model directory")
    parser.add_argument("--adapter", help="LoRA adapter directory")
    parser.add_argument("--family", choices=("qwen2_vl", "qwen2_5_vl", "qwen3_vl"))
    parser.add_argument("--backend", choices=("transformers", "vllm"))
    parser.add_argument("--dataset", help="dataset reader name (see vptracker.datasets)")
    parser.add_argument("--root", help="dataset root directory")
    parser.add_argument("--split")
    parser.add_argument("--out", help="output directory")
    parser.add_argument("--shard", help="i/n: run this worker's share (0-based i)")
    parser.add_argument("--concurrency", type=int, help="sequences stepped together")
    parser.add_argument("--loop", choices=("batched", "async"))
    parser.add_argument("--max-tokens", dest="max_tokens", type=int)
    parser.add_argument("--limit", type=int, help="only the first N sequences")
    parser.add_argument("--max-frames", dest="max_frames", type=int, help="only the first N frames of each sequence")
    parser.add_argument("--merge-only", action="store_true",
                        help="only rebuild responses.jsonl / captions.json in --out from finished shards")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")


def resolve_config(args) -> dict:
    from vptracker.config import apply_overrides, load_config

    path = args.config or (REPO_CONFIGS / "base.yaml")
    if args.config and not Path(args.config).is_file():
        raise FileNotFoundError(f"config {args.config} does not exist")
    cfg = load_config(path) if Path(path).is_file() else {}
    for key in _FLAGS:
        value = getattr(args, key, None)
        if value is not None:
            cfg[key] = value
    return apply_overrides(cfg, args.overrides)


def _options(cfg: dict, family: str) -> dict:
    from vptracker.boxes import FAMILY_FACTOR

    options = dict(cfg.get("options") or {})
    tokens = options.pop("max_visual_tokens", None)
    if tokens:
        options["max_pixels"] = int(tokens) * FAMILY_FACTOR[family] ** 2
    options["family"] = family
    return options


def _sequences(cfg: dict):
    from vptracker.datasets import load

    for key in ("dataset", "root"):
        if not cfg.get(key):
            raise ValueError(f"missing {key}: pass --{key} or {key}=...")
    if not Path(cfg["root"]).is_dir():
        raise FileNotFoundError(f"dataset root {cfg['root']} does not exist")
    sequences = load(cfg["dataset"], cfg["root"], split=cfg.get("split"), **(cfg.get("dataset_options") or {}))
    wanted = cfg.get("sequences")
    if wanted:
        wanted = [wanted] if isinstance(wanted, str) else [str(w) for w in wanted]
        missing = sorted(set(wanted) - {s.name for s in sequences})
        if missing:
            raise ValueError(f"sequences not in {cfg['dataset']}: {', '.join(missing)}")
        sequences = [s for s in sequences if s.name in set(wanted)]
    if cfg.get("limit"):
        sequences = sequences[:int(cfg["limit"])]
    if cfg.get("max_frames"):
        from vptracker.infer.common import truncate

        sequences = [truncate(s, int(cfg["max_frames"])) for s in sequences]
    return sequences


def _nothing_to_do(request):
    raise RuntimeError("every unit was finished; the engine should not have been called")


def run(args) -> int:
    from vptracker.infer import CallableEngine, get_task, make_engine, merge, parse_shard, plan, run_task
    from vptracker.infer.common import TaskOptions
    from vptracker.infer.engine import detect_family
    from vptracker.infer.outputs import atomic_write_text
    from vptracker.infer.runner import images_per_request, is_finished

    cfg = resolve_config(args)
    if not cfg.get("out"):
        raise ValueError("missing out: pass --out DIR or out=DIR")
    out = Path(cfg["out"])
    if args.merge_only:
        written = merge(out)
        print(f"merged {', '.join(str(p) for p in written.values()) or 'nothing (no finished units)'}")
        return 0
    task = get_task(cfg.get("task") or "vptracker_sot")
    shard = parse_shard(cfg.get("shard"))
    if not cfg.get("model"):
        raise ValueError("missing model: pass --model DIR or model=DIR")
    if cfg.get("cpu_threads"):
        import torch

        torch.set_num_threads(int(cfg["cpu_threads"]))
    family = cfg.get("family") or detect_family(cfg["model"])
    options = _options(cfg, family)
    sequences = _sequences(cfg)
    concurrency = int(cfg.get("concurrency") or 16)
    if all(is_finished(u, out) for u in plan(task.units(sequences), shard)):
        engine = CallableEngine(_nothing_to_do)   # a finished run restarts without loading the model
    else:
        engine_kwargs = dict(cfg.get("engine_kwargs") or {})
        if (cfg.get("backend") or "transformers") == "vllm":
            limit = images_per_request(task.name, TaskOptions.from_dict(options))
            engine_kwargs.setdefault("limit_mm_per_prompt", {"image": limit})
        engine = make_engine(
            cfg["model"], family, cfg.get("adapter"), cfg.get("backend") or "transformers",
            max_batch_size=int(cfg.get("max_batch_size") or concurrency),
            max_tokens=int(cfg.get("max_tokens") or 256), temperature=float(cfg.get("temperature") or 0.0),
            min_pixels=int(options["min_pixels"]), max_pixels=int(options["max_pixels"]),
            special_tokens=task.special_tokens, torch_dtype=cfg.get("torch_dtype"),
            engine_kwargs=engine_kwargs)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "infer_config.json", json.dumps({**cfg, "family": family, "options": options}, indent=1,
                                                            default=str) + "\n")
    summary = run_task(task, engine, sequences, out, options, shard=shard, concurrency=concurrency,
                       loop=cfg.get("loop") or "batched", progress=bool(cfg.get("progress", True)))
    if cfg.get("shard"):  # infer.sh waits for every shard's marker before merging
        atomic_write_text(out / ".shards" / f"{shard[0]}-of-{shard[1]}.done", f"{len(summary.finished)}\n")
    stats = summary.stats
    print(f"{task.name}: {summary.planned} units in shard {shard[0]}/{shard[1]}, {summary.skipped} already done, "
          f"{len(summary.finished)} tracked; {stats.frames} frames in {stats.wall_s:.1f} s "
          f"({stats.frames_per_s:.2f} frames/s, {stats.engine_calls} engine calls, "
          f"{100 * stats.outside_engine_frac:.1f}% outside the engine) -> {out}", file=sys.stderr)
    return 0
