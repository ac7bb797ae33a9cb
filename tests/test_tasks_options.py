"""Typed task options: converted and checked once, when a task is made (vptracker/tasks/options.py)."""
from __future__ import annotations

import pytest

from vptracker.tasks import get_task, tasks


def test_every_task_declares_typed_options_with_its_defaults():
    for name in tasks():
        task = get_task(name)
        assert task.options == type(task).defaults == {k: getattr(task.opts, k) for k in task.defaults}


def test_text_values_from_the_command_line_are_converted():
    task = get_task("vptracker_sot", inbbox_ratio="9e-1", visual_prompt="false", scale_range=["3", 5], max_pixels=None)
    assert (task.inbbox_ratio, task.visual_prompt, task.scale_range, task.max_pixels) == (0.9, False, [3, 5], None)
    assert get_task("vptracker_sot", max_pixels="40000").max_pixels == 40000
    assert get_task("omnipt_sot", frames="8", prior_jitter="2e-1", max_pixels=1e5).options["frames"] == 8
    assert get_task("omnipt_sot", max_pixels=1e5).max_pixels == 100000 and get_task("pretext_reid", min_size=7.5).min_size == 7.5


@pytest.mark.parametrize("name, options, message", [
    ("omnipt_sot", {"frames": "8.5"}, "option frames='8.5', expected an integer"),
    ("omnipt_sot", {"frames": True}, "option frames=True, expected an integer"),
    ("vptracker_sot", {"visual_prompt": "yes"}, "option visual_prompt='yes', expected true or false"),
    ("vptracker_sot", {"scale_range": [2, "x"]}, "option scale_range=\\[2, 'x'\\], expected a list of an integer"),
    ("vptracker_sot", {"max_pixels": "soon"}, "option max_pixels='soon', expected an integer or null"),
    ("omnipt_mot", {"family": 3}, "option family=3, expected a string"),
    ("pretext_reid", {"min_size": float("nan")}, "option min_size=nan, expected a number"),
])
def test_a_value_of_the_wrong_type_names_task_option_and_expectation(name, options, message):
    with pytest.raises(ValueError, match=f"task {name}: {message}"):
        get_task(name, **options)
