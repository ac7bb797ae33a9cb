"""vptracker visualize on real OTB frames with a published tracker's real predictions, and on MOT rows."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from test_infer_loops import make_sequence

from vptracker.cli import main
from vptracker.infer.outputs import mot_text, sot_text
from vptracker.infer.visualize import SOT_COLOR, read_prediction, render_sequence


def meem_predictions(shared_data, tmp_path):
    pred = tmp_path / "pred"
    pred.mkdir()
    for seq in ("Couple", "Crossing"):
        res = json.loads((shared_data / "otb" / "results" / "MEEM" / f"{seq}.json").read_text())[0]["res"]
        (pred / f"{seq}.txt").write_text(sot_text(res))
    return pred


@pytest.mark.parametrize("fmt", ["gif", "mp4"])
def test_visualize_cli_draws_published_predictions_on_real_frames(shared_data, tmp_path, fmt):
    pred = meem_predictions(shared_data, tmp_path)
    out = tmp_path / "vis"
    assert main(["visualize", "--pred", str(pred), "--dataset", "otb", "--root", str(shared_data / "otb"),
                 "--out", str(out), "--format", fmt, "--max-frames", "12", "--stride", "2",
                 "--sheet-frames", "4"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"Couple.{fmt}", "Couple_sheet.png", f"Crossing.{fmt}", "Crossing_sheet.png"])
    if fmt == "gif":
        with Image.open(out / "Couple.gif") as gif:
            assert gif.n_frames == 6
    else:
        import av

        with av.open(str(out / "Couple.mp4")) as container:
            assert sum(1 for _ in container.decode(video=0)) == 6
    sheet = np.asarray(Image.open(out / "Couple_sheet.png").convert("RGB"))
    assert sheet.shape == (240 * 1, 320 * 4, 3)
    # the first frame's predicted box (51,47,25,62) is drawn in red on the first thumbnail
    assert tuple(sheet[47 + 30, 51]) == SOT_COLOR


def test_mot_rows_get_one_colour_per_id(tmp_path):
    seq = make_sequence(tmp_path, n=3)
    rows = [(1, 1, (5, 5, 30, 30)), (1, 7, (40, 20, 80, 50)), (2, 1, (6, 5, 31, 30))]
    path = tmp_path / "pred.txt"
    path.write_text(mot_text(rows))
    kind, data = read_prediction(path)
    assert kind == "mot" and data.shape == (3, 6)
    paths = render_sequence(seq, path, tmp_path / "vis", sheet_frames=3)
    sheet = np.asarray(Image.open(paths["sheet"]).convert("RGB"))
    colours = {tuple(sheet[25, 5]), tuple(sheet[35, 40])}
    assert len(colours) == 2 and (10 * 0 % 255, 40, 90) not in colours


def test_bad_prediction_files_are_reported_with_their_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("1,2,3,4\n1,2,x,4\n")
    with pytest.raises(ValueError, match=r"bad.txt:2"):
        read_prediction(path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        main(["visualize", "--pred", str(tmp_path / "none"), "--dataset", "otb", "--root", str(tmp_path),
              "--out", str(tmp_path)])
