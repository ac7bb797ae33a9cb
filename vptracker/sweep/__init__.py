"""Ablation sweeps: ``vptracker sweep table5|table6|table7 [key=value ...] [--dry-run]``.

One command runs a table's grid from raw data to the finished table: data, training (stage prefixes
shared between rows), tracking, scoring, then ``<out>/table.md`` and ``<out>/manifest.json`` in the
report's format (each row's settings, the git commit, its summaries; ``vptracker eval report
--summaries <out>`` puts them beside the paper). A finished row (every seed's summary on disk) is
not rerun; a stage finished on disk is reused. ``seeds=N`` trains each row N times and reports mean
and spread. ``scale=toy`` (the default) runs on a CPU with the MOT demo's synthetic set and tiny
models (:mod:`vptracker.sweep.toy`); ``scale=full`` runs the paper's datasets and presets
(:mod:`vptracker.sweep.full`, ``configs/sweeps/full.yaml``). At toy scale a row is scored on the MOT
columns and, on the same videos written with templated expressions and captions, on the table's RMOT
and caption columns (:mod:`vptracker.sweep.toy_text`): Table 5 RMOT HOTA and instance captions,
Table 6 RMOT and SMOT (instance CIDEr), Table 7 video and instance METEOR and CIDEr.

Sweep keys: ``scale``, ``out``, ``seeds``, ``rows=[...]`` (a subset, by the paper's row keys),
``stages=[...]`` / ``model_preset=`` / ``frames=`` (what the table does not vary), ``quick=true``
(toy: ``mot_quick.yaml``), ``tasks=[mot,...]`` (toy: a subset of the table's tasks, e.g. ``[mot]``
for the MOT columns alone; the sizes of the RMOT and caption data are the demo config's ``sweep:``
keys). Any other ``key=value`` is a demo config override at toy scale (checked against
``configs/demo/mot_demo.yaml``) and ``full.<key>=value`` one of ``configs/sweeps/full.yaml``.
"""
from __future__ import annotations

import json
from pathlib import Path

from vptracker.config import ConfigError, apply_overrides, parse_override
from vptracker.demo import demo_config
from vptracker.sweep import results, toy
from vptracker.sweep.full import full_config, row_commands, run_commands, summaries, verdict
from vptracker.sweep.grid import SWEEP_TABLES, stage_label, stage_runs, sweep_rows
from vptracker.sweep.toy_text import toy_tasks, with_text_steps
from vptracker.train.manifest import git_state
from vptracker.train.stages import OMNIPT_STAGES, REPO_ROOT

SWEEP_KEYS = {"scale", "out", "seeds", "rows", "stages", "model_preset", "frames", "quick", "tasks"}
DEFAULTS = {"toy": {"model_preset": "qwen3_vl_4b", "frames": None},   # the demo's tiny Qwen3-VL and frames
            "full": {"model_preset": "qwen2_5_vl_72b", "frames": 8}}  # OmniPT's model; shipped configs train at 8


def parse(name: str, items: list[str]) -> tuple[dict, list[str], list[str]]:
    """(sweep settings, toy demo overrides, full-config overrides)."""
    if name not in SWEEP_TABLES:
        raise ConfigError(f"sweep: no ablation table {name!r}; expected one of {', '.join(SWEEP_TABLES)}")
    settings: dict = {"scale": "toy", "seeds": 1, "quick": False}
    demo, full = [], []
    for item in items:
        parts, value = parse_override(item)
        if parts[0] == "full" and len(parts) > 1:
            full.append(item.split(".", 1)[1])
        elif len(parts) == 1 and parts[0] in SWEEP_KEYS:
            settings = apply_overrides(settings, [(parts, value)])
        else:
            demo.append(item)
    if settings["scale"] not in DEFAULTS:
        raise ConfigError(f"sweep: scale={settings['scale']!r}; expected toy or full")
    if not isinstance(settings["seeds"], int) or settings["seeds"] < 1:
        raise ConfigError(f"sweep: seeds={settings['seeds']!r}; expected an integer >= 1")
    if settings["scale"] == "full" and (demo or settings.get("tasks")):
        raise ConfigError(f"sweep scale=full: unknown keys {demo}; sweep keys are {sorted(SWEEP_KEYS)}, "
                          "full.<key>=value sets configs/sweeps/full.yaml")
    for key, value in DEFAULTS[settings["scale"]].items():
        settings.setdefault(key, value)
    settings["out"] = Path(settings.get("out") or REPO_ROOT / "outputs" / "sweeps" / f"{name}-{settings['scale']}")
    return settings, demo, full


