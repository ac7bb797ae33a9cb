"""Runs stages: the Python API behind ``vptracker train`` and ``train.sh``.

``run_stage("stage3_sft", ["profile=cpu", "model=/path/to/model"])`` resolves the config, writes the
manifest, runs each command (resuming from the last complete checkpoint when a previous run was
killed), merges LoRA when the stage says so and returns the directory of the stage's final weights.
``run_chain(["stage1_format_grpo", ...], overrides)`` starts each stage from the previous stage's
weights and skips stages whose manifest says they finished. ``dry_run=True`` prints the exact
commands for the cluster shape in the environment and runs nothing.

Every setting of every stage, the data files and the starting model folder are checked before
the first command starts (a bad value is a :class:`StageConfigError`, never a failure minutes
later inside ms-swift); a model folder that names custom code is refused unless
``trust_remote_code`` is set, which the manifest records.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from vptracker.config import apply_overrides
from vptracker.models.families import get_family
from vptracker.plan.memory import Cluster
from vptracker.plan.run import check_before_run
from vptracker.tasks.contract import (
    find_contract_file,
    merge_contracts,
    read_all_contracts,
    read_sources,
    write_contract_file,
)
from vptracker.tasks.lengths import check_cards
from vptracker.train import warm
from vptracker.train.commands import (
    Command,
    expand_datasets,
    final_weights,
    launcher_env,
    plan_stage,
    single_node_env,
    visible_gpus,
)
from vptracker.train.manifest import new_manifest, now, read_manifest, stage_contracts, write_manifest
from vptracker.train.select import read_selection
from vptracker.train.stages import (
    OMNIPT_STAGES,
    StageConfig,
    StageConfigError,
    available_stages,
    check_model,
    load_stage,
    stage_overrides,
)


class StageFailed(RuntimeError):
    """A command of a stage exited with an error; rerunning the stage resumes it."""


def last_checkpoint(output_dir: Path) -> Path | None:
    """The newest ``checkpoint-N`` that was saved completely (the Trainer writes its state last)."""
    best = None
    for path in Path(output_dir).glob("checkpoint-*"):
        suffix = path.name.rsplit("-", 1)[-1]
        complete = suffix.isdigit() and (path / "trainer_state.json").is_file()
        if complete and (best is None or int(suffix) > int(best.name.rsplit("-", 1)[-1])):
            best = path
    return best


def _is_rank0(env: dict) -> bool:
    return env.get("NODE_RANK", "0") in ("0", "")


def _execute(cmd: Command, log_path: Path, env: dict, stream: Callable[[str], None] | None = None) -> int:
    """Runs one command; every line goes to ``log_path`` and to ``stream`` (default: the terminal)."""
    stream = stream or sys.stdout.write
    log_path.parent.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, **env}
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"\n# {now()} {cmd.shell()}\n")
        log.flush()

        def echo_line(line: str) -> None:
            log.write(line)
            stream(line)

        warm_route = warm.route(cmd.argv, full_env)
        if warm_route is not None:   # one process: forked from a server with ms-swift imported (warm.py)
            return warm.run(*warm_route, full_env, echo_line)
        proc = subprocess.Popen(cmd.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=full_env,
                                text=True, errors="replace")
        assert proc.stdout is not None
        for line in proc.stdout:
            echo_line(line)
        return proc.wait()


def _wait_for_node0(stage_dir: Path, poll_s: float = 10.0) -> dict:
    """Nodes other than the first wait for its merge, which the manifest reports as complete."""
    while True:
        manifest = read_manifest(stage_dir)
        if manifest and manifest.get("status") == "complete":
            return manifest
        if manifest and manifest.get("status") == "failed":
            raise StageFailed(f"{stage_dir}: node 0 reports the stage failed")
        time.sleep(poll_s)


def _datasets_for_manifest(cfg: StageConfig) -> list[str]:
    files = expand_datasets(cfg, "dataset", cfg["dataset"], False)
    files += expand_datasets(cfg, "val_dataset", cfg.get("val_dataset"), False)
    if cfg.kind == "midtrain":
        files += expand_datasets(cfg, "clip.dataset", (cfg.get("clip") or {}).get("dataset"), False)
    return files


def default_env(echo: Callable[[str], None]) -> dict:
    """The launcher variables of this shell, with single-node defaults said aloud."""
    env, notes = single_node_env(launcher_env(), visible_gpus())
    for note in notes:
        echo(f"# {note}")
    return env


def dry_run_text(cfg: StageConfig, commands: Sequence[Command]) -> str:
    lines = [f"# {cfg.name} ({cfg.kind}) from {cfg.path}", f"# starts from {cfg.start_model}"]
    if cfg.get("trust_remote_code") is True:
        lines.append("# trust_remote_code: true (code shipped in the model folder may run)")
    for cmd in commands:
        lines += [f"# {note}" for note in cmd.notes]
        if cmd.payload is not None:
            lines.append(f"# writes {cmd.payload_path}: {json.dumps(cmd.payload, sort_keys=True)}")
        if cmd.rank0_only:
            lines.append("# on NODE_RANK 0 only; other nodes wait for it")
        lines.append(cmd.shell())
    lines.append(f"# final weights: {final_weights(cfg)}")
    return "\n".join(lines)


def run_stage(stage: str | Path, overrides: Iterable[str] = (), dry_run: bool = False,
              env: dict | None = None, echo: Callable[[str], None] = print, force: bool = False,
              stream: Callable[[str], None] | None = None) -> Path:
    """Runs one stage and returns the directory of its final weights (``dry_run``: prints only).

    ``stream`` receives each line the stage's commands print (default: the terminal)."""
    env = default_env(echo) if env is None else dict(env)
    # "<stage>.key=value" overrides reach only their stage, so one override list serves a chain
    overrides = stage_overrides(overrides, Path(str(stage)).stem, available_stages())
    cfg = load_stage(stage, overrides)
    model_check = check_model(cfg, must_exist=not dry_run)
    commands = plan_stage(cfg, env, must_exist=not dry_run)
    # the memory plan refuses a run that cannot fit before any GPU hour is spent (GPU profile only)
    memory = check_before_run(cfg, Cluster.from_env(env.get("NNODES"), env.get("NPROC_PER_NODE")))
    output = final_weights(cfg)
    if dry_run:
        echo(dry_run_text(cfg, commands))
        if memory is not None:
            echo("\n".join("# " + line for line in memory.render().splitlines()))
        return output
    stage_dir = cfg.stage_dir
    previous = read_manifest(stage_dir) or {}
    if previous.get("status") == "complete" and output.exists() and not force:
        echo(f"# {cfg.name}: already complete ({output}); use --force (force=True) to retrain")
        return output
    if any(warm.route(c.argv, {**os.environ, **env}) for c in commands):
        warm.start_server(echo)   # it imports ms-swift while the rows below are checked
    rank0 = _is_rank0(env)
    for cmd in commands:
        for note in cmd.notes:
            echo(f"# {cfg.name}: {note}")
    manifest = new_manifest(cfg.name, cfg.path, cfg.overrides, cfg.data, [c.shell() for c in commands],
                            _datasets_for_manifest(cfg), env, model_check)
    swift_args = cfg.get("swift") or {}  # refuse rows ms-swift would drop silently (vptracker/tasks/lengths.py)
    check_cards(manifest["data"], swift_args.get("max_length"), cfg.name, swift_args.get("max_pixels"), echo)
    contracts, sources = _contracts(cfg, manifest, echo)
    # a "complete" stage whose output was deleted reruns every command (training resumes at its end)
    keep = not force and previous.get("status") != "complete"
    done = set(previous.get("completed", [])) if keep else set()
    manifest["completed"] = sorted(done)
    manifest["runs"] = previous.get("runs", 0) + 1
    if rank0:
        write_manifest(stage_dir, manifest)
        if contracts:   # checkpoints find it in their parent folder while training runs
            for folder in {stage_dir, *(c.output_dir for c in commands if c.role == "train")}:
                write_contract_file(folder, contracts, sources)
    for cmd in commands:
        if cmd.role in done:
            continue
        if cmd.rank0_only and not rank0:
            _wait_for_node0(stage_dir)
            continue
        argv = list(cmd.argv)
        # force=true retrains from scratch; otherwise a killed run continues where it stopped
        if cmd.role in ("train", "clip") and not force and (ckpt := last_checkpoint(cmd.output_dir)):
            argv += ["--resume_from_checkpoint", str(ckpt)]
            manifest["resumed_from"][cmd.role] = str(ckpt)
            echo(f"# {cfg.name}: resuming {cmd.role} from {ckpt}")
        if cmd.payload is not None and cmd.payload_path is not None:
            cmd.payload_path.parent.mkdir(parents=True, exist_ok=True)
            cmd.payload_path.write_text(json.dumps(cmd.payload, indent=2))
        run = Command(cmd.role, argv, cmd.output_dir, cmd.env)
        if rank0:
            write_manifest(stage_dir, manifest)
        rc = _execute(run, stage_dir / "logs" / f"{cmd.role}.log", env, stream)
        if rc != 0:
            manifest.update(status="failed", failed_command=run.shell(), finished=now())
            if rank0:
                write_manifest(stage_dir, manifest)
            raise StageFailed(f"{cfg.name}: {cmd.role} exited with status {rc}; log: "
                              f"{stage_dir / 'logs' / (cmd.role + '.log')}; rerun to resume")
        done.add(cmd.role)
        manifest["completed"] = sorted(done)
    if not rank0:
        return output
    if contracts and output.is_dir():   # the final weights carry it even when copied elsewhere
        write_contract_file(output, contracts, sources)
    if any(c.role == "select" for c in commands):   # every checkpoint's score and the chosen one
        manifest["select"] = read_selection(stage_dir)
    manifest.update(status="complete", finished=now(), output=str(output.resolve()))
    write_manifest(stage_dir, manifest)
    return output


