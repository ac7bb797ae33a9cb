"""The MOT demo (``vptracker demo task=omnipt_mot``): OmniPT's stages on a synthetic MOT set.

Data: the MOTChallenge-layout set of :func:`vptracker.datasets.synthetic.write_mot` (people-like
textured objects that enter, leave, occlude each other). Rows: the real ``omnipt_mot`` builder (the
three queries), its ``_grpo`` variant and the mid-training pretexts (detection, location
prediction). Stages: the chosen ones of ``stage1_format_grpo -> stage2_midtrain -> stage3_sft ->
stage4_iou_grpo`` through the real stage configs, each from the previous one's weights. The CLIP
phase of mid-training is left out here (it needs captioned person crops; the synthetic set has
none), so ``stage2_midtrain`` runs its pretext SFT only, and the report says so. Tracking: the real
multi-round MOT loop; scores: TrackEval (HOTA, DetA, AssA, MOTA, IDF1).
"""
from __future__ import annotations

import json
from pathlib import Path

from vptracker.boxes import Form, parse_trajectories, parse_trajectory, xywh_to_xyxy
from vptracker.datasets import load
from vptracker.datasets.synthetic import write_mot
from vptracker.demo import pipeline as p
from vptracker.demo.report import LOG, log_points, plot_training
from vptracker.eval.mot import evaluate_mot
from vptracker.eval.published import published, table
from vptracker.infer.engine import make_engine
from vptracker.infer.outputs import mot_text
from vptracker.infer.runner import run_task
from vptracker.prompts.texts import no_objects_answer
from vptracker.tasks.prepare import prepare
from vptracker.train import runner
from vptracker.train.manifest import read_manifest
from vptracker.train.stages import SHORT

BENCHMARK = "MOT17"  # gt rows with flag 1 and class 1: TrackEval's MOT17 preprocessing keeps them all
GRPO_STAGES = ("stage1_format_grpo", "stage4_iou_grpo")
FIELDS = ("HOTA", "DetA", "AssA", "MOTA", "IDF1")


def make_data(cfg: dict, out: Path) -> Path:
    d = cfg["data"]
    splits = {"train": int(d["train_sequences"]), "test": int(d["test_sequences"])}
    return write_mot(out / "data" / "mot", splits, seed=int(cfg["seed"]), cfg=p.synthetic_config(cfg),
                     people=int(d["people"]))


def prepare_rows(cfg: dict, root: Path, out: Path, stages: list[str]) -> dict[str, list[str]]:
    """One job per stage that runs: the rows each stage trains on, from the real builders."""
    source = {"synthetic": {"dataset": "synthetic_mot", "root": str(root), "split": "train"}}
    options = {"scale": cfg["prepare"]["scale"], "family": cfg["model"]["family"], **(cfg["task_options"] or {})}
    samples = cfg["prepare"]["samples"]
    tasks = {"stage1_format_grpo": ["omnipt_mot_grpo"], "stage2_midtrain": ["pretext_detection", "pretext_location"],
             "stage3_sft": ["omnipt_mot"], "stage4_iou_grpo": ["omnipt_mot_grpo"]}
    jobs = {}
    for stage in stages:
        for task in tasks[stage]:
            opts = {k: v for k, v in options.items() if task != "pretext_detection" or k in ("scale", "family")}
            jobs[f"{stage}-{task}"] = {"task": task, "options": opts, "sources": source,
                                       "samples": {"train": int(samples[stage])}}
    config = {"seed": int(cfg["seed"]), "out": str(out / "prepared"), "workers": 1, "jobs": jobs}
    card = prepare(config, progress=False)
    folder = Path(config["out"])
    files: dict[str, list[str]] = {stage: [] for stage in stages}
    for job in jobs:
        files[job.split("-", 1)[0]] += [str(folder / f) for f in card["outputs"]["train"][job]["files"]]
    return files


