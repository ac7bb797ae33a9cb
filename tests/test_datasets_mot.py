"""Multi-object readers: MOTChallenge family, Refer-KITTI(-V2), CRTrack, BenSMOT, SYNTH-PEDES."""
from __future__ import annotations

import layouts as fx
import numpy as np
import pytest

from vptracker.datasets import DatasetFormatError, load
from vptracker.datasets.crtrack import read_query_gt, split_query_name


def _people():
    return {1: {1: (5, 5, 10, 20), 2: (6, 5, 10, 20), 3: (7, 5, 10, 20)},
            2: {2: (30, 10, 8, 16), 3: (31, 10, 8, 16)}}


def test_mot17_seqinfo_seqmap_and_trackeval_filter(tmp_path):
    rows = fx.mot_rows(_people()) + [[1, 9, 40, 1, 5, 5, 0, 1, 1.0],   # flag 0: ignored region
                                     [2, 7, 40, 1, 5, 5, 1, 7, 1.0]]   # class 7: static person
    fx.write_mot(tmp_path, "train", "MOT17-02-FRCNN", 3, rows)
    fx.write_mot(tmp_path, "train", "MOT17-04-FRCNN", 2, fx.mot_rows({3: {1: (1, 1, 4, 4)}}))
    (tmp_path / "train_seqmap.txt").write_text("name\nMOT17-02-FRCNN\n")
    seqs = load("mot17", tmp_path, split="train")
    assert [s.name for s in seqs] == ["MOT17-02-FRCNN"]
    s = seqs[0]
    assert (s.width, s.height, len(s)) == (64, 48, 3) and s.frames[0].endswith("img1/000001.jpg")
    assert [t.id for t in s.tracks] == [1, 2]
    two = s.tracks[1]
    assert two.visible.tolist() == [False, True, True] and two.boxes[1].tolist() == [30, 10, 8, 16]
    assert s.meta["frame_rate"] == 30


def test_mot_min_visibility_and_keep_ignored(tmp_path):
    rows = [[1, 1, 1, 1, 4, 4, 1, 1, 0.9], [2, 1, 1, 1, 4, 4, 1, 1, 0.1], [1, 2, 9, 9, 4, 4, 0, 1, 1.0]]
    fx.write_mot(tmp_path, "train", "A", 2, rows)
    s = load("mot17", tmp_path, split="train", min_visibility=0.25)[0]
    assert [t.id for t in s.tracks] == [1] and s.tracks[0].visible.tolist() == [True, False]
    assert [t.id for t in load("mot17", tmp_path, split="train", keep_ignored=True)[0].tracks] == [1, 2]


def test_dancetrack_eight_digit_frames_and_test_split_without_gt(tmp_path):
    fx.write_mot(tmp_path, "val", "dancetrack0004", 3, fx.mot_rows(_people()), pad=8)
    fx.write_mot(tmp_path, "test", "dancetrack0003", 2, None, pad=8)
    val = load("dancetrack", tmp_path, split="val")[0]
    assert val.frames[2].endswith("00000003.jpg") and len(val.tracks) == 2
    test = load("dancetrack", tmp_path, split="test")[0]
    assert test.tracks == [] and test.meta["has_gt"] is False


def test_mot_seqmap_names_a_missing_sequence(tmp_path):
    fx.write_mot(tmp_path, "train", "A", 2, fx.mot_rows({1: {1: (1, 1, 4, 4)}}))
    (tmp_path / "train_seqmap.txt").write_text("name\nA\nB\n")
    with pytest.raises(DatasetFormatError, match=r"missing \['B'\]"):
        load("mot20", tmp_path, split="train")


def test_mot_gt_frame_out_of_range_and_duplicate_rows(tmp_path):
    seq = fx.write_mot(tmp_path, "train", "A", 2, [[1, 1, 1, 1, 4, 4, 1, 1, 1], [3, 1, 1, 1, 4, 4, 1, 1, 1]])
    with pytest.raises(DatasetFormatError, match=r"gt\.txt:2: expected a frame number in 1\.\.2"):
        load("mot17", tmp_path, split="train")
    fx.write_rows(seq / "gt" / "gt.txt", [[1, 1, 1, 1, 4, 4, 1, 1, 1], [2, 1, 1, 1, 4, 4, 1, 1, 1],
                                          [2, 1, 2, 2, 4, 4, 1, 1, 1]])
    with pytest.raises(DatasetFormatError, match=r"gt\.txt:3: expected one row per \(frame, id\)"):
        load("mot17", tmp_path, split="train")


