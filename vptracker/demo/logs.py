"""Where the demo's output goes, and the settings that make a run repeat itself.

The terminal shows the demo's own steps and one progress bar per training stage; everything that
ms-swift, transformers and the training subprocesses print (INFO lines, warnings such as
"trust_remote_code=True") goes to ``<out>/demo.log``, which the report links. ``verbose=True``
shows both, as a plain ``vptracker train`` run would.
"""
from __future__ import annotations

import logging
import random
import re
import sys
from contextlib import contextmanager
from pathlib import Path

from vptracker.demo.pipeline import AUTO_MOST
from vptracker.infer.threads import choose_threads, use_threads

# ms-swift's training bar as the subprocess prints it: "Train:  45%|####5     | 900/2000 [...]"
_BAR = re.compile(r"Train:\s+\d+%\|.*?\|\s*(\d+)/(\d+)\s*\[[^\]]*\]")
# the libraries whose INFO and WARNING lines belong in the log, not on the terminal
_LIBRARIES = ("swift", "transformers", "peft", "accelerate", "trl", "datasets", "py.warnings", "modelscope")


class DemoLog:
    """Splits output between the terminal and ``path``."""

    def __init__(self, path: Path, verbose: bool = False, terminal=None):
        self.path = Path(path)
        self.verbose = verbose
        self.terminal = terminal or sys.stdout
        self.file = open(self.path, "a", encoding="utf-8", errors="replace")
        self._bar_open = False
        self._bar_last = None

    def echo(self, text: str) -> None:
        """A line of the demo's own progress: terminal and log."""
        self._close_bar()
        self.terminal.write(text + "\n")
        self.terminal.flush()
        self.file.write(text + "\n")
        self.file.flush()

    def stage_output(self, line: str) -> None:
        """One line printed by a training subprocess: the log; the terminal gets its progress bar."""
        self.file.write(line if line.endswith("\n") else line + "\n")
        if self.verbose:
            self.terminal.write(line)
            return
        match = _BAR.search(line)
        if match and match.group(1, 2) != self._bar_last:
            self._bar_last = match.group(1, 2)
            done, total = int(match.group(1)), int(match.group(2))
            self.terminal.write("\r    " + match.group(0).strip()[:110])
            self._bar_open = done < total
            if not self._bar_open:
                self.terminal.write("\n")
            self.terminal.flush()

    def _close_bar(self) -> None:
        if self._bar_open:
            self.terminal.write("\n")
        self._bar_open, self._bar_last = False, None

    def close(self) -> None:
        self._close_bar()
        self.file.close()

    @contextmanager
    def libraries_to_file(self):
        """While inside, library log records (and Python warnings) go to the log file only."""
        # The libraries attach their terminal handlers when first imported: import them first so
        # that those handlers exist to be quietened.
        import transformers
        from swift.utils import get_logger

        get_logger()
        if not self.verbose:  # transformers' own bars (loading and writing weights)
            transformers.utils.logging.disable_progress_bar()
        handler = logging.StreamHandler(self.file)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
        logging.captureWarnings(True)
        names = [n for n in list(logging.root.manager.loggerDict) if n.split(".")[0] in _LIBRARIES]
        loggers = [logging.getLogger(n) for n in sorted(set(names) | set(_LIBRARIES))]
        quietened: list[tuple[logging.Handler, int]] = []
        for logger in loggers:
            for h in logger.handlers:
                if not self.verbose and type(h) is logging.StreamHandler:
                    quietened.append((h, h.level))
                    h.setLevel(logging.ERROR)
        # records of child loggers reach these through propagation
        tops = [logging.getLogger(n) for n in _LIBRARIES]
        for logger in tops:
            logger.addHandler(handler)
        try:
            yield
        finally:
            for h, level in quietened:
                h.setLevel(level)
            for logger in tops:
                logger.removeHandler(handler)
            transformers.utils.logging.enable_progress_bar()
            logging.captureWarnings(False)


def make_deterministic(seed: int, threads) -> None:
    """Seeds every generator and sets the CPU threads for this process and the training subprocesses
    it starts (float sums split across threads differ in their last bits, and a tracker that keeps or
    loses a target turns such bits into whole AUC points). ``threads``: a number, or ``auto``
    (:mod:`vptracker.infer.threads`; each step then chooses again)."""
    import numpy as np
    import torch

    use_threads(choose_threads(threads, most=AUTO_MOST))
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    # CPU kernels are deterministic for a fixed thread count; this turns any that are not into errors.
    torch.use_deterministic_algorithms(True)
