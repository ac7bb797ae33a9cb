"""Warm starts (vptracker/train/warm.py): a one-process ms-swift command on a machine without a GPU
runs in a fork of a server that imported ms-swift once, and behaves as the fresh process would: its
arguments, environment, folder, threads, output lines and exit status; the runner's own script is
not run again."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from vptracker.train import warm

SWIFT = "/opt/venv/bin/swift"


@pytest.mark.parametrize(("argv", "env", "expected"), [
    ([SWIFT, "sft", "--model", "m"], {}, ("swift.cli.sft", ["--model", "m"])),
    ([SWIFT, "rlhf", "--rlhf_type", "grpo"], {}, ("swift.cli.rlhf", ["--rlhf_type", "grpo"])),
    ([SWIFT, "export", "--merge_lora", "true"], {}, ("swift.cli.export", ["--merge_lora", "true"])),
    ([SWIFT, "sft", "--model", "m"], {"NPROC_PER_NODE": "2"}, None),   # ranks: ms-swift's torchrun
    ([SWIFT, "sft", "--model", "m"], {"NNODES": "3"}, None),
    ([SWIFT, "web-ui"], {}, None),                                      # not a command the runner plans
    ([sys.executable, "-m", "vptracker.train.clip", "--config", "c.json"], {}, None),  # ours: fresh
])
def test_only_one_process_swift_commands_start_warm(argv, env, expected, monkeypatch):
    for var in ("NPROC_PER_NODE", "NNODES", warm.SWITCH):
        monkeypatch.delenv(var, raising=False)
    assert warm.route(argv, env) == expected
    monkeypatch.setattr(warm, "_gpus", lambda: 1)   # a GPU machine: every command starts fresh
    assert warm.route(argv, env) is None
    monkeypatch.setattr(warm, "_gpus", lambda: 0)
    monkeypatch.setenv(warm.SWITCH, "0")
    assert warm.route(argv, env) is None


SCRIPT = '''
import os, sys
print("runner script runs", flush=True)
sys.path.insert(0, {probe_dir!r})
from vptracker.train import warm
said = []
warm.start_server(said.append)
warm.start_server(said.append)
print("said", len(said), said[0])
lines = []
code = warm.run("probe", ["--flag", "x"], {{**os.environ, "PROBE": "seen", "OMP_NUM_THREADS": "1",
                                        "PYTHONPATH": {probe_dir!r}}}, lines.append)
print("exit", code)
print("".join(lines), end="")
code = warm.run("probe_fails", [], dict(os.environ), lines.append)
print("exit", code)
print(lines[-1], end="")
'''

PROBE = '''
import os, sys
import torch
print("argv", sys.argv[1:])
print("name", __name__, "cwd", os.getcwd())
print("env", os.environ.get("PROBE"), "threads", torch.get_num_threads())
print("swift imported before me", "swift.pipelines.train" in sys.modules)
sys.exit(3)
'''


@pytest.mark.slow
def test_a_warm_command_sees_its_arguments_environment_and_folder_and_returns_its_status(tmp_path):
    probe_dir = tmp_path / "probe"
    probe_dir.mkdir()
    (probe_dir / "probe.py").write_text(PROBE)
    (probe_dir / "probe_fails.py").write_text("raise ValueError('bad row')\n")
    script = tmp_path / "runner.py"   # no __main__ guard, like many a user's script
    script.write_text(textwrap.dedent(SCRIPT.format(probe_dir=str(probe_dir))))
    work = tmp_path / "work"
    work.mkdir()
    done = subprocess.run([sys.executable, str(script)], cwd=work, capture_output=True, text=True, timeout=300,
                          check=False, env={**__import__("os").environ, "OMP_NUM_THREADS": "2"})
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert out.count("runner script runs") == 1   # the fork did not run the runner's script again
    assert "said 1 # ms-swift commands start warm" in out and "VPTRACKER_WARM_START=0 starts each fresh" in out
    assert "exit 3\n" in out and "argv ['--flag', 'x']" in out
    assert f"name __main__ cwd {work}" in out
    assert "env seen threads 1" in out   # the command's OMP_NUM_THREADS, not the server's 2
    assert "swift imported before me True" in out
    assert "exit 1\n" in out and out.rstrip().endswith("ValueError: bad row")
