"""Property tests: for any box, image size, scale and model family, the answers the builders emit map
back to the source box through the box grammar (OmniPT: clipped to the image; VPTracker: the released
sampler's integer box)."""
from __future__ import annotations

import random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from vptracker.boxes import CoordMap, parse_trajectory, parse_vptracker
from vptracker.datasets.base import Sequence, Track
from vptracker.models.families import FAMILIES
from vptracker.tasks import get_task
from vptracker.tasks.omnipt_common import task_coord
from vptracker.tasks.vptracker_released import released_boxes

sizes = st.tuples(st.integers(32, 2000), st.integers(32, 1200))


@st.composite
def box_in(draw, size):
    w, h = size
    bw = draw(st.floats(1, w * 0.8))
    bh = draw(st.floats(1, h * 0.8))
    x = draw(st.floats(-bw * 0.5, w - bw * 0.5))
    y = draw(st.floats(-bh * 0.5, h - bh * 0.5))
    return x, y, bw, bh


def _clipped(box, w, h):
    x, y, bw, bh = box
    return max(x, 0), max(y, 0), min(x + bw, w), min(y + bh, h)


def _tolerance(coord: CoordMap) -> float:
    fx, fy = coord.to_frame((1, 1, 1, 1))[:2]
    return 0.5 * max(fx, fy) + 1e-6


@settings(max_examples=60, deadline=None)
@given(size=sizes, data=st.data(), scale=st.sampled_from(["abs", "norm1000"]),
       family=st.sampled_from(sorted(FAMILIES)))
def test_vptracker_answer_maps_back(size, data, scale, family):
    w, h = size
    boxes = [data.draw(box_in(size)) for _ in range(2)]
    seq = Sequence("s", "x", ["/a.jpg", "/b.jpg"], w, h, [Track(1, boxes, [True, True])], "x")
    task = get_task("vptracker_sot", scale=scale, family=family)
    row = task.sample(task.index([seq]), random.Random(data.draw(st.integers(0, 10**6))))
    ans = parse_vptracker(row["messages"][1]["content"])
    expected = released_boxes(np.asarray(boxes))[0][1]   # int-cut, x1/y1 raised to 0, x2/y2 as annotated
    assert ans.visible is True
    if scale == "abs":
        assert ans.box == tuple(float(v) for v in expected)
    else:
        assert np.allclose(CoordMap("norm1000", w, h).to_frame(ans.box), expected, atol=0.5 * max(w, h) / 1000 + 1e-6)
    x1, y1, x2, y2 = row["visual_prompt"]["outline"]
    assert 0 <= x1 <= x2 <= w and 0 <= y1 <= y2 <= h
    tx1, ty1, tx2, ty2 = row["visual_prompt"]["template_region"]
    assert 0 <= tx1 < tx2 <= w and 0 <= ty1 < ty2 <= h


@settings(max_examples=40, deadline=None)
@given(size=sizes, data=st.data(), scale=st.sampled_from(["norm1000", "family", "abs"]),
       family=st.sampled_from(sorted(FAMILIES)))
def test_omnipt_trajectory_maps_back(size, data, scale, family):
    w, h = size
    n = 4
    boxes = [data.draw(box_in(size)) for _ in range(n)]
    visible = [True] + data.draw(st.lists(st.booleans(), min_size=n - 1, max_size=n - 1))
    seq = Sequence("s", "x", [f"/{i}.jpg" for i in range(n)], w, h, [Track(1, boxes, visible)], "x")
    task = get_task("omnipt_sot", frames=n, scale=scale, family=family)
    row = task.sample(task.index([seq]), random.Random(0))
    coord = task_coord(task, seq)
    traj = parse_trajectory(row["messages"][1]["content"])
    assert len(traj) == n
    for box, vis, parsed in zip(boxes, visible, traj):
        if not vis:
            assert parsed.box is None
            continue
        # <bbox> carries x,y,w,h rounded at the corners: corners come back within half a unit
        assert np.allclose(coord.to_frame(parsed.box), _clipped(box, w, h), atol=_tolerance(coord) * 1.01 + 1e-6)
