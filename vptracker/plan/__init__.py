"""Sizing a run before it starts (``vptracker plan``, ``--dry-run``).

:mod:`~vptracker.plan.memory` (memory per GPU process from a config and a cluster shape),
:mod:`~vptracker.plan.rows` (token lengths of prepared rows), :mod:`~vptracker.plan.run` (plans
for a training stage or an inference config) and :mod:`~vptracker.plan.measure` (one step's peak
memory measured beside the plan). Import from the modules.
"""
