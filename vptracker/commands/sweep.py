"""vptracker sweep: one ablation table of the OmniPT paper (5, 6 or 7) from raw data to the table.

``vptracker sweep table6`` (toy scale, CPU: the MOT demo's synthetic set and tiny models),
``vptracker sweep table7 scale=full --dry-run`` (the paper's data and presets: prints every row's
commands and each stage's memory plan). See docs/sweeps.md and :mod:`vptracker.sweep`.
"""
from __future__ import annotations

from vptracker.sweep import run_sweep

HELP = "run an ablation table (table5: presets, table6: stages, table7: frames per sample) and write it"


def add_arguments(parser) -> None:
    parser.add_argument("table", choices=("table5", "table6", "table7"))
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="scale=toy|full, out=DIR, seeds=N, rows=[...], stages=[...], model_preset=NAME, "
                             "frames=N, quick=true; toy: any MOT demo config key; full: full.<key>=value")
    parser.add_argument("--dry-run", action="store_true", help="print every row's commands and the plan's verdict")
    parser.add_argument("--verbose", action="store_true", help="show the training runs' output")


def run(args) -> int:
    import sys

    stream = sys.stdout.write if args.verbose else None
    try:
        run_sweep(args.table, list(args.overrides), dry_run=args.dry_run, stream=stream)
    except RuntimeError as err:   # a failed stage or command: rerunning resumes
        print(f"vptracker sweep: error: {err}", file=sys.stderr)
        return 1
    return 0
