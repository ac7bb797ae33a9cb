"""vptracker make-tiny-model: a random-weight Qwen-VL model for offline tests and demos."""
from __future__ import annotations

HELP = "build a tiny random-weight Qwen-VL model, tokenizer and processor offline"


def add_arguments(parser) -> None:
    from vptracker.tiny_model import FAMILIES

    parser.add_argument("--family", choices=FAMILIES, required=True)
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--vision-depth", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compact-vocab", action="store_true",
                        help="special tokens right after the small BPE (~640 rows, not 151,680); needs the "
                             "vptracker_<family> templates, which the vptracker engines and stage configs use")
    parser.add_argument("--merge-size", type=int, default=2, choices=(1, 2),
                        help="the ViT's spatial merge; 1 = one visual token per patch, 4x the tokens of a real "
                             "Qwen-VL (the CPU demo's model.merge_size; use abs or norm boxes with it)")


def run(args) -> int:
    from vptracker.tiny_model import make_tiny_model

    out = make_tiny_model(args.family, args.out, args.hidden, args.layers, args.vision_depth, args.seed,
                          compact_vocab=args.compact_vocab, merge_size=args.merge_size)
    print(f"tiny {args.family} model written to {out}")
    return 0
