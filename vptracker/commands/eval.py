"""vptracker eval: score result files from any tracker with the official protocols.

Every subcommand prints a table and writes ``<out>/summary.json`` (tracking numbers in percent)
and a per-sequence CSV; ``report`` prints the paper's tables with our summaries beside every published
cell; ``package`` writes test-server files (DanceTrack, BenSMOT).
Exit status: 0 scored, 2 bad input (one line naming the file, line and what was expected), 1 an
internal error (a bug: the traceback follows).
"""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

from vptracker.config import ConfigError
from vptracker.datasets.base import DatasetFormatError
from vptracker.eval import sot_eval
from vptracker.eval.captions import CaptionInputError, evaluate_captions, format_caption_table, load_caption_file
from vptracker.eval.mot import MOT_BENCHMARKS, evaluate_mot, format_mot_table
from vptracker.eval.package import package_bensmot, package_dancetrack, read_seqmap
from vptracker.eval.plots import plot_curves
from vptracker.eval.report import write_report
from vptracker.eval.rmot import evaluate_rmot
from vptracker.eval.sot import SOT_PROTOCOLS, ResultError
from vptracker.eval.sot_eval import SOT_READERS, format_sot_table, sot_ground_truth, write_sot_outputs

HELP = "evaluate SOT, MOT/RMOT/SMOT, CRMOT and caption results (official protocols)"


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="eval_task", metavar="TASK", required=True)

    p = sub.add_parser("sot", help="success / precision / normalised precision (TNL2K, TNLLT, LaSOT, OTB), "
                       "GOT-10k AO / SR")
    p.add_argument("--protocol", choices=SOT_PROTOCOLS.names(), required=True)
    p.add_argument("--gt-root", required=True, help="dataset folder or TNL2K toolkit folder (gt_rect/, absent/)")
    p.add_argument("--dataset", choices=SOT_READERS, help="the reader of --gt-root (default: told from the layout)")
    p.add_argument("--split", help="the split the reader takes from --gt-root (e.g. val for GOT-10k)")
    p.add_argument("--results", required=True, nargs="+", metavar="[NAME=]DIR",
                   help="folders of <seq>.txt files; several trackers share the plots, the first is summary.json")
    p.add_argument("--out", required=True)
    p.add_argument("--skip-missing", action="store_true",
                   help="score only sequences that have a result file (the others are listed)")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--benchmark-name", help="name in the report (default: TNL2K for the toolkit layout, "
                   "else the gt folder's name)")

    p = sub.add_parser("mot", help="HOTA / CLEAR / Identity through TrackEval (MOTChallenge layout)")
    p.add_argument("--benchmark", choices=MOT_BENCHMARKS.names(), default="MOT17")
    p.add_argument("--gt-root", required=True, help="folder of <seq>/gt/gt.txt (+ seqinfo.ini)")
    p.add_argument("--results", required=True, help="folder of <seq>.txt MOTChallenge files")
    p.add_argument("--out", required=True)
    p.add_argument("--seqs", nargs="*", help="only these sequences")
    p.add_argument("--name", help="tracker name in the report")

    p = sub.add_parser("rmot", help="Refer-KITTI(-V2): one sequence per (video, expression), COMBINED")
    p.add_argument("--gt-root", "--data-root", dest="data_root", required=True,
                   help="the Refer-KITTI(-V2) folder holding KITTI/ and expression/")
    p.add_argument("--results", required=True, help="<vid>/<expression>/predict.txt or <vid>/<expression>.txt")
    p.add_argument("--out", required=True)
    p.add_argument("--videos", nargs="+", default=["0005", "0011", "0013", "0019"])
    p.add_argument("--image-size", nargs=2, type=int, metavar=("W", "H"),
                   help="frame size for every video (default: read from the first frame's header)")
    p.add_argument("--benchmark-name", default="Refer-KITTI-V2")
    p.add_argument("--name")

    p = sub.add_parser("crmot", help="CVRIDF1 / CVRMA (CRTrack devkit rules)")
    p.add_argument("--gt-root", required=True, help="<Scene>_<desc>/gt/View<k>.txt folders")
    p.add_argument("--results", required=True, help="<Scene>_<desc>/View<k>.txt (x1,y1,x2,y2)")
    p.add_argument("--out", required=True)
    p.add_argument("--allow-missing", "--skip-missing", dest="allow_missing", action="store_true",
                   help="score missing prediction folders and view files as empty (listed in the summary); "
                        "without it they are errors")
    p.add_argument("--strict", action="store_true",
                   help="refuse prediction files whose rows cannot be x1,y1,x2,y2 corners (x2 < x1 or y2 < y1; "
                        "boxes written as x,y,w,h); without it they are scored as given and listed")
    p.add_argument("--benchmark-name", default="CRTrack-In-domain")
    p.add_argument("--name")

    p = sub.add_parser("captions", help="BLEU-1..4, METEOR, ROUGE-L, CIDEr-D")
    p.add_argument("--protocol", choices=("coco", "smoter"), default="coco")
    p.add_argument("--refs", required=True, help='refs.json: {"id": ["reference", ...]}')
    p.add_argument("--preds", required=True, help='preds.json: {"id": "prediction"}')
    p.add_argument("--out", required=True)
    p.add_argument("--name")

    p = sub.add_parser("smot", help="BenSMOT: tracking + video captions + instance captions")
    p.add_argument("--gt-root", required=True, help="<category>/<seq>/{gt/gt.txt, video_caption.txt, ...}")
    p.add_argument("--results", required=True,
                   help="<seq>.txt files, video_captions.json and instance_captions.json")
    p.add_argument("--out", required=True)
    p.add_argument("--caption-protocol", choices=("coco", "smoter"), default="coco")
    p.add_argument("--name")

    p = sub.add_parser("report", help="the paper's Tables 1-7 (every published cell) with our summaries beside them")
    p.add_argument("--summaries", nargs="*", default=[], metavar="[TABLE/ROW=]PATH",
                   help="summary.json files, the folders holding them, or a sweep's manifest.json; TABLE/ROW= "
                        "places a summary in an ablation row (e.g. table7/8=runs/frames8/eval; docs/report.md)")
    p.add_argument("--out", required=True, help="markdown file to write")

    p = sub.add_parser("package", help="test-server files: DanceTrack's tracker.zip, BenSMOT in SMOTer's layout")
    p.add_argument("--benchmark", choices=("dancetrack", "bensmot"), required=True)
    p.add_argument("--results", required=True, help="<seq>.txt MOTChallenge files (+ video_captions.json and "
                   "instance_captions.json for bensmot), as `vptracker eval mot|smot` reads them")
    p.add_argument("--out", required=True, help="folder to write (DanceTrack: tracker/ and tracker.zip)")
    p.add_argument("--gt-root", help="bensmot: the split folder (<category>/<seq>/...); dancetrack: a split folder "
                   "or seqmap naming the sequences (default: the 35 test videos of DanceTrack's test_seqmap.txt)")


