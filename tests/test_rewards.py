"""GRPO rewards: hand-computed values for every branch of SPEC section 6 and our aggregation."""
from __future__ import annotations

import pytest

from vptracker.boxes import render_trajectories, render_trajectory, render_vptracker
from vptracker.train.rewards import box_reward, format_reward, iou_reward, split_slots, stage1_map

GT = "<bbox>0,0,20,10</bbox>"  # x,y,w,h -> corners (0,0,20,10); a 10x10 box at 0,0 has IoU 0.5 with it


@pytest.mark.parametrize("completion, fmt, iou", [
    ("<bbox>0,0,20,10</bbox>", 2.0, 2.0),                 # set 1, IoU 1: 2*(0.5+0.5), 2*1
    ("<bbox>0,0,10,10</bbox>", 1.5, 1.0),                 # set 1, IoU 0.5: 2*0.75, 2*0.5
    ("Sure: <bbox> 0 , 0 , 10 , 10 </bbox>.", 1.5, 1.0),  # spacing inside the tags is still set 1
    ("<bbox>100,100,10,10</bbox>", 1.0, 0.0),             # set 1, IoU 0: the stage-1 floor is R/2
    ("(0,0,10,10)", 0.45, 0.3),                           # set 2 corners: 0.6*0.75, 0.6*0.5
    ("[0, 0, 10, 10]", 0.45, 0.3),                        # set 2 list
    ("<|box_start|>(0,0),(10,10)<|box_end|>", 0.45, 0.3),  # set 2 Qwen box tokens
    ("<bbox>(0,0),(10,10)</bbox>", 0.45, 0.3),            # tags around another form: set 2
    ("0,0,10,10", 0.3, 0.2),                              # set 3, bare x,y,w,h: 0.4*0.75, 0.4*0.5
    ("I cannot see it.", 0.0, 0.0),                       # no box
    ("<None>", 1.0, 0.0),                                 # a <None> where there is a box: a miss
    ("", 0.0, 0.0),
])
def test_single_box_every_form(completion, fmt, iou):
    assert format_reward(completion, GT) == pytest.approx(fmt)
    assert iou_reward(completion, GT) == pytest.approx(iou)


def test_stage1_maps_iou_into_half_to_one():
    assert stage1_map(0.0) == 0.5 and stage1_map(1.0) == 1.0 and stage1_map(0.5) == 0.75


@pytest.mark.parametrize("completion, fmt, iou", [
    # slot 1: IoU 0.5 -> 1.5 / 1.0; slot 2: correct <None> is a hit -> 2 / 2; mean over 2 slots
    ("<bbox>0,0,10,10</bbox><None>", 1.75, 1.5),
    # both slots wrong: <None> where a box is (overlap 0), a box where <None> is (overlap 0)
    ("<None><bbox>0,0,10,10</bbox>", 1.0, 0.0),
    # one frame missing: the missing slot scores 0, the mean is over the 2 ground-truth slots
    ("<bbox>0,0,20,10</bbox>", 1.0, 1.0),
    # one frame too many: the extra slot scores 0, the mean is over the 3 predicted slots
    ("<bbox>0,0,20,10</bbox><None><bbox>0,0,20,10</bbox>", 4.0 / 3, 4.0 / 3),
    # untagged frames in another form are split and read one by one: 0.6*0.75 + 0.6*0.5 (no <None>)
    ("(0,0,10,10) (5,5,9,9)", (0.45 + 0.6 * 0.5) / 2, 0.3 / 2),
])
def test_multi_frame_aggregation(completion, fmt, iou):
    solution = "<bbox>0,0,20,10</bbox><None>"
    assert format_reward(completion, solution) == pytest.approx(fmt)
    assert iou_reward(completion, solution) == pytest.approx(iou)


def test_several_trajectories_pair_by_order():
    truth = render_trajectories([[(0, 0, 20, 10), None], [(50, 50, 60, 60), (52, 50, 62, 60)]])
    # first trajectory perfect (2 + 2), second: frame 1 IoU 1 (2), frame 2 IoU 0 (0) -> 6 / 4 slots
    pred = render_trajectories([[(0, 0, 20, 10), None], [(50, 50, 60, 60), (90, 90, 95, 95)]])
    assert iou_reward(pred, truth) == pytest.approx(6 / 4)
    # the second trajectory left out: 4 / 4 slots
    only_first = render_trajectories([[(0, 0, 20, 10), None]])
    assert iou_reward(only_first, truth) == pytest.approx(4 / 4)
    # an extra third trajectory adds 2 zero slots to the denominator: 8 / 6
    extra = render_trajectories([[(0, 0, 20, 10), None], [(50, 50, 60, 60), (52, 50, 62, 60)], [None, None]])
    assert iou_reward(extra, truth) == pytest.approx(8 / 6)


