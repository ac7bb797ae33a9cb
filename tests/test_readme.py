"""The README is the test: every command of its reproduction sections (the VPTracker block, the
OmniPT block and its Tables 1-4 table, the ablation commands) is read out of README.md and run in
order, with the shipped configs, on small official-layout sets of all nine datasets and tiny models.

Only these change (``adapt``): the repository is a copy in a temporary folder (so ``data/``,
``output/`` and ``outputs/`` are its own); ``model=/models/...`` becomes a tiny model of that family;
node counts are dropped (one process, one node); training gets ``profile=tiny``, data preparation
``max_samples=4``, inference ``max_tokens=24`` (decode steps: a random tiny model fills any budget);
the vLLM inference config becomes its transformers twin. Never frames, scales,
pixel caps or contracts. The multi-node ``--dry-run`` runs as printed and its plan must fit.
A command that fails fails the test; a command missing from the README fails it too.

Each section runs in a copy of its own, so the three run side by side under parallel test workers; a
section runs after the commands of an earlier one it needs, as a user would (the ablations train on the
rows of the OmniPT block's ``data_preparation.sh omnipt``).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from readme_data import write_all

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SECTIONS = ("### VPTracker (TNL2K, TNLLT)", "### OmniPT (Tables 1-4)", "### Ablations (Tables 5-7)")
# what the reproduction sections must hold: deleting one of these commands fails the test
REQUIRED = (
    r"^DATA_ROOT=data bash data_preparation\.sh vptracker\b",
    r"bash train\.sh vptracker_sft ",
    r"bash infer\.sh --config configs/infer/vptracker_sot_vllm\.yaml .*dataset=tnl2k .*split=test",
    r"vptracker eval sot --protocol tnl2k ",
    r"vptracker eval sot --protocol ostrack ",
    r"bash infer\.sh .*dataset=tnllt ",
    r"vptracker eval sot --protocol lasot .*TNLLT",
    r"^DATA_ROOT=data bash data_preparation\.sh omnipt\b",
    r"NNODES=3 .*bash train\.sh all --dry-run .*model_preset=qwen2_5_vl_72b",
    r"NODE_RANK=\$RANK .*bash train\.sh all model=.*model_preset=qwen2_5_vl_72b$",
    r"^M=output/omnipt/stage4_iou_grpo/merged$",
    r"bash infer\.sh --config configs/infer/omnipt_mot\.yaml model=\$M dataset=bensmot ",
    r"bash infer\.sh --config configs/infer/omnipt_caption\.yaml model=\$M .*options\.tracks_from=outputs/bensmot",
    r"vptracker eval smot --gt-root data/BenSMOT/test ",
    r"bash infer\.sh --config configs/infer/omnipt_crmot\.yaml model=\$M dataset=crtrack ",
    r"vptracker eval crmot --gt-root data/CRTrack/CRTrack_In-domain/gt_test ",
    r"bash infer\.sh --config configs/infer/omnipt_mot\.yaml model=\$M dataset=dancetrack .*split=val",
    r"vptracker eval mot --benchmark DanceTrack ",
    r"bash infer\.sh --config configs/infer/omnipt_rmot\.yaml model=\$M dataset=refer_kitti_v2 ",
    r"vptracker eval rmot --gt-root data/Refer-KITTI-V2 ",
    r"vptracker eval report --summaries outputs/\*/eval ",
    r"bash train\.sh all .*model_preset=qwen2_5_vl_3b",
    r"bash train\.sh all stages=\[stage1_format_grpo,stage3_sft\]",
    r"data_preparation\.sh omnipt task_options\.frames=4",
    r"bash train\.sh all data_root=data/prepared_f4/omnipt",
    r"bash infer\.sh .*model=output/table7/f4/.* options\.frames_per_sample=4",
)
FAMILY_OF = (("Qwen3-VL", "qwen3_vl"), ("Qwen2.5-VL", "qwen2_5_vl"), ("Qwen2-VL", "qwen2_vl"))
NODE_VARS = re.compile(r"\b(NNODES|NODE_RANK|MASTER_ADDR|MASTER_PORT|NPROC_PER_NODE)=\S+\s+")


# commands of an earlier section a section needs first: the ablations' chains read data/prepared/omnipt
NEEDS = {SECTIONS[2]: (SECTIONS[1], r"^DATA_ROOT=data bash data_preparation\.sh omnipt\b")}


def readme_commands(text: str, sections: tuple[str, ...] = SECTIONS) -> list[str]:
    """The commands of the reproduction sections, in order: every line of their ``bash`` blocks and
    every ``bash ...`` / ``.venv/bin/vptracker ...`` span of their tables."""
    commands: list[str] = []
    for title in sections:
        assert title in text, f"README.md has no section {title!r}"
        body = text.split(title, 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
        in_block = False
        for line in body.splitlines():
            if line.startswith("```"):
                in_block = line.strip() == "```bash"
                continue
            if in_block:
                command = line.split("   # ", 1)[0].strip()
                if command:
                    commands.append(command)
            elif line.startswith("|") and not line.startswith("|---"):
                commands += [span for span in re.findall(r"`([^`]+)`", line)
                             if span.startswith(("bash ", ".venv/bin/vptracker "))]
    return commands


def adapt(command: str, model_of) -> str:
    """The README command with only the documented scale knobs changed (see the module docstring)."""
    if "--dry-run" in command:
        return command
    command = NODE_VARS.sub("", command)
    for name, family in FAMILY_OF:
        if f"model=/models/{name}" in command:
            command = re.sub(rf"model=/models/{re.escape(name)}\S*", f"model={model_of(family)}", command)
    command = command.replace("configs/infer/vptracker_sot_vllm.yaml", "configs/infer/vptracker_sot.yaml")
    if "bash train.sh" in command:
        command += " profile=tiny"
    if "data_preparation.sh" in command:
        command += " max_samples=4"
    if "bash infer.sh" in command:   # decode steps: a random tiny model never stops on its own
        command += " max_tokens=24"
    return command


def test_readme_lists_every_recipe_command():
    commands = readme_commands((REPO / "README.md").read_text())
    for pattern in REQUIRED:
        assert any(re.search(pattern, c) for c in commands), f"README.md lost the command {pattern!r}"


def test_a_missing_section_fails():
    with pytest.raises(AssertionError, match="no section"):
        readme_commands((REPO / "README.md").read_text().replace(SECTIONS[1], "### OmniPT"))


def _copy_repo(dest: Path) -> None:
    top = {".git", ".venv", "outputs", "output", "data", "tests", ".pytest_cache"}   # run folders, not code

    def ignore(folder, names):
        skip = {n for n in names if n == "__pycache__" or n.endswith(".egg-info")}
        return skip | (top & set(names) if Path(folder) == REPO else set())

    shutil.copytree(REPO, dest, ignore=ignore)
    (dest / ".venv").symlink_to(REPO / ".venv")


def section_commands(text: str, section: str) -> list[str]:
    """One section's commands, after the commands of an earlier section it needs (:data:`NEEDS`)."""
    needs = []
    if section in NEEDS:
        earlier, pattern = NEEDS[section]
        needs = [c for c in readme_commands(text, (earlier,)) if re.search(pattern, c)]
        assert needs, f"README.md's {earlier!r} lost the command {pattern!r} that {section!r} needs"
    return needs + readme_commands(text, (section,))


