"""SOT readers (TNL2K, TNLLT, LaSOT, OTB, OTB99-Lang) on every official layout, quirks and bad input."""
from __future__ import annotations

import tarfile

import layouts as fx
import numpy as np
import pytest

from vptracker.datasets import DatasetFormatError, available, load
from vptracker.datasets.sot import read_toolkit_annotation, toolkit_sequences

BOXES = [(10, 8, 20, 16), (12, 9, 20, 16), (0, 0, 0, 0), (14, 10, 18, 15)]


def test_registry_lists_every_benchmark():
    names = set(available())
    assert {"tnl2k", "tnllt", "lasot", "otb", "otb99_lang", "mot17", "mot20", "dancetrack", "refer_kitti",
            "refer_kitti_v2", "crtrack", "bensmot", "synth_pedes"} <= names


def test_tnl2k_layout_language_size_and_visibility(tmp_path):
    fx.write_tnl2k(tmp_path, "train", "seqA", BOXES, "the green car", size=(64, 48), newline="\r\n")
    fx.write_tnl2k(tmp_path, "train", "seqB", BOXES[:2], "a man", ext=".png", pad=1)
    seqs = load("tnl2k", tmp_path, split="train")
    assert [s.name for s in seqs] == ["seqA", "seqB"]
    a = seqs[0]
    assert (a.width, a.height) == (64, 48) and len(a) == 4 and a.language == "the green car"
    np.testing.assert_array_equal(a.target.boxes, np.asarray(BOXES, float))
    # without absent flags, visibility comes from the box: 0,0,0,0 is absent
    assert a.target.visible.tolist() == [True, True, False, True]
    assert seqs[1].frames[-1].endswith("2.png")


def test_tnl2k_frames_sorted_numerically_not_by_name(tmp_path):
    seq = fx.write_tnl2k(tmp_path, "test", "s", [(1, 1, 5, 5)] * 12, "x", pad=1)
    frames = load("tnl2k", tmp_path, split="test")[0].frames
    assert [f.rsplit("/", 1)[1] for f in frames][:3] == ["1.jpg", "2.jpg", "3.jpg"]
    assert frames[-1] == str(seq / "imgs" / "12.jpg")


def test_tnl2k_toolkit_absent_list_longer_than_gt_is_cut(tmp_path):
    annos = tmp_path / "annos"
    fx.write_tnl2k(tmp_path, "test", "s", BOXES, "x", annos=annos, absent=[0, 1, 1, 0, 0])
    (annos / "gt_rect" / "s.txt").write_text("".join(f"{','.join(map(str, b))}\n" for b in BOXES[:3]))
    seq = load("tnl2k", tmp_path, split="test", annos=annos)[0]
    assert len(seq) == 3 and seq.target.visible.tolist() == [True, False, False]


def test_tnl2k_absent_list_shorter_than_gt_names_the_file(tmp_path):
    annos = tmp_path / "annos"
    fx.write_tnl2k(tmp_path, "test", "s", BOXES, "x", annos=annos, absent=[0, 0])
    with pytest.raises(DatasetFormatError, match=r"absent/s\.txt.*one absent flag per ground-truth line \(4\)"):
        load("tnl2k", tmp_path, split="test", annos=annos)


def test_tnl2k_malformed_gt_line_names_file_and_line(tmp_path):
    seq = fx.write_tnl2k(tmp_path, "train", "s", BOXES, "x")
    (seq / "groundtruth.txt").write_text("1,2,3,4\n5,6,seven,8\n1,2,3,4\n1,2,3,4\n")
    with pytest.raises(DatasetFormatError, match=r"groundtruth\.txt:2: expected 4 numbers"):
        load("tnl2k", tmp_path, split="train")


def test_missing_frame_file_is_reported_not_dropped(tmp_path):
    seq = fx.write_tnl2k(tmp_path, "train", "s", BOXES, "x")
    (seq / "imgs" / "00002.jpg").unlink()
    with pytest.raises(DatasetFormatError, match=r"imgs: expected contiguous frame numbers, frame 2 is missing"):
        load("tnl2k", tmp_path, split="train")
    with pytest.warns(UserWarning, match="frames 2..2 are missing"):
        s = load("tnl2k", tmp_path, split="train", allow_missing=True)[0]
    assert len(s) == 4 and s.missing_frames == [1] and s.frames[1].endswith("00002.jpg")


