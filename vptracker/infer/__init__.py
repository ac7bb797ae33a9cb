"""Inference: batched iterative tracking loops over an engine interface (see SPEC sections 4 and 5).

Python API::

    from vptracker.infer import make_engine, track_sot, run_task
    from vptracker.tasks import get_task     # the one task registry (training and tracking)
    engine = make_engine("path/to/model", special_tokens=get_task("vptracker_sot").contract().special_tokens)
    track_sot(engine, sequences, "outputs/otb")            # writes <seq>.txt and responses.jsonl
"""
from vptracker.infer.common import TaskOptions  # noqa: F401
from vptracker.infer.engine import CallableEngine, Engine, Request, SwiftEngine, detect_family, make_engine  # noqa: F401
from vptracker.infer.loop import LoopStats, run_async, run_batched  # noqa: F401
from vptracker.infer.outputs import merge  # noqa: F401
from vptracker.infer.runner import RunSummary, parse_shard, plan, run_task, track_sot  # noqa: F401
