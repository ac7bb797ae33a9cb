"""vptracker make-tiny-model: a random-weight model of any family (Qwen-VL, InternVL2.5, LLaVA-NeXT) for offline
tests and demos."""
from __future__ import annotations

from vptracker.tiny.model import make_real_width_model, make_tiny_model, tiny_families

HELP = ("build a tiny random-weight model of any family (or a real-width, few-layer Qwen-VL preset), tokenizer "
        "and processor offline")


def add_arguments(parser) -> None:
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--family", choices=tiny_families(),
                       help="a tiny model of this family (widths from --hidden); InternVL2.5 and LLaVA-NeXT are "
                            "built in transformers' native classes (swift: internvl / internvl_hf, "
                            "llama3_llava_next_hf) with a compact vocabulary")
    which.add_argument("--preset", help="a model preset of configs/models/ (e.g. qwen2_5_vl_3b): its real widths and "
                                        "vocabulary size from its published config.json, only --layers / "
                                        "--vision-layers deep")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--hidden", type=int, default=64, help="--family only")
    parser.add_argument("--layers", type=int, default=2, help="LLM decoder layers")
    parser.add_argument("--vision-depth", "--vision-layers", dest="vision_depth", type=int, default=None,
                        help="ViT layers (default: 2 for --family, 4 for --preset)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tokenizer", help="--preset only: a tokenizer directory to use (e.g. the real Qwen one "
                                            "written by `python -m vptracker.models.qwen_tokenizer --out DIR`)")
    parser.add_argument("--compact-vocab", action="store_true",
                        help="--family (Qwen-VL) only: special tokens right after the small BPE (~640 rows, not 151,680); "
                             "needs the vptracker_<family> templates, which the vptracker engines and stage "
                             "configs use")
    parser.add_argument("--merge-size", type=int, default=2, choices=(1, 2),
                        help="--family (Qwen-VL) only: the ViT's spatial merge; 1 = one visual token per patch, 4x the tokens "
                             "of a real Qwen-VL (the CPU demo's model.merge_size; use abs or norm boxes with it)")


def run(args) -> int:
    if args.preset:
        out = make_real_width_model(args.preset, args.out, args.layers, args.vision_depth or 4, args.seed,
                                    tokenizer_dir=args.tokenizer)
        print(f"{args.preset} widths, {args.layers} LLM and {args.vision_depth or 4} ViT layers: written to {out}")
        return 0

    out = make_tiny_model(args.family, args.out, args.hidden, args.layers, args.vision_depth or 2, args.seed,
                          compact_vocab=args.compact_vocab, merge_size=args.merge_size)
    print(f"tiny {args.family} model written to {out}")
    return 0