def test_mot_seqinfo_without_length(tmp_path):
    seq = fx.write_mot(tmp_path, "train", "A", 2, fx.mot_rows({1: {1: (1, 1, 4, 4)}}))
    (seq / "seqinfo.ini").write_text("[Sequence]\nname=A\nimWidth=64\n")
    with pytest.raises(DatasetFormatError, match=r"seqinfo\.ini: expected a \[Sequence\] section with seqLength"):
        load("mot17", tmp_path, split="train")


def test_refer_kitti_per_expression_tracks(tmp_path):
    labels = {0: {3: (8, 4, 16, 8), 5: (40, 10, 20, 10)}, 1: {3: (10, 4, 16, 8)}, 2: {5: (42, 10, 20, 10)}}
    fx.write_refer_kitti(tmp_path, "0005", 3, labels,
                         {"black-cars-in-the-left, moving": {0: [3], 1: [3]}, "cars": {0: [3, 5], 2: [5]}})
    fx.write_refer_kitti(tmp_path, "0001", 2, {0: {1: (1, 1, 4, 4)}}, {"car": {0: [1]}})
    seqs = load("refer_kitti_v2", tmp_path, split="test")
    assert [s.name for s in seqs] == ["0005/black-cars-in-the-left, moving", "0005/cars"]
    left, cars = seqs
    assert left.language == "black cars in the left, moving" and left.meta["raw_sentence"].endswith(", moving")
    assert [t.id for t in left.tracks] == [3] and left.tracks[0].visible.tolist() == [True, True, False]
    np.testing.assert_allclose(left.tracks[0].boxes[1], (10, 4, 16, 8), atol=1e-3)
    assert left.frame_ids == [0, 1, 2] and left.frames[0].endswith("000000.png")
    # id 5 is referred in frames 0 and 2 only, though labelled in those frames
    five = {t.id: t for t in cars.tracks}[5]
    assert five.visible.tolist() == [True, False, True]
    assert [s.name for s in load("refer_kitti", tmp_path, split="train")] == ["0001/car"]


def test_refer_kitti_bad_label_line_and_bad_json(tmp_path):
    fx.write_refer_kitti(tmp_path, "0005", 2, {0: {1: (1, 1, 4, 4)}}, {"car": {0: [1]}})
    lab = tmp_path / "KITTI" / "labels_with_ids" / "image_02" / "0005" / "000000.txt"
    lab.write_text("0 1 0.1 0.1\n")
    with pytest.raises(DatasetFormatError, match=r"000000\.txt:1: expected 6 space-separated values"):
        load("refer_kitti", tmp_path)
    lab.write_text("0 1 0.1 0.1 0.1 0.1\n")
    (tmp_path / "expression" / "0005" / "car.json").write_text('{"label": {"0": [1]},\n "sentence": }')
    with pytest.raises(DatasetFormatError, match=r"car\.json:2: expected valid JSON"):
        load("refer_kitti", tmp_path)


def test_crtrack_views_shared_ids_and_queries(tmp_path):
    v1 = fx.mot_rows({1: {1: (1, 1, 5, 9), 2: (2, 1, 5, 9)}, 2: {1: (20, 5, 5, 9)}})
    v2 = fx.mot_rows({1: {2: (30, 2, 5, 9)}, 2: {1: (10, 5, 5, 9), 2: (11, 5, 5, 9)}})
    fx.write_crtrack(tmp_path, "test", "Gate2", {"View1": v1, "View2": v2}, 2,
                     {"A man in black, carrying a bag": [1], "people walking": [1, 2]})
    seqs = load("crtrack", tmp_path, split="test")
    assert len(seqs) == 4
    man = [s for s in seqs if s.language.startswith("A man")]
    assert [s.view for s in man] == ["View1", "View2"] and {s.scene for s in man} == {"Gate2"}
    assert man[0].name == "Gate2_A man in black, carrying a bag"
    assert [t.id for t in man[0].tracks] == [1] and man[1].tracks[0].visible.tolist() == [False, True]