def _write_summary(out: Path, summary: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))


def _write_rows_csv(path: Path, rows: dict[str, dict], first: str) -> None:
    fields = list(next(iter(rows.values())).keys()) if rows else []
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([first, *fields])
        for key, row in rows.items():
            w.writerow([key, *(row[f] for f in fields)])


def _run_sot(args) -> int:
    gt = sot_ground_truth(args.gt_root, args.dataset, args.split)
    root = Path(args.gt_root).resolve()
    # TNL2K/test names the benchmark by its folder, not by its split
    folder = root.parent.name if root.name.lower() in ("train", "test", "val", "training", "testing") else root.name
    bench = args.benchmark_name or ("TNL2K" if gt[0].dataset == "tnl2k" and (root / "gt_rect").is_dir() else folder)
    summaries = {}
    for spec in args.results:
        if "=" in spec and not Path(spec).is_dir():
            name, folder = spec.split("=", 1)
        else:
            name, folder = Path(spec).name, spec
        s = sot_eval.evaluate_sot(gt, folder, args.protocol, skip_missing=args.skip_missing)
        s.update({"task": "sot", "benchmark": bench, "name": name})
        summaries[name] = s
        if s["skipped"]:
            print(f"{name}: {len(s['skipped'])} of {len(gt)} sequences have no result file and are not scored "
                  f"(e.g. {s['skipped'][:3]})", file=sys.stderr)
        if s["length_mismatch"]:
            example = next(iter(s["length_mismatch"].items()))
            print(f"{name}: {len(s['length_mismatch'])} result files differ in length from their ground truth "
                  f"(e.g. {example[0]}: {example[1]['result_rows']} rows for {example[1]['gt_frames']} frames); "
                  f"scored as the {args.protocol} protocol says: missing frames are misses, extra rows cut",
                  file=sys.stderr)
    out = Path(args.out)
    for i, (name, s) in enumerate(summaries.items()):
        write_sot_outputs(s, out if i == 0 else out / name)
    print(format_sot_table(summaries))
    first = next(iter(summaries.values()))
    if first["attributes"]:
        print(f"\nper attribute ({next(iter(summaries))}): " + ", ".join(
            f"{a} {v['auc']:.1f}" for a, v in first["attributes"].items()) + " (AUC)")
    if not args.no_plots and "curves" in first:  # curve protocols only (GOT-10k's AO/SR has none)
        for path in plot_curves(summaries, out, title=bench):
            print(f"plot: {path}")
    return 0


def _run_mot(args) -> int:
    r = evaluate_mot(args.gt_root, args.results, args.benchmark, args.seqs or None)
    r.update({"task": "mot", "benchmark": args.benchmark, "name": args.name or Path(args.results).name})
    out = Path(args.out)
    _write_summary(out, r)
    _write_rows_csv(out / "per_sequence.csv", {**r["per_sequence"], "COMBINED": r["COMBINED"]}, "sequence")
    print(format_mot_table(r))
    return 0