def _toy_config(settings: dict, demo: list[str]) -> dict:
    cfg = demo_config(bool(settings["quick"]), ["task=omnipt_mot", *demo])
    if settings["frames"] is None:
        settings["frames"] = int(cfg["task_options"]["frames"])
    return cfg


def _check_same(out: Path, record: dict) -> None:
    """A resumed sweep must be the same sweep: its finished rows were made with these settings."""
    path = out / "sweep_config.json"
    if path.is_file():
        earlier = json.loads(path.read_text())
        if earlier != record:
            changed = sorted(k for k in set(earlier) | set(record) if earlier.get(k) != record.get(k))
            raise ConfigError(f"sweep: {out} holds a sweep with other settings ({', '.join(changed)}); "
                              "choose another out=... or remove it")
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1, default=str))


def run_sweep(name: str, items: list[str], dry_run: bool = False, echo=print, stream=None) -> dict:
    """Runs (or, ``dry_run``, prints) one ablation table; returns the manifest."""
    settings, demo, full_overrides = parse(name, items)
    scale, seeds, out = settings["scale"], int(settings["seeds"]), Path(settings["out"]).resolve()
    cfg = _toy_config(settings, demo) if scale == "toy" else None
    tasks = ("mot",)
    if scale == "toy":
        tasks = toy_tasks(name, settings.get("tasks"))
    if scale == "full":
        cfg = full_config(full_overrides)
    stages = tuple(settings.get("stages") or (cfg["stages"] if scale == "toy" else OMNIPT_STAGES))
    rows = sweep_rows(name, stages, settings["model_preset"], int(settings["frames"]), settings.get("rows"))
    if name == "table7" and scale == "toy":   # every row's samples must fit in a synthetic sequence
        cfg["data"]["frames"] = max(int(cfg["data"]["frames"]), max(r.frames for r in rows) + 1)
    pending = [(r, s) for r in rows for s in range(seeds) if not all(
        results.seed_summary(out, r.key, s, t).is_file() for t in tasks)]
    if scale == "full":
        pending = [(r, s) for r in rows for s in range(seeds) if not all(p.is_file() for p in summaries(
            cfg, name, out, r, s))]
    runs, alone = stage_runs(sorted({r for r, _ in pending}, key=rows.index), seeds)
    if dry_run:
        _print_plan(name, scale, cfg, rows, seeds, out, pending, settings, echo, tasks)
        return {}
    _check_same(out, {"table": name, "scale": scale, "seeds": seeds, "stages": list(stages), "tasks": list(tasks),
                      "model_preset": settings["model_preset"], "frames": settings["frames"], "config": cfg})
    echo(f"[sweep] {name} ({scale}): {len(rows)} rows x {seeds} seeds, {len(pending)} to run; "
         f"{runs} stage runs at most ({alone} without shared prefixes) -> {out}")
    if scale == "toy":
        todo = set(pending)
        if todo:   # a finished sweep rewrites its table and manifest without touching data or models
            toy.run_rows(cfg, rows, seeds, out, echo, stream or (lambda line: None), lambda r, s: (r, s) in todo,
                         tasks)
        base = toy.baseline(cfg, out)
    else:
        planned: set = set()
        for row, seed in pending:
            commands, _, _ = row_commands(cfg, row, name, seed, out, 8, planned)
            run_commands(commands, echo)
        base = None
    commit = git_state().get("commit")
    entries = {}
    for row in rows:
        if scale == "toy" and results.row_done(out, row.key, seeds, tasks):
            entries[row.key] = results.write_row(out, row, seeds, commit, tasks)
        elif scale == "full":
            entries[row.key] = _full_entry(cfg, name, out, row, seeds, commit)
    manifest = {"table": name, "scale": scale, "rows": entries}
    results.write_manifest(out, name, scale, entries, {"seeds": seeds, "tasks": list(tasks)})
    note = f"{scale} scale, {seeds} seed{'s' if seeds > 1 else ''}"
    if scale == "toy":
        (out / "table.md").write_text(results.markdown(out, name, rows, entries, base, note, tasks))
        echo((out / "table.md").read_text())
    echo(f"[sweep] manifest: {out / 'manifest.json'}")
    return manifest


