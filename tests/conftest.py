"""Shared fixtures: offline Hugging Face settings, tiny models built once per session, shared data."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

# Nothing in the test suite may touch the network.
for _var, _val in {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                   "MODELSCOPE_OFFLINE": "1", "USE_HF": "1", "TOKENIZERS_PARALLELISM": "false",
                   "WANDB_MODE": "disabled"}.items():
    os.environ.setdefault(_var, _val)


def pytest_configure(config):
    """The tests' torch and every subprocess they start (training runs, the CLI) use the demos' setting,
    ``threads: auto`` (vptracker/infer/threads.py), chosen once here in the main process: two threads on
    an idle 2-core machine, one when another session's process holds a core (two would wait for it at
    every barrier). Parallel workers (pytest-xdist's ``-n``) inherit the choice split between them, so
    two workers on two idle cores run one thread each."""
    if "OMP_NUM_THREADS" in os.environ:   # set by the caller, or inherited by a worker
        return
    from vptracker.demo.pipeline import AUTO_MOST
    from vptracker.infer.threads import choose_threads

    workers = getattr(config.option, "numprocesses", None) or 1
    threads = max(1, choose_threads("auto", most=AUTO_MOST) // workers)
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)


SHARED = Path(__file__).resolve().parents[2] / "shared"
SHARED_DATA = SHARED / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real third-party data in ../shared/data (skips when the checkout has no ../shared)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not available: {SHARED_DATA} is absent (tests need ../shared beside the repo)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_model_factory(tmp_path_factory):
    """``factory(family) -> Path`` building each tiny model once per test session."""
    from vptracker.tiny.model import make_tiny_model

    built: dict[str, Path] = {}

    def factory(family: str = "qwen2_5_vl") -> Path:
        if family not in built:
            built[family] = make_tiny_model(family, tmp_path_factory.mktemp(f"tiny_{family}"))
        return built[family]

    return factory


@pytest.fixture(scope="session")
def tiny_model(tiny_model_factory) -> Path:
    return tiny_model_factory("qwen2_5_vl")

# Helpers shared by test files (official dataset layouts, OmniPT data) live beside them in tests/;
# files in sub-folders (tests/hostile/) import them too.
import sys as _sys

_sys.path.insert(0, str(Path(__file__).resolve().parent))


# A test that builds or trains a model is slow, whether it says so or not: it uses a tiny model
# fixture or calls the builders / runners itself. `pytest -m "not slow"` is then the quick loop.
_MODEL_FIXTURES = {"tiny_model_factory"}
_MODEL_CALLS = ("make_tiny_model(", "run_stage(", "run_chain(", "make_engine(", "\"train\", \"--stage\"", "\"demo\"")

# The files whose tests take minutes, the longest first (measured: docs/tests.md). They start first and
# the short tests fill both workers at the end; the order changes only how the workers share the run.
FIRST = ("test_readme.py", "test_train_stages.py", "test_omnipt_chain.py", "test_stage_select.py",
         "test_sweep_table5.py", "test_install.py", "test_prepare.py")


def _start_rank(item) -> tuple[int, bool]:
    name = item.path.name
    return (FIRST.index(name) if name in FIRST else len(FIRST), not item.get_closest_marker("slow"))


def pytest_collection_modifyitems(config, items):
    import inspect

    for item in items:
        if item.get_closest_marker("slow"):
            continue
        uses = _MODEL_FIXTURES & set(getattr(item, "fixturenames", ()))
        try:
            source = inspect.getsource(item.function) if hasattr(item, "function") else ""
        except (OSError, TypeError):
            source = ""
        if uses or any(call in source for call in _MODEL_CALLS):
            item.add_marker(pytest.mark.slow)
    items.sort(key=_start_rank)   # stable: file order inside each rank