def train_stage(cfg: dict, model_dir: Path, weights: Path, stage: str, files: dict[str, list[str]], run_dir: Path,
                echo, stream) -> Path:
    """Runs one stage of the demo from ``weights`` into ``run_dir``; returns its final weights."""
    s = cfg[stage]
    steps = int(s["max_steps"])
    overrides = [o for o in p._model_overrides(cfg, model_dir, run_dir.parent) if not o.startswith("run_dir=")] + [
        f"run_dir={run_dir}",
        f"dataset={p._list(files[stage])}", f"swift.max_steps={steps}",
        f"swift.per_device_train_batch_size={s['batch_size']}", f"swift.learning_rate={s['learning_rate']}",
        f"swift.lr_scheduler_type={s['lr_scheduler']}", f"swift.warmup_ratio={s.get('warmup_ratio', 0.0)}",
        p._freeze(cfg["freeze_parameters"]), f"swift.save_steps={steps}",
        f"swift.logging_steps={max(1, steps // 20)}"]
    if cfg.get("model_preset"):   # a sweep's Table 5 row: that preset's swift model type and template
        overrides.append(f"model_preset={cfg['model_preset']}")
    if cfg.get("max_length"):     # a sweep's tiling family: its rows are longer than the demo's 1024
        overrides.append(f"swift.max_length={cfg['max_length']}")
    if weights != model_dir:
        overrides.append(f"init={weights}")
    if stage in GRPO_STAGES:
        overrides += [f"rollout.num_generations={s['num_generations']}",
                      f"rollout.max_completion_length={s['max_completion_length']}",
                      f"rollout.temperature={s['temperature']}", f"rollout.top_k={s['top_k']}"]
    else:
        overrides.append("swift.eval_steps=null")
    if stage == "stage2_midtrain":
        overrides.append("kind=sft")  # pretexts only: no captioned crops for the CLIP phase
    return runner.run_stage(stage, overrides, echo=echo, force=True, stream=stream)


def train(cfg: dict, model_dir: Path, files: dict[str, list[str]], out: Path, echo, stream) -> Path:
    """Runs the config's stages in order, each from the previous one's weights; returns the last."""
    weights = model_dir
    for stage in cfg["stages"]:
        weights = train_stage(cfg, model_dir, weights, stage, files, out / "runs", echo, stream)
    return weights


def prefix_folder(prefix: tuple[str, ...]) -> str:
    """The run folder of a prefix's last stage, named by the stages before it (``from-s1-s2``)."""
    return "from-" + ("-".join(SHORT.get(x, x) for x in prefix[:-1]) or "base")


def finished_stage(stage_dir: Path) -> Path | None:
    """The final weights of a stage whose manifest says it finished (a resumed sweep reuses them)."""
    manifest = read_manifest(stage_dir) or {}
    output = manifest.get("output")
    return Path(output) if manifest.get("status") == "complete" and output and Path(output).exists() else None


def train_rows(cfg: dict, model_dir: Path, files: dict[str, list[str]], out: Path, echo, stream,
               rows: list[tuple[str, tuple[str, ...]]], trained: dict | None = None
               ) -> dict[str, tuple[Path, dict[str, Path]]]:
    """Trains every ``(label, stages)`` row, each stage prefix once (``runs/from-<earlier>/<stage>``);
    a prefix finished on disk is reused. Returns ``{label: (weights, {stage: stage_dir})}``."""
    trained = {} if trained is None else trained
    done = {}
    for label, stages in rows:
        weights = model_dir
        for i, stage in enumerate(stages):
            prefix = tuple(stages[: i + 1])
            run_dir = out / "runs" / prefix_folder(prefix)
            if prefix not in trained:
                reuse = finished_stage(run_dir / stage)
                if reuse is None:
                    reuse = train_stage(cfg, model_dir, weights, stage, files, run_dir, echo, stream)
                else:
                    echo(f"[sweep] {stage} after {prefix_folder(prefix)}: finished earlier, reused ({reuse})")
                trained[prefix] = (reuse, run_dir / stage)
            weights = trained[prefix][0]
        done[label] = (weights, {s: trained[tuple(stages[: i + 1])][1] for i, s in enumerate(stages)})
    return done


def table6_rows() -> tuple[tuple[str, tuple[str, ...], float], ...]:
    """The paper's Table 6 (vptracker.eval.published): label, stages, the paper's MOT HOTA. Stage 1
    (format RL) runs in every row: the paper calls it necessary and leaves it out of the table."""
    return tuple((r.key, tuple(r.settings["stages"]), published("table6", r.key, "MOT")) for r in table("table6").rows)


def track(cfg: dict, model_dir: Path, sequences, results: Path) -> Path:
    i = cfg["infer"]
    engine = make_engine(model_dir, cfg["model"]["family"], max_batch_size=int(i["batch_size"]),
                         max_tokens=int(i["max_tokens"]), torch_dtype="float32",
                         **p.contract_pixels("omnipt_mot", model_dir))
    options = {"family": cfg["model"]["family"], "box_scale": cfg["prepare"]["scale"],
               "frames_per_sample": int(cfg["task_options"]["frames"])}
    # model_dir: a trained checkpoint's task contract (vptracker_contract.json) is read and checked
    run_task("omnipt_mot", engine, sequences, results, options, concurrency=int(i["batch_size"]), progress=True,
             model_dir=model_dir)
    return results


