"""vptracker prepare: dataset readers + a task builder -> sharded ms-swift JSONL and a dataset card."""
from __future__ import annotations

import json

from vptracker.config import ConfigError, apply_overrides, load_config, parse_pairs, parse_value
from vptracker.datasets import available
from vptracker.tasks import get_task, tasks
from vptracker.tasks.prepare import direct_config, prepare

HELP = "build ms-swift JSONL training data from benchmark datasets (config or one dataset + task)"


def add_arguments(parser) -> None:
    parser.add_argument("--config", help="a data config (configs/data/*.yaml)")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="config overrides, e.g. jobs.vptracker_sot.sources.tnl2k.root=/data/TNL2K")
    direct = parser.add_argument_group("direct form (instead of --config)")
    direct.add_argument("--dataset", help="a registered dataset reader, e.g. tnl2k")
    direct.add_argument("--root", help="the dataset's root folder")
    direct.add_argument("--split", default=None, help="the dataset split to read (e.g. train)")
    direct.add_argument("--task", help="a registered task, e.g. vptracker_sot")
    direct.add_argument("--num-samples", default="all", help="rows to draw, or 'all' (each unit once)")
    direct.add_argument("--seed", type=int, default=0)
    direct.add_argument("--out", help="output folder for *.jsonl and card.json")
    direct.add_argument("--output-split", default="train", help="name of the written split (file prefix)")
    direct.add_argument("--option", action="append", default=[], metavar="key=value",
                        help="a task option (repeatable), e.g. --option scale=norm1000")
    direct.add_argument("--shard-size", type=int, default=100_000)
    direct.add_argument("--workers", default="auto", help="processes building shards ('auto': one per core); "
                        "the output is the same for any value")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--list", action="store_true", help="list the registered datasets and tasks, then exit")


def run(args) -> int:
    """Bad settings raise :class:`vptracker.config.ConfigError` (the CLI prints one line, exit 2)."""
    if args.list:
        print("datasets: " + ", ".join(available()))
        for name in tasks():
            options = ", ".join(f"{k}={v}" for k, v in get_task(name).options.items())
            print(f"task {name}: {options}")
        return 0
    if args.config:
        config = load_config(args.config, args.overrides)
    else:
        missing = [f"--{n}" for n in ("dataset", "root", "task", "out") if not getattr(args, n)]
        if missing:
            raise ConfigError(f"give --config, or all of {', '.join(missing)}")
        config = direct_config(args.dataset, args.root, args.task, parse_value(args.num_samples, "--num-samples"),
                               args.seed, args.out, args.split, args.output_split, parse_pairs(args.option, "--option"),
                               shard_size=args.shard_size)
        config["workers"] = parse_value(args.workers, "--workers")
        config = apply_overrides(config, args.overrides)
    card = prepare(config, progress=False if args.no_progress else None)
    print(json.dumps(card["totals"], sort_keys=True))
    return 0