def _run(commands: list[str], repo: Path) -> str:
    script = ["set -euo pipefail"]
    for i, command in enumerate(commands):
        script += [f"echo '@@ {i}' >&2", f"echo '@@ {i}'", command]
    env = {**os.environ, "PYTHONPATH": str(repo), "PYTHON": str(repo / ".venv" / "bin" / "python")}
    for var in ("NNODES", "NPROC_PER_NODE", "NODE_RANK", "CUDA_VISIBLE_DEVICES"):
        env.pop(var, None)
    done = subprocess.run(["bash", "-c", "\n".join(script)], cwd=repo, env=env, capture_output=True, text=True,
                          timeout=3600, check=False)
    failed = re.findall(r"@@ (\d+)", done.stdout)
    where = commands[int(failed[-1])] if failed else "before the first command"
    assert done.returncode == 0, f"README command failed: {where}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done.stdout


def test_the_ablations_need_the_omnipt_rows_first():
    commands = section_commands((REPO / "README.md").read_text(), SECTIONS[2])
    assert commands[0].startswith("DATA_ROOT=data bash data_preparation.sh omnipt")
    assert commands[1:] == readme_commands((REPO / "README.md").read_text(), (SECTIONS[2],))


# the longest first (ablations ~8 min, OmniPT ~5, VPTracker ~1 on 2 cores): parallel workers start them first
@pytest.mark.parametrize("section", SECTIONS[::-1], ids=("ablations", "omnipt", "vptracker"))
def test_readme_recipes_run_as_printed(section, tiny_model_factory, tmp_path):
    repo = tmp_path / "repo"
    _copy_repo(repo)
    write_all(repo / "data")
    text = (REPO / "README.md").read_text()
    commands = [adapt(c, tiny_model_factory) for c in section_commands(text, section)]
    stdout = _run(commands, repo)
    outputs = repo / "outputs"
    if section == SECTIONS[0]:
        for name in ("tnl2k/eval", "tnl2k/eval_ostrack", "tnllt/eval"):
            assert (outputs / name / "summary.json").is_file(), name
    elif section == SECTIONS[1]:
        # the multi-node dry run printed every stage's plan, and each fits 3 nodes of 8 80 GB GPUs
        dry = stdout.split("@@ ")[next(i for i, c in enumerate(commands) if "--dry-run" in c) + 1]
        assert dry.count("#   fits") == 4 and "does not fit" not in dry, dry[-3000:]
        # every table's evaluation wrote its summary, and the report holds the paper's tables beside them
        for name in ("bensmot/eval", "crmot/eval", "dancetrack/eval", "rmot/eval"):
            assert (outputs / name / "summary.json").is_file(), name
        report = (outputs / "report.md").read_text()
        assert "Table 4" in report and "76.56" in report
        # the chain's final weights know every task of every stage and the frame counts they trained with
        contract = json.loads((repo / "output/omnipt/stage4_iou_grpo/merged/vptracker_contract.json").read_text())
        tasks = contract["tasks"]
        assert {"omnipt_mot", "omnipt_rmot", "omnipt_crmot", "omnipt_sot", "omnipt_caption"} <= set(tasks)
        assert tasks["omnipt_mot"]["frames_per_sample"] == [8] and tasks["omnipt_crmot"]["frames_per_sample"] == [9]
        assert tasks["omnipt_caption"]["caption_frames"] == [32]
    else:
        for run in ("table5/qwen2_5_vl_3b/stage4_iou_grpo", "table6/sft/stage3_sft", "table7/f4/stage4_iou_grpo"):
            assert (repo / "output" / run / "merged").is_dir(), run
        f4 = json.loads((repo / "output/table7/f4/stage4_iou_grpo/merged/vptracker_contract.json").read_text())
        assert f4["tasks"]["omnipt_mot"]["frames_per_sample"] == [4]
        assert (outputs / "table7_f4").is_dir()
