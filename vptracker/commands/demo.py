"""vptracker demo: the whole pipeline on a CPU (synthetic data -> SFT -> GRPO -> tracking -> report)."""
from __future__ import annotations

HELP = "run the whole pipeline on a CPU and show that training works (writes report.md, summary.json)"


def add_arguments(parser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help="smoke run (configs/demo/quick.yaml, under 2 minutes): plumbing, not learning")
    parser.add_argument("--out", default="outputs/demo", help="output folder (emptied first; default %(default)s)")
    parser.add_argument("--verbose", action="store_true",
                        help="also show ms-swift's, transformers' and the training runs' own output "
                             "(otherwise in <out>/demo.log)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="config overrides, e.g. sft.max_steps=300 model.hidden=128")


def run(args) -> int:
    import os

    # Nothing here may reach a hub: the model is built locally and the data is synthetic.
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "MODELSCOPE_OFFLINE"):
        os.environ.setdefault(var, "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("WANDB_MODE", "disabled")
    from vptracker.demo import run_demo  # after the variables above: the hub libraries it loads read them

    run_demo(args.out, quick=args.quick, overrides=args.overrides, verbose=args.verbose)
    return 0
