"""One-process ms-swift commands of a stage started warm: forked from a process that has ms-swift imported.

On a CPU a tiny ms-swift command spends most of its time importing (measured: 11.6 s of a 16.2 s
two-step SFT is imports of torch, transformers, peft, trl and datasets; docs/tests.md), and a chain
runs two or three commands per stage. Python's ``multiprocessing`` forkserver imports those
libraries once per runner (:data:`PRELOAD`); each command is then a fork of that server that runs
the command's module as ``__main__`` with the command's arguments, environment and working folder,
exactly as ``swift sft ...`` would (its front process only starts ``python swift/cli/sft.py ...``).
The server itself never runs a torch operation, so no thread pool is forked.

Only one-process commands on a machine without a visible GPU start warm: with NPROC_PER_NODE or
NNODES set, ms-swift's own launcher (torchrun) starts the ranks as before, and where torch sees a GPU
every command is a fresh process (a fork of a process that asked CUDA for its devices may not use
CUDA, and a GPU step makes the import time small beside it). ``VPTRACKER_WARM_START=0`` starts
every command as a fresh process. A command's output reaches the runner through a pipe, line by line, as a subprocess's
would; its exit status is the subprocess's (negative: killed by that signal).
"""
from __future__ import annotations

import atexit
import multiprocessing
import os
import runpy
import sys
import types
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from pathlib import Path

from vptracker.train.commands import visible_gpus

# ms-swift's subcommands and the modules its front process runs for them (swift/cli/main.py ROUTE_MAPPING)
SWIFT_ROUTES = {"sft": "swift.cli.sft", "rlhf": "swift.cli.rlhf", "export": "swift.cli.export"}
# What the server imports once: everything the three entry points above import before they start work.
# ms-swift patches transformers when it imports (swift/trainers/patcher.py), so the server serves
# ms-swift's own entry points only: the project's ``python -m vptracker...`` commands start fresh.
PRELOAD = ["swift.cli.utils", "swift.ray_utils", "swift.pipelines.train", "swift.pipelines.export"]
LAUNCHER_VARS = ("NPROC_PER_NODE", "NNODES")
SWITCH = "VPTRACKER_WARM_START"

_context = None


def route(argv: Sequence[str], env: Mapping[str, str]) -> tuple[str, list[str]] | None:
    """``(module, arguments)`` when ``argv`` may start warm, else None (a fresh process)."""
    if os.environ.get(SWITCH, "1") == "0" or any(env.get(k) or os.environ.get(k) for k in LAUNCHER_VARS):
        return None
    if _gpus() > 0:   # CUDA does not survive a fork of a process that asked for it: fresh processes on GPUs
        return None
    if len(argv) >= 2 and Path(argv[0]).name == "swift" and argv[1] in SWIFT_ROUTES:
        return SWIFT_ROUTES[argv[1]], list(argv[2:])
    return None


@cache
def _gpus() -> int:
    return visible_gpus()


def start_server(echo: Callable[[str], None] | None = None) -> None:
    """Starts the server now (it imports :data:`PRELOAD` while the runner checks configs and data);
    ``echo`` says so, once per process."""
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        # applies only when this process has not started its forkserver yet; otherwise children import cold
        _context.set_forkserver_preload(PRELOAD)
        if echo is not None:
            echo(f"# ms-swift commands start warm: forks of one process that imported ms-swift (one process, "
                 f"no GPU; {SWITCH}=0 starts each fresh)")
    from multiprocessing import forkserver

    forkserver.ensure_running()


def _main(module: str, args: list[str], env: dict[str, str], cwd: str, out) -> None:
    """In the forked child: the command's output, folder, environment and threads, then its module."""
    os.dup2(out.fileno(), 1)
    os.dup2(out.fileno(), 2)
    out.close()
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    for entry in reversed([p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    threads = env.get("OMP_NUM_THREADS", "")
    if threads.isdigit() and int(threads) > 0:   # the server's torch read the variable when it imported
        import torch

        torch.set_num_threads(int(threads))
    sys.argv = [module, *args]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    finally:
        atexit._run_exitfuncs()   # a forked child leaves through os._exit; a fresh process would run them
        sys.stdout.flush()
        sys.stderr.flush()


def run(module: str, args: list[str], env: Mapping[str, str], on_line: Callable[[str], None]) -> int:
    """Runs ``module`` as ``__main__`` in a fork of the server; every output line goes to ``on_line``."""
    start_server()
    read, write = _context.Pipe(duplex=False)
    child = _context.Process(target=_main, args=(module, list(args), dict(env), os.getcwd(), write),
                             name=f"warm {module}")
    # A fork re-imports the runner's __main__ (a user's script: it would run again) unless it has no
    # file or name; the command needs nothing from it.
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        child.start()
    finally:
        sys.modules["__main__"] = main
    write.close()   # the child holds the only write end: end of file when it exits
    with os.fdopen(os.dup(read.fileno()), "r", encoding="utf-8", errors="replace") as lines:
        read.close()
        for line in lines:
            on_line(line)
    child.join()
    return child.exitcode
