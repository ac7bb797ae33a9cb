"""GRPO variants of the grounding tasks, for the two RL stages (format RL and IoU RL).

``<task>_grpo`` draws exactly the rows of ``<task>`` and moves the last assistant turn into the
``solution`` column (the reward functions' ground truth, same answer grammar and scale as SFT;
``norm1000`` by default); earlier turns of multi-turn tasks stay in ``messages`` as context.
ms-swift keeps ``solution`` for the reward functions (``--external_plugins`` rewards receive it
as a keyword list).
"""
from __future__ import annotations

import random

from vptracker.tasks.base import register_task
from vptracker.tasks.omnipt_mot import Detection, OmniPTMOT
from vptracker.tasks.omnipt_rmot import OmniPTCRMOT, OmniPTRMOT
from vptracker.tasks.omnipt_sot import LocationPrediction, OmniPTSOT
from vptracker.tasks.vptracker_sot import VPTrackerSOT


def to_grpo(row: dict | None) -> dict | None:
    if row is None:
        return None
    messages = row["messages"]
    if not messages or messages[-1]["role"] != "assistant":
        raise ValueError("a GRPO row needs a conversation that ends with the assistant's answer")
    return {**row, "messages": messages[:-1], "solution": messages[-1]["content"]}


def _grpo(base: type) -> type:
    class GRPOVariant(base):
        __doc__ = f"{base.__name__} rows with the answer moved to ``solution``."

        def sample(self, index, rng: random.Random):
            return to_grpo(super().sample(index, rng))

    GRPOVariant.__name__ = f"{base.__name__}GRPO"
    return register_task(f"{base.name}_grpo")(GRPOVariant)


GRPO_TASKS = [_grpo(cls) for cls in (OmniPTSOT, OmniPTMOT, OmniPTRMOT, OmniPTCRMOT, LocationPrediction, Detection,
                                     VPTrackerSOT)]