def hold_first_frame(sequences, results: Path) -> Path:
    """The baseline: the first frame's ground-truth boxes, held still with their ids to the end."""
    results.mkdir(parents=True, exist_ok=True)
    for seq in sequences:
        rows = [(t + 1, track.id, xywh_to_xyxy(track.boxes[0])) for t in range(len(seq))
                for track in seq.tracks if track.visible[0]]
        (results / f"{seq.name}.txt").write_text(mot_text(rows))
    return results


def score(root: Path, results: Path) -> dict:
    return evaluate_mot(root / "test", results, benchmark=BENCHMARK)


def label(stages) -> str:
    """A row's name in Table 6's terms: MT (stage 2), SFT (stage 3), RL (stage 4); stage 1 is implied."""
    names = [n for stage, n in (("stage2_midtrain", "MT"), ("stage3_sft", "SFT"), ("stage4_iou_grpo", "RL"))
             if stage in stages]
    return "+".join(names) or "format RL only"


def in_grammar(answer: str) -> bool:
    """An answer of the three queries in the trained grammar: boxes / trajectories of exact
    ``<bbox>`` and ``<None>`` slots, or the no-object sentence."""
    if answer.strip() == no_objects_answer():
        return True
    slots = [s for traj in parse_trajectories(answer) for s in traj] or parse_trajectory(answer)
    return bool(slots) and all(s.form in (Form.EXACT, Form.NONE) for s in slots)


def parse_rate(results: Path) -> float:
    answers = [json.loads(line)["answer"] for line in (results / "responses.jsonl").read_text().splitlines() if line]
    return 100.0 * sum(in_grammar(a) for a in answers) / max(len(answers), 1)


def run_steps(cfg: dict, out: Path, quick: bool, log) -> dict:
    """Every step of the MOT demo; writes ``summary.json`` and ``report.md``; returns the summary."""
    steps = p.StepLog(log.echo, cfg["threads"])
    root = steps.step("synthetic data", make_data, cfg, out)
    test = load("synthetic_mot", root, "test")
    model_dir = steps.step("tiny model", p.make_model, cfg, out)
    rows = table6_rows() if cfg.get("table6") else ((label(cfg["stages"]), tuple(cfg["stages"]), None),)
    if cfg.get("table6") and tuple(cfg["stages"]) not in [r[1] for r in rows]:
        raise ValueError(f"table6=true: stages={cfg['stages']} is not a row of Table 6 "
                         f"({', '.join(r[0] for r in rows)}); leave stages at its default")
    needed = [s for s in SHORT if any(s in r[1] for r in rows)]
    files = steps.step("prepare rows", prepare_rows, cfg, root, out, needed)
    results = out / "results"
    hold_first_frame(test, results / "hold_first_frame")
    steps.step("track (untrained)", track, cfg, model_dir, test, results / "untrained")
    if cfg.get("table6"):
        done = steps.step("stages of Table 6's rows", train_rows, cfg, model_dir, files, out, log.echo,
                          log.stage_output, [(name, stages) for name, stages, _ in rows])
    else:
        final = steps.step("stages " + " -> ".join(cfg["stages"]), train, cfg, model_dir, files, out, log.echo,
                           log.stage_output)
        done = {rows[0][0]: (final, {s: out / "runs" / s for s in cfg["stages"]})}
    main = label(cfg["stages"])
    for name, (weights, _) in done.items():
        folder = "trained" if name == main else f"row-{name}"
        steps.step(f"track ({'trained' if name == main else name})", track, cfg, weights, test, results / folder)
    scores = {name: score(root, results / name)["COMBINED"] for name in ("hold_first_frame", "untrained", "trained")}
    summary = {f"{f.lower()}_{short}": round(scores[name][f], 2) for f in FIELDS
               for short, name in (("trained", "trained"), ("untrained", "untrained"),
                                   ("baseline", "hold_first_frame"))}
    if cfg.get("table6"):
        table = []
        for name, stages, paper in rows:
            got = scores["trained"] if name == main else score(root, results / f"row-{name}")["COMBINED"]
            table.append({"row": name, "stages": list(stages), "paper_mot_hota": paper,
                          **{f.lower(): round(got[f], 2) for f in FIELDS},
                          "parse_rate": round(parse_rate(results / ("trained" if name == main else f"row-{name}")), 2)})
        summary["table6"] = table
    summary.update(parse_rate_before=round(parse_rate(results / "untrained"), 2),
                   parse_rate_after=round(parse_rate(results / "trained"), 2),
                   margin_over_baseline=round(scores["trained"]["HOTA"] - scores["hold_first_frame"]["HOTA"], 2),
                   margin_over_untrained=round(scores["trained"]["HOTA"] - scores["untrained"]["HOTA"], 2),
                   task="omnipt_mot", stages=list(cfg["stages"]), quick=quick, benchmark=BENCHMARK,
                   num_sequences=len(test), step_seconds=steps.times, threads=steps.used,
                   total_seconds=steps.total)
    curves = []
    for stage, stage_dir in done[main][1].items():
        key = "reward" if stage in GRPO_STAGES else "loss"
        pts = log_points(stage_dir, key)
        (out / "plots").mkdir(exist_ok=True)
        path = plot_training(pts, out / "plots" / f"{stage}_curve.png", key)
        if path is not None:
            curves.append((stage, key, path, pts))
    write_report(out, summary, scores, cfg, curves)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    log.echo(f"[demo] HOTA trained {summary['hota_trained']:.2f} | untrained {summary['hota_untrained']:.2f} | "
             f"first frame held {summary['hota_baseline']:.2f} | parse rate {summary['parse_rate_before']:.0f}% -> "
             f"{summary['parse_rate_after']:.0f}% | {summary['total_seconds']:.0f}s")
    log.echo(f"[demo] report: {out / 'report.md'}")
    return summary