def test_crtrack_per_query_gt_and_zero_based_frames(tmp_path):
    rows = [[0, 0, 1, 1, 5, 9, 1, 1, 1], [1, 0, 2, 1, 5, 9, 1, 1, 1], [1, 4, 9, 9, 5, 5, 1, 1, 1]]
    fx.write_crtrack(tmp_path, "test", "Side", {"View1": rows}, 2, {"a man": [0]}, per_query_gt=True)
    s = load("crtrack", tmp_path)[0]
    assert [t.id for t in s.tracks] == [0] and s.tracks[0].visible.tolist() == [True, True]


def test_crtrack_bad_query_line(tmp_path):
    fx.write_crtrack(tmp_path, "test", "Side", {"View1": fx.mot_rows({1: {1: (1, 1, 4, 4)}})}, 1, {"a man": [1]})
    (tmp_path / "CRTrack_In-domain" / "tackled_text" / "Side.txt").write_text("Side_a man:1\nSide_a woman\n")
    with pytest.raises(DatasetFormatError, match=r"Side\.txt:2: expected <Scene>_<sentence>:<id>"):
        load("crtrack", tmp_path)


def test_crtrack_real_query_ground_truth(shared_data):
    queries = sorted((shared_data / "crmot_in_domain" / "gt").iterdir())
    assert len(queries) == 40
    scenes = {split_query_name(q.name)[0] for q in queries}
    assert scenes == {"Circle", "Gate2", "Side"}
    n_tracks = 0
    for q in queries:
        views = read_query_gt(q)
        assert set(views) == {"View1", "View2", "View3"}
        for tracks in views.values():
            for t in tracks:
                assert t.visible.any() and (t.boxes[t.visible, 2:] > 0).all()
            n_tracks += len(tracks)
    first = read_query_gt(queries[0])
    assert [t.id for t in first["View1"]] == [16] and first["View1"][0].boxes[0].tolist() == [500, 173, 63, 134]
    assert n_tracks > 40


def test_bensmot_captions_follow_order_of_first_appearance(tmp_path):
    rows = fx.mot_rows({2: {2: (30, 10, 8, 16), 3: (31, 10, 8, 16)}, 1: {1: (5, 5, 10, 20)}})
    fx.write_bensmot(tmp_path, "train", "dancing", "vid01", 3, rows, "Two people dance.",
                     [("woman0", "A woman in red."), ("man1", "A man in a suit.")])
    s = load("bensmot", tmp_path, split="train")[0]
    assert s.caption == "Two people dance." and s.scene == "dancing" and s.frames[0].endswith("imgs/001.jpg")
    by_id = {t.id: t for t in s.tracks}
    assert by_id[1].caption == "A woman in red." and by_id[1].category == "woman0"
    assert by_id[2].caption == "A man in a suit."


def test_bensmot_caption_count_mismatch(tmp_path):
    seq = fx.write_bensmot(tmp_path, "train", "c", "v", 2, fx.mot_rows({1: {1: (1, 1, 4, 4)}}), "x",
                           [("a0", "one"), ("b1", "two")])
    with pytest.raises(DatasetFormatError, match=r"instance_captions\.txt: expected one caption per track \(1 ids"):
        load("bensmot", tmp_path, split="train")
    (seq / "instance_captions.txt").write_text("no colon here\n")
    with pytest.raises(DatasetFormatError, match=r"instance_captions\.txt:1: expected <instance>: <caption>"):
        load("bensmot", tmp_path, split="train")


def test_synth_pedes(tmp_path):
    fx.write_synth_pedes(tmp_path, [(1, "a man in a red coat"), (2, "a woman with a bag")])
    seqs = load("synth_pedes", tmp_path)
    assert [s.caption for s in seqs] == ["a man in a red coat", "a woman with a bag"]
    assert seqs[0].captions[1] == "a man in a red coat." and seqs[0].meta["person_id"] == 1
    assert load("synth_pedes", tmp_path, read_sizes=True)[0].width == 32
    (tmp_path / "synthpedes_dataset.json").write_text('[{"id": 1, "captions": []}]')
    with pytest.raises(DatasetFormatError, match=r'entry 0 an object with a "file_path" string'):
        load("synth_pedes", tmp_path)
