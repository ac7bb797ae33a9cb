"""`vptracker eval package`: the files each test server (or SMOTer's scorer) takes."""
from __future__ import annotations

import json
import zipfile

import pytest

from vptracker.cli import main
from vptracker.eval.package import DANCETRACK_TEST


def _mot_results(folder, names, conf=True):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        extra = ",0.9,-1,-1,-1" if conf else ""
        (folder / f"{name}.txt").write_text(f"1,1,10,20,30,40{extra}\n2,1,11.5,20,30,40{extra}\n")


def test_dancetrack_tracker_zip_holds_the_tracker_folder(tmp_path, capsys):
    res = tmp_path / "res"
    _mot_results(res, DANCETRACK_TEST)
    (res / "dancetrack0004.txt").write_text("1,1,1,1,1,1\n")  # a val video: not part of the test set
    out = tmp_path / "sub"
    assert main(["eval", "package", "--benchmark", "dancetrack", "--results", str(res), "--out", str(out)]) == 0
    assert "left out 1 result files" in capsys.readouterr().err
    with zipfile.ZipFile(out / "tracker.zip") as zf:
        names = sorted(zf.namelist())
        assert names == sorted(f"tracker/{n}.txt" for n in DANCETRACK_TEST) and len(names) == 35
        lines = zf.read("tracker/dancetrack0003.txt").decode().splitlines()
    # <frame>, <id>, <bb_left>, <bb_top>, <bb_width>, <bb_height>, <conf>, -1, -1, -1
    assert lines == ["1,1,10.00,20.00,30.00,40.00,0.9,-1,-1,-1", "2,1,11.50,20.00,30.00,40.00,0.9,-1,-1,-1"]
    assert (out / "tracker" / "dancetrack0100.txt").is_file()


def test_dancetrack_refuses_missing_sequences_by_name(tmp_path, capsys):
    res = tmp_path / "res"
    _mot_results(res, DANCETRACK_TEST[2:], conf=False)
    rc = main(["eval", "package", "--benchmark", "dancetrack", "--results", str(res), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "2 of 35 missing: dancetrack0003.txt, dancetrack0009.txt" in err
    assert not (tmp_path / "o" / "tracker.zip").exists()


def test_dancetrack_sequences_from_a_seqmap(tmp_path):
    res = tmp_path / "res"
    _mot_results(res, ["dancetrack0004"], conf=False)
    seqmap = tmp_path / "val_seqmap.txt"
    seqmap.write_text("name\ndancetrack0004\n")
    out = tmp_path / "o"
    assert main(["eval", "package", "--benchmark", "dancetrack", "--results", str(res), "--out", str(out),
                 "--gt-root", str(seqmap)]) == 0
    assert (out / "tracker" / "dancetrack0004.txt").read_text().startswith("1,1,10.00,20.00,30.00,40.00,1,-1,-1,-1")


@pytest.fixture
def bensmot(tmp_path):
    gt_rows = [f"{f},{i},{10 + 50 * i},20,30,40,1,1,1" for f in range(1, 6) for i in (1, 2)]
    seq = tmp_path / "test" / "walking" / "seq01"
    (seq / "gt").mkdir(parents=True)
    (seq / "gt" / "gt.txt").write_text("\n".join(gt_rows) + "\n")
    (seq / "video_caption.txt").write_text("Two men walk.\n")
    (seq / "instance_captions.txt").write_text("man0: A man in red.\nman1: A man in blue.\n")
    res = tmp_path / "res"
    res.mkdir()
    # the tracker's ids: 42 follows gt 2, 7 follows gt 1
    (res / "seq01.txt").write_text("".join(f"{f},{42 if i == 2 else 7},{10 + 50 * i},20,30,40,0.8\n"
                                           for f in range(1, 6) for i in (1, 2)))
    (res / "video_captions.json").write_text(json.dumps({"seq01": "Two people walk."}))
    (res / "instance_captions.json").write_text(json.dumps({"seq01/42": "A man in blue."}))
    return tmp_path


def test_bensmot_in_smoters_layout(bensmot):
    out = bensmot / "o"
    assert main(["eval", "package", "--benchmark", "bensmot", "--results", str(bensmot / "res"),
                 "--gt-root", str(bensmot / "test"), "--out", str(out)]) == 0
    track = out / "bensmoteval" / "BenSMOT-val" / "pred" / "data" / "walking" / "seq01.txt"
    assert track.read_text().splitlines()[0] == "1,7,60.00,20.00,30.00,40.00,-1,-1,-1,-1"
    assert (out / "seqmaps" / "BenSMOT-val.txt").read_text() == "name\nwalking/seq01\n"
    video = json.loads((out / "pred_results" / "summary_results.json").read_text())
    assert video == {"preds": ["Two people walk."], "gts": ["Two men walk."]}
    instance = json.loads((out / "pred_results" / "caption_results.json").read_text())
    assert instance == {"preds": ["", "A man in blue."], "gts": ["A man in red.", "A man in blue."]}


def test_bensmot_refuses_missing_sequences_and_captions(bensmot, capsys):
    args = ["eval", "package", "--benchmark", "bensmot", "--results", str(bensmot / "res"), "--out",
            str(bensmot / "o")]
    assert main(args) == 2 and "--gt-root" in capsys.readouterr().err
    (bensmot / "res" / "video_captions.json").write_text("{}")
    assert main([*args, "--gt-root", str(bensmot / "test")]) == 2
    assert "1 missing: seq01" in capsys.readouterr().err
    (bensmot / "res" / "seq01.txt").unlink()
    assert main([*args, "--gt-root", str(bensmot / "test")]) == 2
    assert "1 of 1 missing: seq01.txt" in capsys.readouterr().err