def test_fewer_images_than_gt_lines_is_an_error(tmp_path):
    seq = fx.write_tnl2k(tmp_path, "train", "s", BOXES, "x")
    (seq / "imgs" / "00004.jpg").unlink()
    with pytest.raises(DatasetFormatError, match=r"groundtruth\.txt: expected no more annotation rows than frame images"):
        load("tnl2k", tmp_path, split="train")


def test_unreadable_first_frame_header(tmp_path):
    seq = fx.write_tnl2k(tmp_path, "train", "s", BOXES, "x")
    (seq / "imgs" / "00001.jpg").write_bytes(b"not an image")
    with pytest.raises(DatasetFormatError, match=r"00001\.jpg: expected a readable image header"):
        load("tnl2k", tmp_path, split="train")


def test_missing_split_folder(tmp_path):
    fx.write_tnl2k(tmp_path, "train", "s", BOXES, "x")
    with pytest.raises(DatasetFormatError, match="expected a 'test' sub-folder"):
        load("tnl2k", tmp_path, split="test")


def test_real_tnl2k_toolkit_annotations(shared_data, tmp_path):
    with tarfile.open(shared_data / "tnl2k" / "test_annos.tar.gz") as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(("annos/gt_rect/", "annos/absent/"))]
        tar.extractall(tmp_path, members=members, filter="data")
    annos = tmp_path / "annos"
    names = toolkit_sequences(annos)
    assert len(names) == 700
    total, lengths_cut, absent, absent_zero = 0, 0, 0, 0
    for name in names:
        boxes, visible = read_toolkit_annotation(annos, name)
        assert boxes.shape == (len(visible), 4)
        total += len(boxes)
        absent += int((~visible).sum())
        absent_zero += int((boxes[~visible] == 0).all(axis=1).sum())
        n_absent = len((annos / "absent" / f"{name}.txt").read_text().split())
        lengths_cut += n_absent != len(boxes)
    assert total == 516_038
    assert lengths_cut == 1  # the one 929-vs-930 sequence
    # absent frames are encoded as 0,0,0,0 in gt_rect
    assert absent > 1000 and absent_zero / absent > 0.9


def test_tnllt_split_list_float_boxes_absent_labels(tmp_path):
    boxes = [(1.5, 2.25, 10.5, 8.0), (2.0, 3.0, 10.0, 8.0), (0, 0, 0, 0)]
    fx.write_tnllt(tmp_path, "lt_a", boxes, [0, 0, 1], "a bird")
    fx.write_tnllt(tmp_path, "lt_b", boxes, [0, 1, 1], "a cat")
    (tmp_path / "test.txt").write_text("lt_b\n")
    seqs = load("tnllt", tmp_path, split="test")
    assert [s.name for s in seqs] == ["lt_b"]
    assert seqs[0].target.visible.tolist() == [True, False, False]
    assert seqs[0].target.boxes[0].tolist() == [1.5, 2.25, 10.5, 8.0]
    assert seqs[0].frames[0].endswith("00001.png") and seqs[0].attributes["attributes"].tolist() == [1, 0, 0, 1]
    assert len(load("tnllt", tmp_path)) == 2


def test_tnllt_bad_absent_flag(tmp_path):
    fx.write_tnllt(tmp_path, "s", BOXES[:3], [0, 2, 0], "x")
    with pytest.raises(DatasetFormatError, match=r"absent_label\.txt:2: expected absent flags 0 or 1"):
        load("tnllt", tmp_path)


def test_lasot_visibility_language_and_split(tmp_path):
    fx.write_lasot(tmp_path, "bird", 1, BOXES, [0, 1, 0, 0], [0, 0, 1, 0], "white bird flying")
    fx.write_lasot(tmp_path, "bird", 2, BOXES, [0] * 4, [0] * 4, "black bird")
    (tmp_path / "testing_set.txt").write_text("bird-1\n")
    seqs = load("lasot", tmp_path, split="test")
    assert [s.name for s in seqs] == ["bird-1"]
    s = seqs[0]
    assert s.target.visible.tolist() == [True, False, False, True]
    assert s.language == "white bird flying" and s.meta["class"] == "bird"
    assert s.frames[0].endswith("img/00000001.jpg")


