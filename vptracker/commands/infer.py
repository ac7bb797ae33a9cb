"""vptracker infer: run a tracking task over a dataset with a model, resumable and sharded.

Config form: ``vptracker infer --config configs/infer/vptracker_sot.yaml model=DIR root=DIR out=DIR``.
Direct form: ``vptracker infer --task vptracker_sot --model DIR [--adapter DIR] --dataset otb --root DIR
--out DIR [--shard i/n]``. Flags override the config file; ``key=value`` overrides override both.

The task options a checkpoint was trained under come from its ``vptracker_contract.json`` (written
by ``vptracker train``, see :mod:`vptracker.tasks.contract`): options the config leaves unset are
filled from it, a set one that disagrees is an error (exit 2); a model without the file keeps the
defaults below and says so.

An output folder belongs to one run (see :mod:`vptracker.infer.run_folder`): a folder made with
another model or other options is refused unless ``--force``. Model folders are data: one whose
config files name their own code is refused unless ``--trust-remote-code``, which is recorded in
the run's ``infer_config.<task>.json`` with every decoding parameter.
"""
from __future__ import annotations

import sys
from pathlib import Path

import vptracker.infer
from vptracker.config import ConfigError, apply_overrides, load_config, parse_override
from vptracker.datasets import load
from vptracker.infer import CallableEngine, merge, parse_shard, plan, run_task
from vptracker.infer.common import TaskOptions, truncate
from vptracker.infer.engine import Decoding
from vptracker.infer.outputs import atomic_write_text
from vptracker.infer.run_folder import claim, run_id, run_identity, shard_marker
from vptracker.infer.runner import is_finished, resolve_options
from vptracker.infer.settings import check_settings
from vptracker.infer.sides import tracking
from vptracker.models.families import FAMILIES, detect_family, get_family
from vptracker.models.folder import check_model_dir
from vptracker.tasks import get_task, trackable_tasks

HELP = "track every sequence of a dataset with a model (batched, resumable, sharded)"

REPO_CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "infer"
DEFAULT_TASK = "vptracker_sot"
_FLAGS = ("task", "model", "adapter", "family", "backend", "dataset", "root", "split", "out", "shard", "concurrency",
          "loop", "max_tokens", "limit", "max_frames", "trust_remote_code")


def add_arguments(parser) -> None:
    parser.add_argument("--config", help=f"YAML config (default: {REPO_CONFIGS / 'base.yaml'})")
    parser.add_argument("--task", help=" | ".join(trackable_tasks()))
    parser.add_argument("--model", help="model directory")
    parser.add_argument("--adapter", help="LoRA adapter directory")
    parser.add_argument("--family", choices=sorted(FAMILIES))
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
    parser.add_argument("--trust-remote-code", dest="trust_remote_code", action="store_true", default=None,
                        help="allow a model folder to run its own Python code (its auto_map); off by default: "
                             "read that code first. Recorded in the run's infer_config.<task>.json")
    parser.add_argument("--force", action="store_true",
                        help="--out holds another run's results (other model or options): remove them and track again")
    parser.add_argument("--merge-only", action="store_true",
                        help="only rebuild responses.jsonl / captions.json in --out from finished shards")
    parser.add_argument("--describe", action="store_true",
                        help="print the output folder, tensor-parallel degree and run id, tab-separated, and stop "
                             "(infer.sh reads them; settings are checked as for a run)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")


def resolve_config(args) -> dict:
    """The run's settings: the YAML file, then the flags, then ``key=value`` overrides, checked
    against the typed inference config (:mod:`vptracker.infer.settings`; unknown keys refused)."""
    path = args.config or (REPO_CONFIGS / "base.yaml")
    if args.config and not Path(args.config).is_file():
        raise ConfigError(f"--config {args.config}: no such file")
    cfg = load_config(path) if Path(path).is_file() else {}
    from_command_line = set()
    for key in _FLAGS:
        value = getattr(args, key, None)
        if value is not None:
            cfg[key] = value
            from_command_line.add(key)
    overrides = [parse_override(item) for item in args.overrides]
    from_command_line.update(".".join(parts) for parts, _ in overrides)

    def source_of(key: str) -> str:
        return "command line" if key in from_command_line else str(path)

    return check_settings(apply_overrides(cfg, overrides), source_of)