def _full_entry(cfg: dict, name: str, out: Path, row, seeds: int, commit) -> dict:
    paths = [p for s in range(seeds) for p in summaries(cfg, name, out, row, s)]
    return {"summaries": [p.relative_to(out).as_posix() for p in paths if p.is_file()], "settings": row.settings,
            "commit": commit, "seeds": seeds}


def _print_plan(name, scale, cfg, rows, seeds, out, pending, settings, echo, tasks=("mot",)) -> None:
    runs, alone = stage_runs(rows, seeds)
    todo = stage_runs(sorted({r for r, _ in pending}, key=rows.index), seeds)[0] if pending else 0
    echo(f"# sweep {name} ({scale}) -> {out}: {len(rows)} rows x {seeds} seeds; {runs} stage runs with shared "
         f"prefixes ({alone} if every row trained alone); {len(pending)} row-seeds to run, {todo} stage runs")
    if scale == "toy":
        for row in rows:
            for seed in range(seeds):
                row_cfg = toy.group_config(cfg, row, seed)
                sft = with_text_steps(row_cfg, tasks, ["stage3_sft"])["stage3_sft"]["max_steps"]
                state = "to run" if (row, seed) in pending else "finished (skipped)"
                echo(f"# row {row.key} seed {seed}: stages {stage_label(row.stages)}, preset {row.preset}, "
                     f"frames {row.frames}: {state}")
                echo(f"#   train: vptracker.demo.mot.train_rows -> {out}/groups/{row.group(seed)}/runs/"
                     f"from-*/<stage> (the MOT demo's stage settings, {sft} SFT steps)")
                echo(f"#   track: the MOT loop on {cfg['data']['test_sequences']} synthetic test sequences, "
                     f"{toy.budget(row_cfg)} -> "
                     f"{results.seed_summary(out, row.key, seed).parent.parent}/results")
                echo(f"#   score: vptracker eval mot --benchmark MOT17 -> {results.seed_summary(out, row.key, seed)}")
                if "rmot" in tasks:
                    echo(f"#   rmot: the omnipt_rmot loop on the synthetic Refer-KITTI test videos, vptracker eval "
                         f"rmot -> {results.seed_summary(out, row.key, seed, 'rmot')}")
                if "smot" in tasks:
                    echo(f"#   smot: the omnipt_caption loop on the MOT tracks of the synthetic BenSMOT test videos, "
                         f"vptracker eval smot -> {results.seed_summary(out, row.key, seed, 'smot')}")
        echo("# verdict: CPU profile (toy scale): no GPU memory plan; the toy stages run on this machine")
        return

    planned: set = set()
    for row in rows:
        for seed in range(seeds):
            commands, weights, stages = row_commands(cfg, row, name, seed, out, 8, planned)
            state = "to run" if (row, seed) in pending else "finished (skipped)"
            echo(f"# row {row.key} seed {seed}: stages {stage_label(row.stages)}, preset {row.preset}, frames "
                 f"{row.frames}, final weights {weights}: {state}")
            for command in commands:
                echo(command)
            echo("# verdict:" if stages else "# verdict: every stage is shared with an earlier row")
            for line in verdict(stages):
                echo(line)
