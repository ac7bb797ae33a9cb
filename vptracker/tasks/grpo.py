"""GRPO variants of the grounding tasks, for the two RL stages (format RL and IoU RL).

``<task>_grpo`` draws exactly the rows of ``<task>`` and moves an assistant turn into the
``solution`` column (the reward functions' ground truth, same answer grammar and scale as SFT;
``norm1000`` by default); the turns before it stay in ``messages`` as context. ms-swift keeps
``solution`` and ``reward_matching`` for the reward functions (``--external_plugins`` rewards
receive every extra column as a keyword list).

Every query is rewarded. A dialogue with several queries (``omnipt_mot``: first-frame boxes, track
these objects, objects added midway) becomes one GRPO row per query: row *k* holds the dialogue up
to query *k*, with the true answers of the earlier queries as context, and query *k*'s answer as
its ``solution``. So ``samples: N`` of ``omnipt_mot_grpo`` writes 3N rows (the card counts rows),
each a prompt of its own in a GRPO batch: a batch of B prompts holds about B/3 windows, and
``num_generations`` completions are sampled for every query. The alternative, one row per window
with a randomly chosen query, would reward each query a third as often for the same rows.

``reward_matching`` (every row carries it, so mixtures of jobs share one column): ``order`` where
the prompt fixes the order of the objects (SOT, location prediction, MOT's "track these objects"
whose prompt lists the first-frame boxes), ``set`` where it does not (RMOT, CRMOT, detection, MOT's
first-frame and "added midway" queries), read by :mod:`vptracker.train.rewards`.
"""
from __future__ import annotations

import random

from vptracker.tasks.base import register_task
from vptracker.tasks.omnipt_grounding import Grounding
from vptracker.tasks.omnipt_mot import Detection, OmniPTMOT
from vptracker.tasks.omnipt_rmot import OmniPTCRMOT, OmniPTRMOT
from vptracker.tasks.omnipt_sot import LocationPrediction, OmniPTSOT
from vptracker.tasks.vptracker_sot import VPTrackerSOT

# The matching of each assistant turn's answer, in dialogue order.
MATCHING = {OmniPTSOT: ("order",), OmniPTMOT: ("set", "order", "set"), OmniPTRMOT: ("set",),
            OmniPTCRMOT: ("set",), LocationPrediction: ("order",), Detection: ("set",), VPTrackerSOT: ("order",),
            Grounding: ("order",)}


def to_grpo(row: dict | None, matching: str = "order") -> dict | None:
    """The row with its last assistant turn moved to ``solution``."""
    if row is None:
        return None
    messages = row["messages"]
    if not messages or messages[-1]["role"] != "assistant":
        raise ValueError("a GRPO row needs a conversation that ends with the assistant's answer")
    return {**row, "messages": messages[:-1], "solution": messages[-1]["content"], "reward_matching": matching}


def per_query(row: dict | None, matchings: tuple[str, ...]) -> list[dict] | None:
    """One GRPO row per assistant turn, earlier turns as context (see the module docstring)."""
    if row is None:
        return None
    answers = [i for i, m in enumerate(row["messages"]) if m["role"] == "assistant"]
    if len(answers) != len(matchings):
        raise ValueError(f"a dialogue with {len(answers)} answers for {len(matchings)} reward matchings")
    return [to_grpo({**row, "messages": row["messages"][:i + 1]}, m) for i, m in zip(answers, matchings)]


def _grpo(base: type) -> type:
    matchings = MATCHING[base]

    class GRPOVariant(base):
        __doc__ = f"{base.__name__} rows, one per query, with that query's answer moved to ``solution``."
        trackable = False   # trains the base task's tracking loop (``serves``), tracks nothing itself

        def sample(self, index, rng: random.Random):
            row = super().sample(index, rng)
            if len(matchings) == 1:
                return to_grpo(row, matchings[0])
            return per_query(row, matchings)

    GRPOVariant.__name__ = f"{base.__name__}GRPO"
    return register_task(f"{base.name}_grpo")(GRPOVariant)


GRPO_TASKS = [_grpo(cls) for cls in MATCHING]