def _contracts(cfg: StageConfig, manifest: dict, echo: Callable[[str], None]) -> tuple[dict, list[str]]:
    """The task contracts of the stage's data (recorded in the manifest); the special tokens they
    name must be ones the stage adds (``swift.new_special_tokens``), else the prompts would be split
    into pieces the model never saw as tokens."""
    contracts, sources = stage_contracts(manifest["data"], cfg.name)
    inherited = _start_contracts(cfg)
    if inherited is not None:   # a chain's weights keep what earlier stages trained (tasks and frame counts)
        path, earlier = inherited
        merge_contracts(earlier, contracts, f"{cfg.name}: its data against the contract of {path}")
        contracts = earlier
        sources = [s for s in read_sources(path) if s not in sources] + sources
        echo(f"# {cfg.name}: carries the task contracts of {path} ({', '.join(sorted(earlier))})")
    if not contracts:
        echo(f"# {cfg.name}: no data card carries a task contract (rows not written by `vptracker prepare`): "
             "the checkpoint carries none, and `vptracker infer` will use its defaults")
        return contracts, sources
    manifest["contracts"] = {task: c.to_dict() for task, c in sorted(contracts.items())}
    swift = cfg.get("swift") or {}
    listed = list(swift.get("new_special_tokens") or [])
    for task, contract in sorted(contracts.items()):
        missing = [t for t in contract.special_tokens if t not in listed]
        if missing:
            raise StageConfigError(f"{cfg.name}: the {task} rows ({', '.join(sources)}) use special tokens "
                                   f"{list(contract.special_tokens)} (their contract) but swift.new_special_tokens "
                                   f"lists {listed}: add {missing}")
        cap = _stage_max_pixels(swift, contract.family)
        if cap is None or contract.train_max_pixels is None or cap == contract.train_max_pixels:
            continue
        message = (f"{cfg.name}: the stage resizes images under {cap} pixels but the {task} rows were written for "
                   f"{contract.train_max_pixels} (their contract, {', '.join(sources)})")
        if contract.box_scale == "resized":   # their answers are pixels of the other resize: every box off
            raise StageConfigError(f"{message}; their answers are in resized pixels: prepare them with "
                                   f"max_pixels={cap} or train with swift.max_pixels={contract.train_max_pixels}")
        echo(f"# {message}; their {contract.box_scale} boxes do not depend on it, the images the model sees do")
    return contracts, sources