def test_set_matching_ignores_order():
    truth = "<bbox>0,0,10,10</bbox><bbox>50,50,10,10</bbox>"
    swapped = "<bbox>50,50,10,10</bbox><bbox>0,0,10,10</bbox>"
    assert format_reward(swapped, truth) == pytest.approx(1.0)         # by order: both IoU 0 -> 2*0.5
    assert format_reward(swapped, truth, matching="set") == pytest.approx(2.0)
    assert iou_reward("<bbox>0,0,10,10</bbox>", truth, matching="set") == pytest.approx(1.0)  # 2 / 2 slots
    with pytest.raises(ValueError, match="matching"):
        iou_reward(swapped, truth, matching="greedy")


@pytest.mark.parametrize("completion, truth_box, fmt, iou", [
    (render_vptracker((0, 0, 10, 10)), (0, 0, 20, 10), 1.5, 1.0),   # JSON is the exact form
    (render_vptracker(None), (0, 0, 20, 10), 1.0, 0.0),             # says invisible: a miss
    (render_vptracker(None), None, 2.0, 2.0),                       # correct "no": a hit
    (render_vptracker((0, 0, 10, 10)), None, 1.0, 0.0),             # sees a target that is absent
    ("[0, 0, 10, 10]", (0, 0, 20, 10), 0.45, 0.3),                  # bare list: set 2
    ("0, 0, 10, 10", (0, 0, 20, 10), 0.3, 0.2),                     # bare numbers (x,y,w,h): set 3
    ("no idea", (0, 0, 20, 10), 0.0, 0.0),
])
def test_vptracker_json_answer(completion, truth_box, fmt, iou):
    solution = render_vptracker(truth_box)
    assert format_reward(completion, solution) == pytest.approx(fmt)
    assert iou_reward(completion, solution) == pytest.approx(iou)


def test_rendered_answers_score_full_marks_in_the_shared_scale():
    """The known failure elsewhere: IoU rewards stuck at 0 because the two sides disagree on scale."""
    boxes = [(123.4, 56.0, 400.2, 300.9), None, (130.0, 60.0, 410.0, 310.0)]
    answer = render_trajectory(boxes)  # 0-1000 grid, what the data builders write
    assert iou_reward(answer, answer) == pytest.approx(2.0)
    assert format_reward(answer, answer) == pytest.approx(2.0)


def test_split_slots_reads_each_form_once():
    slots = split_slots("(1,2),(3,4) then [1, 2, 3, 4] then 5,6,7,8 and <None>")
    assert [s.form.value for s in slots] == ["other_form", "other_form", "untagged", "none"]
    assert slots[2].box == (5.0, 6.0, 12.0, 14.0)


def test_solution_without_a_box_is_an_error():
    with pytest.raises(ValueError, match="solution holds no box"):
        box_reward("<bbox>1,2,3,4</bbox>", "nothing here", stage1_map)


def test_orm_plugin_registers_and_scores_batches():
    from swift.rewards import orms

    import vptracker.train.rewards  # noqa: F401  (registration happens on import)

    fmt, iou = orms["omnipt_format"](), orms["omnipt_iou"]()
    completions = ["<bbox>0,0,10,10</bbox>", "(0,0,10,10)", "nothing"]
    solutions = [GT] * 3
    assert fmt(completions, solutions) == pytest.approx([1.5, 0.45, 0.0])
    assert iou(completions, solutions) == pytest.approx([1.0, 0.3, 0.0])
    swapped = ["<bbox>50,50,10,10</bbox><bbox>0,0,10,10</bbox>"]
    truth = ["<bbox>0,0,10,10</bbox><bbox>50,50,10,10</bbox>"]
    assert iou(swapped, truth, reward_matching=["set"]) == pytest.approx([2.0])
    assert iou(swapped, truth, reward_matching=[None]) == pytest.approx([0.0])


def test_solution_grammar_decides_set_one():
    """With data built in Qwen's grammar, its tokens are set 1 and ``<bbox>`` is another form."""
    truth = render_trajectory([(100, 100, 300, 300), None], grammar="qwen")
    assert truth == "<|box_start|>(100,100),(300,300)<|box_end|><None>"
    assert format_reward(truth, truth) == pytest.approx(2.0)
    assert iou_reward(truth, truth) == pytest.approx(2.0)
    as_bbox = render_trajectory([(100, 100, 300, 300), None])
    # slot 1: other form (0.6) x IoU 1; slot 2: a correct <None> (2 x 1); mean over two slots
    assert iou_reward(as_bbox, truth) == pytest.approx((0.6 + 2.0) / 2)
    half = render_trajectory([(100, 100, 200, 300), None], grammar="qwen")
    assert iou_reward(half, truth) == pytest.approx((2.0 * 0.5 + 2.0) / 2)
    assert format_reward("<|box_start|>(1,2),(3<|box_end|>", truth) == pytest.approx(0.0)