def _options(cfg: dict, family: str, task):
    """The run's full task options and the contract they follow (the checkpoint's, else the task's
    defaults): unset options come from the checkpoint's contract file, then from the defaults."""
    from dataclasses import asdict

    options = dict(cfg.get("options") or {})
    tokens = options.pop("max_visual_tokens", None)
    if tokens:
        factor = get_family(family).resize_factor
        if factor is None:
            raise ConfigError(f"options.max_visual_tokens: family {family} tiles the image; its token count "
                             "is not set by a pixel budget (remove the option)")
        options["max_pixels"] = int(tokens) * factor ** 2
    options["family"] = family
    options, contract = resolve_options(task, options, cfg["model"], cfg.get("adapter"))
    return asdict(TaskOptions.from_dict(options)), contract


def _sequences(cfg: dict):
    for key in ("dataset", "root"):
        if not cfg.get(key):
            raise ConfigError(f"missing {key}: pass --{key} or {key}=...")
    if not Path(cfg["root"]).is_dir():
        raise ConfigError(f"root={cfg['root']}: the dataset root does not exist (or is not a folder)")
    sequences = load(cfg["dataset"], cfg["root"], split=cfg.get("split"), **(cfg.get("dataset_options") or {}))
    wanted = cfg.get("sequences")
    if wanted:
        wanted = [wanted] if isinstance(wanted, str) else [str(w) for w in wanted]
        missing = sorted(set(wanted) - {s.name for s in sequences})
        if missing:
            raise ConfigError(f"sequences: not in {cfg['dataset']} at {cfg['root']}: {', '.join(missing)}")
        sequences = [s for s in sequences if s.name in set(wanted)]
    if cfg.get("limit"):
        sequences = sequences[:int(cfg["limit"])]
    if cfg.get("max_frames"):
        sequences = [truncate(s, int(cfg["max_frames"])) for s in sequences]
    return sequences


def _nothing_to_do(request):
    raise RuntimeError("every unit was finished; the engine should not have been called")


def describe_run(cfg: dict) -> dict:
    """The run a config makes: family, task options, decoding, identity and run id (no model loaded)."""
    if not cfg.get("model"):
        raise ConfigError("missing model: pass --model DIR or model=DIR")
    cfg = {**cfg, "task": cfg.get("task") or DEFAULT_TASK}   # infer.sh and the workers must agree on the id
    trust = False if cfg.get("trust_remote_code") is None else cfg["trust_remote_code"]
    if not isinstance(trust, bool):
        raise ConfigError(f"trust_remote_code={trust!r}: expected true or false")
    if Path(cfg["model"]).is_dir() or not cfg.get("family"):
        check_model_dir(cfg["model"], trust)   # before anything reads the folder: refuses folders naming code
    family = cfg.get("family") or detect_family(cfg["model"], trust)
    task = get_task(cfg["task"])
    tracking(task)   # a training-only task is refused here, before any model is read
    options, contract = _options(cfg, family, task)
    decoding = Decoding.from_config(cfg).to_dict()
    identity = run_identity(cfg, family, options, decoding)
    return {"family": family, "options": options, "decoding": decoding, "trust_remote_code": trust,
            "identity": identity, "run_id": run_id(identity), "special_tokens": list(contract.special_tokens)}


