"""vptracker plan: memory per GPU process of a stage or inference config, before any GPU is used.

``vptracker plan stage1_format_grpo model_preset=qwen2_5_vl_72b --nnodes 3 --nproc-per-node 8``
``vptracker plan configs/infer/omnipt_mot.yaml --model qwen2_5_vl_72b``
Exits 1 when the plan cannot fit, after naming the setting to change.
"""
from __future__ import annotations

from pathlib import Path

from vptracker.config import load_config, load_yaml
from vptracker.models.families import family_of_model_type
from vptracker.plan.memory import Cluster
from vptracker.plan.rows import row_lengths
from vptracker.plan.run import plan_infer, plan_stage, resolve_model
from vptracker.train.stages import load_stage

HELP = "memory per GPU for a stage or inference config and a cluster shape; refuses plans that cannot fit"


def add_arguments(parser) -> None:
    parser.add_argument("config", help="a stage name (configs/stages/<name>.yaml), a stage YAML, or an inference "
                                       "YAML (configs/infer/*.yaml)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, as for train / infer")
    parser.add_argument("--model", help="a model directory with config.json, a config.json, or a preset name "
                                        "(default: the config's model)")
    parser.add_argument("--nnodes", type=int, help="nodes (default: $NNODES or 1)")
    parser.add_argument("--nproc-per-node", dest="nproc", type=int, help="GPUs per node (default: $NPROC_PER_NODE or 8)")
    parser.add_argument("--gpu-mem", help="memory of one GPU, e.g. 80GB (default: $GPU_MEM or 80GB)")
    parser.add_argument("--frame-size", default="1920x1080", help="inference configs: frame size WxH to plan for")
    parser.add_argument("--data", help="prepared rows (a folder of *.jsonl or one file): plan at their real lengths")


def is_infer_config(path: Path) -> bool:
    return path.suffix in (".yaml", ".yml") and path.is_file() and "task" in load_yaml(path) \
        and "kind" not in load_yaml(path)


def run(args) -> int:
    cluster = Cluster.from_env(args.nnodes, args.nproc, args.gpu_mem)
    path = Path(args.config)
    if is_infer_config(path):
        try:
            width, height = (int(v) for v in args.frame_size.lower().split("x"))
        except ValueError:
            raise SystemExit(f"--frame-size {args.frame_size!r}: expected WxH, e.g. 1920x1080") from None
        plan = plan_infer(load_config(path, args.overrides), cluster, args.model, (width, height))
    else:
        cfg = load_stage(args.config, args.overrides)
        lengths = None
        if args.data:
            max_pixels = int((cfg.get("swift") or {}).get("max_pixels") or 12845056)
            shapes = resolve_model(cfg.get("model"), args.model, cfg.get("init"))
            lengths = row_lengths(args.data, max_pixels, family_of_model_type(shapes.model_type))
            print(f"data: {lengths.describe()}")
        plan = plan_stage(cfg, cluster, args.model, lengths)
    print(plan.render())
    return 0 if plan.fits else 1
