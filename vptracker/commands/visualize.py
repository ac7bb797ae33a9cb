"""vptracker visualize: predicted and ground-truth boxes on the frames, as a gif/mp4 and a PNG contact sheet."""
from __future__ import annotations

import sys
from pathlib import Path

from vptracker.datasets import load
from vptracker.infer.visualize import find_prediction, render_sequence

HELP = "draw predicted and ground-truth boxes on a dataset's frames (gif or mp4 and a PNG contact sheet)"


def add_arguments(parser) -> None:
    parser.add_argument("--pred", required=True, help="result directory written by `vptracker infer`")
    parser.add_argument("--dataset", required=True, help="dataset reader name")
    parser.add_argument("--root", required=True, help="dataset root directory")
    parser.add_argument("--split")
    parser.add_argument("--out", required=True, help="where the animations and contact sheets go")
    parser.add_argument("--sequences", nargs="*", help="only these sequences (default: every one with a result)")
    parser.add_argument("--format", choices=("gif", "mp4"), default="gif")
    parser.add_argument("--max-frames", type=int, help="only the first N frames")
    parser.add_argument("--stride", type=int, default=1, help="draw every k-th frame")
    parser.add_argument("--sheet-frames", type=int, default=8, help="frames on the contact sheet")
    parser.add_argument("--width", type=int, default=480, help="maximum width of the drawn frames")
    parser.add_argument("--corners", action="store_true", help="rows hold x1,y1,x2,y2 (CRMOT predictions)")


def run(args) -> int:
    if not Path(args.pred).is_dir():
        raise FileNotFoundError(f"prediction directory {args.pred} does not exist")
    sequences = load(args.dataset, args.root, split=args.split)
    if args.sequences:
        missing = sorted(set(args.sequences) - {s.name for s in sequences})
        if missing:
            raise ValueError(f"sequences not in {args.dataset}: {', '.join(missing)}")
        sequences = [s for s in sequences if s.name in set(args.sequences)]
    drawn = 0
    for seq in sequences:
        pred = find_prediction(args.pred, seq)
        if pred is None:
            if args.sequences:
                raise FileNotFoundError(f"no result for {seq.name} under {args.pred}")
            continue
        paths = render_sequence(seq, pred, args.out, args.format, args.max_frames, args.stride, args.sheet_frames,
                                args.width, args.corners)
        print(f"{seq.name}: {paths['animation']} {paths['sheet']}")
        drawn += 1
    if drawn == 0:
        print(f"no results under {args.pred} match {args.dataset} sequences", file=sys.stderr)
        return 1
    return 0