def _start_contracts(cfg: StageConfig) -> tuple[Path, dict] | None:
    """The contracts of the weights a stage starts from (a chain's previous stage), if they have one."""
    start = Path(cfg.start_model) if cfg.start_model else None
    path = find_contract_file(start) if start is not None and start.is_dir() else None
    return None if path is None else (path, read_all_contracts(path))


def _stage_max_pixels(swift: dict, family: str) -> int | None:
    """The pixel cap a stage trains under: swift's max_pixels, else qwen-vl-utils' IMAGE_MAX_TOKEN_NUM."""
    if swift.get("max_pixels"):
        return int(swift["max_pixels"])
    tokens = (swift.get("model_kwargs") or {}).get("IMAGE_MAX_TOKEN_NUM")
    factor = get_family(family).resize_factor
    return int(tokens) * factor ** 2 if tokens and factor else None


def chain_stages(overrides: Sequence[str]) -> tuple[list[str], list[str]]:
    """The stages an ``all`` run covers (``stages=[...]`` override, else the four OmniPT stages)."""
    rest, stages = [], list(OMNIPT_STAGES)
    for item in overrides:
        if item.split("=", 1)[0].strip() == "stages":
            value = apply_overrides({}, [item])["stages"]
            stages = [value] if isinstance(value, str) else list(value or [])
        else:
            rest.append(item)
    known = available_stages()
    for name in stages:
        if name not in known:
            raise StageConfigError(f"override stages: unknown stage {name!r}; available: {known}")
    if not stages:
        raise StageConfigError("override stages: the list is empty")
    return stages, rest


def run_chain(overrides: Sequence[str] = (), dry_run: bool = False, env: dict | None = None,
              echo: Callable[[str], None] = print, force: bool = False) -> Path:
    """Runs stages in order, each from the previous stage's final weights; returns the last output.

    Overrides apply to every stage; ``<stage>.key=value`` applies to that stage only.
    """
    stages, rest = chain_stages(overrides)
    known = available_stages()
    env = default_env(echo) if env is None else dict(env)
    # Check every stage before the first one starts: its settings, its data and the first model.
    # Later stages start from weights that do not exist yet; they are checked when they start.
    previous: Path | None = None
    for index, name in enumerate(stages):
        cfg = load_stage(name, stage_overrides(rest, name, known) + ([f"init={previous}"] if previous else []))
        if not dry_run:
            check_model(cfg, must_exist=index == 0)
            plan_stage(cfg, env, must_exist=True)
        previous = final_weights(cfg)
    previous = None
    for name in stages:
        mine = stage_overrides(rest, name, known)
        if previous is not None:
            mine.append(f"init={previous}")
        previous = run_stage(name, mine, dry_run=dry_run, env=env, echo=echo, force=force)
    assert previous is not None
    return previous
