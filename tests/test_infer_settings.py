"""`vptracker infer` settings: the typed inference config refuses unknown keys and bad values with
one line each (key, where it was set, the nearest known key) and exit 2, also through infer.sh."""
from __future__ import annotations

import json
import subprocess

import pytest

from vptracker.cli import main
from vptracker.infer.common import TaskOptions
from vptracker.train.stages import REPO_ROOT

MOT = str(REPO_ROOT / "configs" / "infer" / "omnipt_mot.yaml")


@pytest.fixture
def model(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl"}))
    return folder


@pytest.mark.parametrize(("override", "message"), [
    ("modle=x", "command line: unknown key 'modle' (did you mean 'model'?)"),
    ("options.vp_scael=6", "command line: unknown task option 'vp_scael' (did you mean 'vp_scale'?)"),
    ("task=omnipt_mto", "command line: task='omnipt_mto': expected one of"),
    ("dataset=dancetrak", "command line: dataset='dancetrak': expected one of"),
    ("concurrency=abc", "command line: concurrency='abc': expected an integer"),
    ("concurrency=0", "command line: concurrency=0: expected >= 1"),
    ("options.box_scale=bogus", "command line: options.box_scale='bogus': expected one of family, abs"),
    ("options.frames_per_sample=1", "options.frames_per_sample=1: expected >= 2"),
    ("temperature=-1", "temperature=-1.0: expected >= 0"),
    ("root=/no/such/folder", "root=/no/such/folder: the dataset root does not exist"),
])
def test_bad_settings_are_one_line_and_exit_2(override, message, model, tmp_path, capsys):
    argv = ["infer", "--config", MOT, f"model={model}", "dataset=dancetrack", f"root={tmp_path}",
            f"out={tmp_path / 'out'}", override]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_an_unknown_key_in_the_yaml_file_names_the_file(model, tmp_path, capsys):
    config = tmp_path / "mine.yaml"
    config.write_text(f"defaults: [{MOT}]\nconcurency: 4\noptions:\n  frames_per_sampel: 8\n")
    assert main(["infer", "--config", str(config), f"model={model}", f"out={tmp_path / 'o'}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2     # every problem at once
    assert f"{config}: unknown key 'concurency' (did you mean 'concurrency'?)" in err[0]
    assert f"{config}: unknown task option 'frames_per_sampel' (did you mean 'frames_per_sample'?)" in err[1]


def test_every_shipped_inference_config_passes_the_check():
    from vptracker.config import load_config
    from vptracker.infer.settings import check_settings

    for path in sorted((REPO_ROOT / "configs" / "infer").glob("*.yaml")):
        check_settings(load_config(path), lambda key, path=path: str(path))


def test_task_options_refuse_an_unknown_key():
    from vptracker.config import ConfigError

    with pytest.raises(ConfigError, match="unknown task option 'frame_per_sample' .*'frames_per_sample'"):
        TaskOptions.from_dict({"frame_per_sample": 8})


def test_infer_sh_passes_the_one_line_and_exit_2_through(model, tmp_path):
    argv = ["bash", "infer.sh", "--config", MOT, f"model={model}", "dataset=dancetrack", f"root={tmp_path}",
            f"out={tmp_path / 'out'}", "options.vp_scael=6"]
    done = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown task option 'vp_scael'" in lines[0] and "Traceback" not in done.stderr