def _run_rmot(args) -> int:
    sizes = {v: tuple(args.image_size) for v in args.videos} if args.image_size else None
    r = evaluate_rmot(args.data_root, args.results, tuple(args.videos), image_sizes=sizes)
    r.update({"task": "rmot", "benchmark": args.benchmark_name, "name": args.name or Path(args.results).name})
    out = Path(args.out)
    _write_summary(out, r)
    _write_rows_csv(out / "per_expression.csv", {**r["per_sequence"], "COMBINED": r["COMBINED"]}, "expression")
    print(format_mot_table({"per_sequence": {}, "COMBINED": r["COMBINED"]}))
    print(f"{r['num_expressions']} expression-sequences")
    return 0


def _run_crmot(args) -> int:
    # trackeval and scipy: kept out of the CLI's start
    from vptracker.eval.crmot import evaluate_crmot

    r = evaluate_crmot(args.gt_root, args.results, allow_missing=args.allow_missing, strict=args.strict)
    if r["missing"]:
        print(f"{len(r['missing'])} missing prediction folders/views scored as empty (--allow-missing), "
              f"e.g. {r['missing'][:3]}", file=sys.stderr)
    r.update({"task": "crmot", "benchmark": args.benchmark_name, "name": args.name or Path(args.results).name})
    out = Path(args.out)
    _write_summary(out, r)
    _write_rows_csv(out / "per_pair.csv", r["per_pair"], "pair")
    print(f"{'pairs':>6} {'CVRIDF1':>9} {'CVRMA':>9}\n{r['num_pairs']:>6} {r['cvridf1']:>9.2f} {r['cvrma']:>9.2f}")
    return 0


def _run_captions(args) -> int:
    refs = load_caption_file(args.refs, many=True)
    preds = load_caption_file(args.preds, many=False)
    r = evaluate_captions(refs, preds, args.protocol)
    if r["missing_predictions"]:
        print(f"{r['missing_predictions']} of {r['num_captions']} ids have no prediction and score against an "
              f"empty caption (e.g. {r['missing_ids'][:3]})", file=sys.stderr)
    r.update({"task": "captions", "benchmark": "captions", "name": args.name or Path(args.preds).stem})
    out = Path(args.out)
    _write_summary(out, r)
    _write_rows_csv(out / "per_caption.csv", r["per_caption"], "id")
    print(format_caption_table({r["name"]: r}))
    return 0


def _run_smot(args) -> int:
    from vptracker.eval.smot import evaluate_smot, smot_table_row  # scipy: kept out of the CLI's start

    r = evaluate_smot(args.gt_root, args.results, args.caption_protocol)
    r.update({"task": "smot", "benchmark": "BenSMOT", "name": args.name or Path(args.results).name,
              "protocol": args.caption_protocol, "table_row": None})
    r["table_row"] = smot_table_row(r)
    out = Path(args.out)
    _write_summary(out, r)
    _write_rows_csv(out / "per_sequence.csv", {**r["tracking"]["per_sequence"], "COMBINED": r["tracking"]["COMBINED"]},
                    "sequence")
    print(format_mot_table(r["tracking"]))
    captions = {k: r[k] for k in ("video_caption", "instance_caption") if k in r}
    if captions:
        print(format_caption_table(captions))
    return 0


def _run_report(args) -> int:
    path = write_report(args.summaries, args.out)
    print(path.read_text())
    return 0


def _run_package(args) -> int:
    if args.benchmark == "bensmot":
        if not args.gt_root:
            raise ConfigError("eval package --benchmark bensmot needs --gt-root (the BenSMOT split folder): "
                              "instance captions are paired with ground-truth trajectories")
        r = package_bensmot(args.results, args.gt_root, args.out)
        print(f"{args.out}: {len(r['sequences'])} sequences, {r['video_captions']} video and "
              f"{r['instance_captions']} instance captions in SMOTer's layout (bensmoteval/, pred_results/)")
    else:
        seqs = read_seqmap(Path(args.gt_root)) if args.gt_root else None
        r = package_dancetrack(args.results, args.out, seqs)
        print(f"{r['archive']}: {len(r['sequences'])} sequences in tracker/ (upload this file)")
    if r["left_out"]:
        print(f"left out {len(r['left_out'])} result files of other sequences: {', '.join(r['left_out'][:5])}",
              file=sys.stderr)
    return 0


_RUNNERS = {"sot": _run_sot, "mot": _run_mot, "rmot": _run_rmot, "crmot": _run_crmot,
            "captions": _run_captions, "smot": _run_smot, "report": _run_report, "package": _run_package}


def run(args) -> int:
    import traceback

    from trackeval.utils import TrackEvalException

    try:
        return _RUNNERS[args.eval_task](args)
    except (ConfigError, DatasetFormatError, CaptionInputError, ResultError, FileNotFoundError, NotADirectoryError,
            IsADirectoryError, UnicodeDecodeError, TrackEvalException) as e:
        # Input problems are the user's to fix: one clear line, not a traceback.
        message = " ".join(str(e).split())
        print(f"vptracker eval {args.eval_task}: {message}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - anything else is our bug: say so, keep the traceback
        traceback.print_exc()
        print(f"vptracker eval {args.eval_task}: internal error ({type(e).__name__}: {e}); please report it",
              file=sys.stderr)
        return 1
