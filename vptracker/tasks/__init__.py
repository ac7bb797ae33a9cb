"""Tasks, one module each; importing this package registers them all in the one task registry.

A task is one definition for training and inference: its builder (rows for ms-swift), and for a
trackable task the contract its tracking side follows (``Task.contract()``,
:mod:`vptracker.tasks.contract`); the tracking side itself is in :mod:`vptracker.infer.sides`.
``get_task(name)`` is the only lookup.

Adding a task: one file here with a :class:`~vptracker.tasks.base.Task` subclass decorated by
``@register_task("name")`` and one import line below.
"""
from vptracker.tasks import (
    grpo,  # noqa: F401
    omnipt_caption,  # noqa: F401
    omnipt_mot,  # noqa: F401
    omnipt_rmot,  # noqa: F401
    omnipt_sot,  # noqa: F401
    pretext_clip,  # noqa: F401
    pretext_reid,  # noqa: F401
    vptracker_sot,  # noqa: F401
)
from vptracker.tasks.base import Task, generate, get_task, register_task, tasks, trackable_tasks  # noqa: F401