def write_report(out: Path, summary: dict, scores: dict, cfg: dict, curves: list) -> Path:
    names = {"trained": "trained", "untrained": "untrained", "hold_first_frame": "first frame held (baseline)"}
    lines = [f"# CPU demo: omnipt_mot on synthetic data{' (--quick smoke run)' if summary['quick'] else ''}", "",
             "## Summary", "",
             f"HOTA trained {summary['hota_trained']:.2f} vs untrained {summary['hota_untrained']:.2f} and "
             f"first-frame boxes held {summary['hota_baseline']:.2f} ({summary['num_sequences']} held-out "
             f"sequences, TrackEval {BENCHMARK} preprocessing). Stages: {' -> '.join(summary['stages'])}.",
             f"Answers in the trained grammar: {summary['parse_rate_before']:.1f}% before training, "
             f"{summary['parse_rate_after']:.1f}% after.", "",
             "## MOT results", "", "| tracker | " + " | ".join(FIELDS) + " |",
             "|---|" + "---:|" * len(FIELDS)]
    lines += [f"| {names[k]} | " + " | ".join(f"{v[f]:.2f}" for f in FIELDS) + " |" for k, v in scores.items()]
    if summary.get("table6"):
        lines += ["", "## Table 6 at toy scale (which stages run; stage 1 in every row)", "",
                  "| row | stages | HOTA | DetA | AssA | MOTA | IDF1 | parse % | paper MOT HOTA |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {r['row']} | {' -> '.join(SHORT[s] for s in r['stages'])} | "
                  + " | ".join(f"{r[f.lower()]:.2f}" for f in FIELDS) + f" | {r['parse_rate']:.0f} | "
                  f"{r['paper_mot_hota']:.2f} |" for r in summary["table6"]]
    lines += ["", "## Training", ""]
    for stage, key, path, pts in curves:
        lines.append(f"- {stage}: {len(pts)} logged points of {key}, first {pts[0][1]:.3f}, last {pts[-1][1]:.3f} "
                     f"![{stage}]({path.relative_to(out).as_posix()})")
    d = cfg["data"]
    lines += ["", "## Pipeline", "",
              f"- data: synthetic MOTChallenge layout, {d['train_sequences']} train / {d['test_sequences']} test "
              f"sequences of {d['frames']} frames, {d['people']} people, {d['width']}x{d['height']}, `data/mot`",
              f"- rows: `omnipt_mot` (three queries), `omnipt_mot_grpo`, `pretext_detection`, `pretext_location`; "
              f"options {cfg['task_options']}, `prepared/`",
              "- stage2_midtrain runs its pretext SFT only: the CLIP phase needs captioned person crops",
              f"- inference: the multi-round MOT loop, {cfg['task_options']['frames']} frames per round",
              f"- log: [{LOG}]({LOG})", "", "## Timing", "", "| step | seconds |", "|---|---:|"]
    lines += [f"| {k} | {v:.0f} |" for k, v in summary["step_seconds"].items()]
    lines += [f"| total | {summary['total_seconds']:.0f} |", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path
