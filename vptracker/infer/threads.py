"""CPU threads for torch on a machine that may be shared.

With two threads on two cores every small operation of a tiny model ends at a barrier where one
thread waits for the other. When a process of another session holds one of the cores, that thread
gets a fraction of its core in slices of milliseconds and every operation waits for it: the SOT
demo's SFT steps took 12x and its tracking pass 45x their idle time beside one busy loop, even at
``nice -n 19`` (the kernel's autogroups share the CPU between sessions first, and niceness counts only
inside one). One thread loses nothing there but is slower on an idle machine (0.133 against 0.105 s
an SFT step). ``threads: auto`` therefore asks, just before each step, how many cores the rest of
the machine leaves idle, and runs the step on that many threads (at least one, at most ``most``).
Float sums split over another number of threads differ in their last bits, so a fixed number gives
the same numbers on every run and ``auto`` gives them whenever the machine is idle; the number each
step used is written down. Measurements: docs/threads.md.
"""
from __future__ import annotations

import math
import os

import psutil

AUTO = "auto"
# A core another process uses for more than this share counts as taken (0.2: a desktop's background
# work leaves both cores free; a busy loop, a compiler or a test run takes one).
TAKEN = 0.2


def check_threads(value, key: str = "threads") -> int | str:
    """``value`` as a positive thread count or ``"auto"``; anything else is a ValueError naming ``key``."""
    if isinstance(value, str) and value.strip().lower() == AUTO:
        return AUTO
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{key}: expected a positive number of CPU threads or 'auto', got {value!r}")
    return value


def busy_cores(sample_s: float = 0.3) -> float:
    """How many cores other processes kept busy over ``sample_s`` seconds (this process waits meanwhile)."""
    own = psutil.Process()
    before = own.cpu_times()
    share = psutil.cpu_percent(interval=sample_s) / 100.0 * (psutil.cpu_count() or 1)
    after = own.cpu_times()
    mine = (after.user + after.system - before.user - before.system) / sample_s
    return max(0.0, share - mine)


def choose_threads(setting, most: int | None = None, sample_s: float = 0.3) -> int:
    """The thread count for the next step: ``setting`` itself when it is a number; for ``auto``, the
    cores left idle (rounding a core taken past :data:`TAKEN` down), between 1 and ``most``
    (default: every core)."""
    setting = check_threads(setting)
    if setting != AUTO:
        return setting
    cores = psutil.cpu_count() or 1
    most = cores if most is None else most
    free = cores - math.ceil(busy_cores(sample_s) - TAKEN)
    return max(1, min(most, free))


def use_threads(n: int) -> None:
    """Runs this process's torch on ``n`` threads, and the subprocesses it starts from now on."""
    import torch  # kept out of the command line's start

    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