def _describe(cfg: dict) -> int:
    """``out<TAB>tensor-parallel degree<TAB>run id`` for infer.sh. Under DRY_RUN=1 a run that cannot
    be described yet (weights a chain has not written) prints RUN_ID in its place."""
    import os

    tp = int((cfg.get("engine_kwargs") or {}).get("tensor_parallel_size") or 1)
    try:
        rid = describe_run(cfg)["run_id"]
    except Exception:
        if os.environ.get("DRY_RUN") != "1":
            raise
        rid = "RUN_ID"
    print(cfg.get("out") or "", tp, rid, sep="\t")
    return 0


def run(args) -> int:
    cfg = resolve_config(args)
    if args.describe:
        return _describe(cfg)
    if not cfg.get("out"):
        raise ConfigError("missing out: pass --out DIR or out=DIR")
    out = Path(cfg["out"])
    if args.merge_only:
        written = merge(out)
        print(f"merged {', '.join(str(p) for p in written.values()) or 'nothing (no finished units)'}")
        return 0
    task = get_task(cfg.get("task") or DEFAULT_TASK)
    side = tracking(task)
    shard = parse_shard(cfg.get("shard"))
    run = describe_run(cfg)
    family, options = run["family"], run["options"]
    if cfg.get("cpu_threads"):
        import torch

        torch.set_num_threads(int(cfg["cpu_threads"]))
    sequences = _sequences(cfg)
    all_units = side.units(sequences)
    record = {**cfg, "task": task.name, **{k: run[k] for k in ("family", "options", "decoding", "trust_remote_code")},
              "run_id": run["run_id"], "identity": run["identity"]}
    state = claim(out, record, [rel for u in all_units for rel in u.outputs], force=bool(getattr(args, "force", False)))
    print(f"{out}: {state} (run {run['run_id']})", file=sys.stderr)
    if run["trust_remote_code"]:
        print(f"trust_remote_code is on: Python code shipped in {cfg['model']} may run", file=sys.stderr)
    concurrency = int(cfg.get("concurrency") or 16)
    if all(is_finished(u, out) for u in plan(all_units, shard)):
        engine = CallableEngine(_nothing_to_do)   # a finished run restarts without loading the model
    else:
        engine_kwargs = dict(cfg.get("engine_kwargs") or {})
        if (cfg.get("backend") or "transformers") == "vllm":
            limit = side.images_per_request(TaskOptions.from_dict(options))
            engine_kwargs.setdefault("limit_mm_per_prompt", {"image": limit})
        engine = vptracker.infer.make_engine(
            cfg["model"], family, cfg.get("adapter"), cfg.get("backend") or "transformers",
            max_batch_size=int(cfg.get("max_batch_size") or concurrency),
            decoding=Decoding(**run["decoding"]), trust_remote_code=run["trust_remote_code"],
            min_pixels=int(options["min_pixels"]), max_pixels=int(options["max_pixels"]),
            special_tokens=run["special_tokens"], torch_dtype=cfg.get("torch_dtype"),
            engine_kwargs=engine_kwargs)
    summary = run_task(task, engine, sequences, out, options, shard=shard, concurrency=concurrency,
                       loop=cfg.get("loop") or "batched", progress=bool(cfg.get("progress", True)))
    if summary.locked:
        print(f"{len(summary.locked)} units were being tracked by another process on {out} and were left to it "
              f"(e.g. {summary.locked[0]!r})", file=sys.stderr)
    if cfg.get("shard") and not summary.locked:  # infer.sh waits for every shard's marker of this run
        atomic_write_text(shard_marker(out, run["run_id"], shard), f"{len(summary.finished)}\n")
    stats = summary.stats
    print(f"{task.name}: {summary.planned} units in shard {shard[0]}/{shard[1]}, {summary.skipped} already done, "
          f"{len(summary.finished)} tracked; {stats.frames} frames in {stats.wall_s:.1f} s "
          f"({stats.frames_per_s:.2f} frames/s, {stats.engine_calls} engine calls, "
          f"{100 * stats.outside_engine_frac:.1f}% outside the engine) -> {out}", file=sys.stderr)
    return 0
