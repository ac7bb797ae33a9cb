"""vptracker train: run one stage config, or chain the OmniPT stages, over ms-swift."""
from __future__ import annotations

from vptracker.train import StageFailed, run_chain, run_stage

HELP = "train a stage (configs/stages/NAME.yaml) or chain the OmniPT stages ('all') over ms-swift"


def add_arguments(parser) -> None:
    parser.add_argument("--stage", required=True,
                        help="a stage name in configs/stages (e.g. stage3_sft, vptracker_sft), a YAML path, "
                             "or 'all' for the OmniPT chain (select with stages=[...])")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the exact commands for the cluster shape in NPROC_PER_NODE/NNODES/... and exit")
    parser.add_argument("--force", action="store_true", help="retrain stages whose manifest says they finished")
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="allow a model folder whose configs name custom code (auto_map) and let ms-swift "
                             "fetch hub ids; same as trust_remote_code=true, recorded in the manifest")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="config overrides, e.g. profile=cpu model=/models/qwen lr=2e-5 frames=8; "
                             "'<stage>.key=value' applies to one stage of a chain")


def run(args) -> int:
    """Bad settings raise ConfigError/StageConfigError before anything starts (the CLI: one line per
    problem, exit 2); a stage command that fails is reported with its log (exit 1)."""
    import sys

    overrides = list(args.overrides) + (["trust_remote_code=true"] if args.trust_remote_code else [])
    try:
        if args.stage == "all":
            out = run_chain(overrides, dry_run=args.dry_run, force=args.force)
        else:
            out = run_stage(args.stage, overrides, dry_run=args.dry_run, force=args.force)
    except StageFailed as err:
        print(f"vptracker train: error: {err}", file=sys.stderr)
        return 1
    if not args.dry_run:
        print(f"final weights: {out}")
    return 0
