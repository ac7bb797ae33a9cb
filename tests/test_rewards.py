"""GRPO rewards: hand-computed values for every branch of SPEC section 6 and our aggregation."""
from __future__ import annotations

import pytest

from vptracker.boxes import render_trajectories, render_trajectory, render_vptracker
from vptracker.prompts.texts import no_objects_answer
from vptracker.train.rewards import (
    box_reward,
    check_solution,
    format_reward,
    iou_reward,
    stage1_map,
)

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


def test_solution_without_a_box_is_an_error():
    with pytest.raises(ValueError, match="solution holds no box"):
        box_reward("<bbox>1,2,3,4</bbox>", "nothing here", stage1_map)
    for bad in ("nothing here", "", "There are objects.", None, 3):
        with pytest.raises(ValueError, match="solution"):
            check_solution(bad)
    check_solution(no_objects_answer(), "set")  # the empty answer is a legal solution
    check_solution("<None>")


A, B, C = (0, 0, 10, 10), (100, 100, 110, 110), (200, 200, 210, 210)


@pytest.mark.parametrize("order", [(0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)])
def test_set_matching_every_permutation_scores_full_marks(order):
    """The issue's case: correct trajectories in another order scored 0.265 instead of 2.0."""
    truth = [[A, None, A], [B, B, None], [None, C, C]]
    solution = render_trajectories(truth)
    completion = render_trajectories([truth[i] for i in order])
    assert iou_reward(completion, solution, "set") == pytest.approx(2.0)
    assert format_reward(completion, solution, "set") == pytest.approx(2.0)
    if order != (0, 1, 2):  # by order, any swapped pair loses its overlap
        assert iou_reward(completion, solution, "order") < 2.0


def test_set_matching_partial_answer_hand_computed():
    truth = render_trajectories([[A, A], [B, None], [C, C]])
    # the second object (exact), then the first with IoU 0.5 in frame 1; the third is missed
    completion = render_trajectories([[B, None], [(0, 0, 5, 10), A]])
    # matched: B pair 2 + 2 (correct <None>), A pair 2*0.5 + 2*1; C: 2 missed slots -> 7 / 6
    assert iou_reward(completion, truth, "set") == pytest.approx(7 / 6)
    # stage 1: B pair 2 + 2, A pair 2*0.75 + 2 -> 7.5 / 6
    assert format_reward(completion, truth, "set") == pytest.approx(7.5 / 6)
    # a wrong third trajectory pairs with C and scores 0 there: still 7 / 6
    wrong = render_trajectories([[B, None], [(0, 0, 5, 10), A], [None, (300, 300, 310, 310)]])
    assert iou_reward(wrong, truth, "set") == pytest.approx(7 / 6)
    # C found too (4), plus an invented fourth object whose 2 slots are misses: 11 / 8
    extra = render_trajectories([[B, None], [(0, 0, 5, 10), A], [C, C], [None, (300, 300, 310, 310)]])
    assert iou_reward(extra, truth, "set") == pytest.approx(11 / 8)


def test_set_matching_flat_box_lists_are_one_object_per_box():
    """MOT's first-frame query and detection: boxes without headings, in any order."""
    truth = "<bbox>0,0,10,10</bbox><bbox>100,100,10,10</bbox><bbox>200,200,10,10</bbox>"
    shuffled = "<bbox>200,200,10,10</bbox><bbox>0,0,10,10</bbox><bbox>100,100,10,10</bbox>"
    assert iou_reward(shuffled, truth, "set") == pytest.approx(2.0)
    # two of three found, one of them at IoU 0.5: (2 + 1) / 3 slots
    assert iou_reward("<bbox>0,0,5,10</bbox><bbox>200,200,10,10</bbox>", truth, "set") == pytest.approx(1.0)
    # a one-trajectory answer with a heading stays one trajectory under set
    rmot = render_trajectories([[A, B]])
    assert iou_reward(render_trajectories([[A, B]]), rmot, "set") == pytest.approx(2.0)
    assert iou_reward(render_trajectories([[B, A]]), rmot, "set") == pytest.approx(0.0)


def test_set_matching_reads_none_like_the_single_object_case():
    truth = render_trajectories([[A, None], [None, B]])
    # each predicted trajectory is right in one frame (the <None>), wrong in the other
    completion = render_trajectories([[None, None], [None, None]])
    # matched by mean overlap 0.5 each: per pair one correct <None> (2) and one miss (0): 4 / 4
    assert iou_reward(completion, truth, "set") == pytest.approx(1.0)
    # stage 1: per pair 2 + 2*0.5 (a wrong <None> is exact grammar at overlap 0): 6 / 4
    assert format_reward(completion, truth, "set") == pytest.approx(1.5)