def test_lasot_short_flag_file(tmp_path):
    seq = fx.write_lasot(tmp_path, "cat", 1, BOXES, [0] * 4, [0] * 4, "cat")
    (seq / "out_of_view.txt").write_text("0,0")
    with pytest.raises(DatasetFormatError, match=r"out_of_view\.txt: expected one flag per ground-truth line \(4\)"):
        load("lasot", tmp_path)


def test_otb_real_sequences(shared_data):
    seqs = {s.name: s for s in load("otb", shared_data / "otb")}
    assert set(seqs) >= {"Couple", "Crossing", "Football1"}
    couple = seqs["Couple"]
    assert (couple.width, couple.height) == (320, 240) and len(couple) == 140
    assert couple.target.boxes[0].tolist() == [51, 47, 25, 62]  # tab-separated file
    assert seqs["Football1"].target.boxes[0].tolist() == [153, 105, 26, 43]  # comma-separated file
    # Football1 ships 81 images for 74 boxes: frames follow the annotation
    assert len(seqs["Football1"]) == 74 and seqs["Football1"].frames[-1].endswith("0074.jpg")
    assert all(s.target.visible.all() for s in seqs.values())


def test_otb_space_separated_and_two_target_sequences(tmp_path):
    fx.write_otb(tmp_path, "Walk", BOXES[:2], sep=" ")
    seq = fx.write_otb(tmp_path, "Jogging", BOXES[:2], sep=",")
    (seq / "groundtruth_rect.txt").rename(seq / "groundtruth_rect.1.txt")
    (seq / "groundtruth_rect.2.txt").write_text("1,1,4,4\n2,2,4,4\n")
    seqs = {s.name: s for s in load("otb", tmp_path)}
    assert set(seqs) == {"Walk", "Jogging-1", "Jogging-2"}
    assert seqs["Jogging-2"].target.boxes[1].tolist() == [2, 2, 4, 4]


def test_mixed_delimiters_and_crlf_in_one_file(tmp_path):
    seq = fx.write_otb(tmp_path, "Mixed", BOXES[:3])
    (seq / "groundtruth_rect.txt").write_bytes(b"1,2,3,4\r\n5\t6\t7\t8\r\n9 10, 11\t12,\r\n\r\n")
    s = load("otb", tmp_path)[0]
    assert s.target.boxes.tolist() == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]]


def test_otb_bad_inputs(tmp_path):
    seq = fx.write_otb(tmp_path, "Bad", BOXES[:2])
    (seq / "groundtruth_rect.txt").write_text("1,2,3,4\n5,6,7\n")
    with pytest.raises(DatasetFormatError, match=r"groundtruth_rect\.txt:2: expected 4 numbers"):
        load("otb", tmp_path)
    (seq / "groundtruth_rect.txt").write_text("1,2,3,4\n5,6,7,8\n")
    (seq / "cfg.json").write_text("{startFrame: 1")
    with pytest.raises(DatasetFormatError, match=r"cfg\.json:1: expected valid JSON"):
        load("otb", tmp_path)


def test_otb_cfg_start_frame(tmp_path):
    seq = fx.write_otb(tmp_path, "David", BOXES[:2], extra_frames=3)
    (seq / "cfg.json").write_text('{"startFrame": 3, "endFrame": 4}')
    s = load("otb", tmp_path)[0]
    assert [f.rsplit("/", 1)[1] for f in s.frames] == ["0003.jpg", "0004.jpg"]


def test_otb99_lang(tmp_path):
    fx.write_otb(tmp_path / "OTB_videos", "Biker", BOXES[:2])
    (tmp_path / "OTB_query_test").mkdir()
    (tmp_path / "OTB_query_test" / "Biker.txt").write_text("a man riding a bike\r\n")
    s = load("otb99_lang", tmp_path, split="test")[0]
    assert s.name == "Biker" and s.language == "a man riding a bike" and s.dataset == "otb99_lang"
    with pytest.raises(DatasetFormatError, match="OTB_query_train"):
        load("otb99_lang", tmp_path, split="train")
