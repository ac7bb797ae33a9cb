"""The one MOT rows -> tracks step (``datasets.base.tracks_from_rows``), used by the annotation
readers (``datasets.mot.tracks_from_table``) and by the SMOT captioner's result files."""
from __future__ import annotations

import numpy as np
import pytest

from vptracker.datasets.base import DatasetFormatError, tracks_from_rows
from vptracker.datasets.mot import tracks_from_table
from vptracker.datasets.textfiles import read_table_lines


def test_tracks_from_rows_hand_values():
    tracks = tracks_from_rows([0, 2, 1], [5, 5, 3], [[1, 2, 3, 4], [5, 6, 7, 8], [9, 9, 9, 9]], 3)
    assert [t.id for t in tracks] == [3, 5]                      # ids ascending, whatever the row order
    assert tracks[0].visible.tolist() == [False, True, False]
    assert tracks[1].visible.tolist() == [True, False, True]
    assert tracks[1].boxes.tolist() == [[1, 2, 3, 4], [0, 0, 0, 0], [5, 6, 7, 8]]
    assert tracks_from_rows(np.empty(0), np.empty(0), np.empty((0, 4)), 4) == []


def test_tracks_from_rows_keeps_the_last_of_a_repeated_row():
    (track,) = tracks_from_rows([1, 1], [7, 7], [[1, 1, 1, 1], [2, 2, 2, 2]], 2)
    assert track.boxes[1].tolist() == [2, 2, 2, 2]


def _table(rows):
    table = np.array([[f, i, 1, 1, 4, 4, 1, 1, 1] for f, i in rows], dtype=np.float64)
    return table, np.arange(1, len(rows) + 1)


@pytest.mark.parametrize("rows, line, tid", [
    # id 2 repeats frame 3 (lines 1, 4), id 1 repeats frame 5 (lines 3, 6): the smallest id is named
    ([(3, 2), (1, 1), (5, 1), (3, 2), (2, 1), (5, 1)], 6, 1),
    # id 4 repeats frame 4 (lines 1, 4) and frame 2 (lines 2, 5, 6): the earliest frame, its second line
    ([(4, 4), (2, 4), (1, 4), (4, 4), (2, 4), (2, 4)], 5, 4),
])
def test_a_repeated_frame_names_its_line(tmp_path, rows, line, tid):
    table, lines = _table(rows)
    with pytest.raises(DatasetFormatError, match=rf"gt\.txt:{line}: expected one row per \(frame, id\), id {tid} "):
        tracks_from_table(table, 6, tmp_path / "gt.txt", lines=lines)


def test_real_crtrack_ground_truth_row_by_row(shared_data):
    """Every row of a real CRTrack view lands in its track at its frame, and nothing else is visible."""
    views = sorted((shared_data / "crmot_in_domain" / "gt").glob("*/gt/View*.txt"))
    path = max(views, key=lambda p: p.stat().st_size)  # the busiest view (empty views exist)
    table, lines = read_table_lines(path, 6)
    assert len(np.unique(table[:, 1])) > 1
    n = int(table[:, 0].max())
    tracks = {t.id: t for t in tracks_from_table(table, n, path, 1, classes=None, keep_ignored=True, lines=lines)}
    assert sorted(tracks) == sorted({int(i) for i in table[:, 1]})
    for frame, tid, x, y, w, h in table[:, :6]:
        track = tracks[int(tid)]
        assert track.visible[int(frame) - 1] and track.boxes[int(frame) - 1].tolist() == [x, y, w, h]
    assert sum(int(t.visible.sum()) for t in tracks.values()) == len(table)


def test_predicted_tracks_use_the_same_step_and_say_what_they_leave_out(tmp_path, caplog):
    from vptracker.datasets.base import Sequence
    from vptracker.infer.caption import predicted_tracks

    seq = Sequence("s", "given", ["a.jpg", "b.jpg", "c.jpg"], 100, 100, frame_ids=[10, 11, 12])
    (tmp_path / "s.txt").write_text("10,2,1,2,3,4,1,-1,-1,-1\n12,2,5,6,7,8,1,-1,-1,-1\n"
                                    "11,1,0,0,9,9,1,-1,-1,-1\n99,3,0,0,9,9,1,-1,-1,-1\n")
    with caplog.at_level("WARNING"):
        tracks = predicted_tracks(seq, tmp_path)
    assert [t.id for t in tracks] == [1, 2]           # id 3 has no row inside the sequence
    assert tracks[1].visible.tolist() == [True, False, True]
    assert tracks[1].boxes[2].tolist() == [5, 6, 7, 8]
    assert "1 of 4 rows name a frame that is not in sequence s" in caplog.text
