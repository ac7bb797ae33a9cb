"""Task sample builders, one module per task; importing this package registers them all.

Adding a task: one file here with a :class:`~vptracker.tasks.base.Task` subclass decorated by
``@register_task("name")`` and one import line below.
"""
from vptracker.tasks.base import Task, generate, get_task, register_task, tasks  # noqa: F401
from vptracker.tasks import vptracker_sot  # noqa: F401,E402
from vptracker.tasks import omnipt_sot  # noqa: F401,E402
from vptracker.tasks import omnipt_mot  # noqa: F401,E402
from vptracker.tasks import omnipt_rmot  # noqa: F401,E402
from vptracker.tasks import omnipt_caption  # noqa: F401,E402
from vptracker.tasks import pretext_reid  # noqa: F401,E402
from vptracker.tasks import pretext_clip  # noqa: F401,E402
from vptracker.tasks import grpo  # noqa: F401,E402