@pytest.mark.parametrize("completion, score", [
    (no_objects_answer(), 2.0),                     # the exact empty answer: 2 * mapping(1)
    ("  there are NO objects.  ", 2.0),             # case and spaces do not matter
    ("Sure. There are no objects.", 2.0),           # neither does text around it
    ("", 0.0),                                      # an empty completion answers nothing
    ("nothing", 0.0),
    ("<None>", 0.0),                                # a <None> slot is an invented (absent) object
    ("There are no objects. <bbox>1,2,3,4</bbox>", 0.0),  # contradicted by a box
    (render_trajectories([[A, None]]), 0.0),        # an invented object
])
def test_empty_solution(completion, score):
    for matching in ("set", "order"):
        assert iou_reward(completion, no_objects_answer(), matching) == pytest.approx(score)
        assert format_reward(completion, no_objects_answer(), matching) == pytest.approx(score)


def test_saying_no_objects_when_there_are_some_scores_zero():
    truth = render_trajectories([[A, None]])
    assert iou_reward(no_objects_answer(), truth, "set") == 0.0
    assert format_reward(no_objects_answer(), truth, "set") == 0.0


MALFORMED = [None, 7, "", "<bbox>", "<bbox>1,2,3</bbox>", "<bbox>nan,1,2,3</bbox>", "<bbox>1e999,1,2,3</bbox>",
             "<|box_start|>(1,2),(3<|box_end|>", "The trajectory of the first people are:" * 50,
             "<None>" * 500, "(" * 1000, "\x00\uffff", "<bbox>-5,-5,-1,-1</bbox>"]


@pytest.mark.parametrize("completion", MALFORMED)
def test_malformed_completions_score_a_number(completion):
    for solution, matching in ((GT, "order"), (render_trajectories([[A, None], [B, B]]), "set"),
                               (no_objects_answer(), "set"), (render_vptracker((0, 0, 10, 10)), "order")):
        for reward in (iou_reward, format_reward):
            value = reward(completion, solution, matching)
            assert isinstance(value, float) and 0.0 <= value <= 2.0


def test_orm_never_raises(caplog):
    from swift.rewards import orms

    from vptracker.train.rewards import register

    register()
    iou = orms["omnipt_iou"]()
    solutions = ["nothing", GT, GT, no_objects_answer()]
    completions = [GT, None, GT, ""]
    with caplog.at_level("WARNING"):
        scores = iou(completions, solutions, reward_matching=["order", "order", "bogus", "set"])
    assert scores == [0.0, 0.0, 0.0, 0.0]
    assert "row scored 0" in caplog.text and "bogus" in caplog.text


def test_orm_plugin_registers_and_scores_batches():
    from swift.rewards import orms

    from vptracker.train.rewards import register

    register()  # what loading the file as a swift plugin does

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


@pytest.mark.slow
def test_loading_the_file_as_a_swift_plugin_registers_the_orms():
    import subprocess
    import sys

    code = ("import swift.rewards; from swift.utils import import_external_file; "
            "import_external_file('vptracker/train/rewards.py'); "
            "print(sorted(k for k in swift.rewards.orms if k.startswith('omnipt')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "['omnipt_format', 'omnipt_iou']" in out.stdout


def test_set_matching_is_order_free_for_any_trajectories():
    """Property: any permutation of any true trajectories scores full marks under ``set``, and a
    subset scores exactly its share of the slots."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    box = st.tuples(st.integers(0, 900), st.integers(0, 900), st.integers(5, 99), st.integers(5, 99)).map(
        lambda b: (b[0], b[1], b[0] + b[2], b[1] + b[3]))
    trajectories = st.integers(1, 4).flatmap(
        lambda n: st.lists(st.lists(st.one_of(st.none(), box), min_size=n, max_size=n), min_size=1, max_size=5))

    @settings(max_examples=60, deadline=None)
    @given(trajs=trajectories, data=st.data())
    def check(trajs, data):
        truth = render_trajectories(trajs)
        order = data.draw(st.permutations(range(len(trajs))))
        assert iou_reward(render_trajectories([trajs[i] for i in order]), truth, "set") == pytest.approx(2.0)
        kept = order[:max(1, len(order) - 1)]
        # kept trajectories score 2 per slot; the left-out ones count as misses
        expected = 2.0 * sum(len(trajs[i]) for i in kept) / sum(len(t) for t in trajs)
        assert iou_reward(render_trajectories([trajs[i] for i in kept]), truth, "set") >= expected - 1e-9

    check()
