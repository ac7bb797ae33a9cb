"""``threads: auto``: as many torch threads as the rest of the machine leaves cores idle."""
from __future__ import annotations

import subprocess
import sys

import pytest

from vptracker.cli import main
from vptracker.demo import demo_config
from vptracker.demo.pipeline import AUTO_MOST, StepLog
from vptracker.infer import threads as t


@pytest.mark.parametrize("value, expected", [("auto", "auto"), ("AUTO", "auto"), (1, 1), (2, 2), (16, 16)])
def test_a_thread_setting_is_a_count_or_auto(value, expected):
    assert t.check_threads(value) == expected


@pytest.mark.parametrize("value", [0, -1, True, 1.5, "two", None, "2"])
def test_anything_else_is_refused_naming_the_key(value):
    with pytest.raises(ValueError, match=r"^threads: expected a positive number of CPU threads or 'auto'"):
        t.check_threads(value)


def test_a_fixed_count_is_used_without_looking_at_the_machine(monkeypatch):
    monkeypatch.setattr(t, "busy_cores", lambda *a, **k: pytest.fail("sampled the machine for a fixed count"))
    assert t.choose_threads(2, most=AUTO_MOST) == 2
    assert t.choose_threads(1) == 1


@pytest.mark.parametrize("cores, busy, most, expected", [
    (2, 0.0, 2, 2),    # idle machine: the README's two threads
    (2, 0.15, 2, 2),   # background work below TAKEN leaves both cores
    (2, 0.3, 2, 1),    # a third of a core taken is a taken core: one barrier would wait for it
    (2, 1.0, 2, 1),    # one busy loop
    (2, 2.0, 2, 1),    # everything taken: still one thread
    (16, 1.0, 2, 2),   # a big machine with one busy core: no more than ``most``
    (16, 0.0, None, 16),
])
def test_auto_counts_the_cores_left_idle(monkeypatch, cores, busy, most, expected):
    monkeypatch.setattr(t.psutil, "cpu_count", lambda *a, **k: cores)
    monkeypatch.setattr(t, "busy_cores", lambda *a, **k: busy)
    assert t.choose_threads("auto", most=most) == expected


def test_a_busy_process_is_seen():
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
    try:
        assert t.busy_cores(0.5) > 0.6
    finally:
        hog.kill()
        hog.wait()


def test_each_step_chooses_again_and_says_when_it_runs_on_fewer_threads(monkeypatch):
    counts = iter([2, 1])
    monkeypatch.setattr("vptracker.demo.pipeline.choose_threads", lambda setting, most: next(counts))
    used = []
    monkeypatch.setattr("vptracker.demo.pipeline.use_threads", used.append)
    lines = []
    log = StepLog(lines.append, "auto")
    assert log.step("SFT stage", lambda: 3) == 3
    assert log.step("track (trained)", lambda: 4) == 4
    assert used == [2, 1] and log.used == {"SFT stage": 2, "track (trained)": 1}
    notes = [line for line in lines if "another process holds a core" in line]
    assert len(notes) == 1 and notes[0].startswith("[demo] track (trained):") and "threads=2" in notes[0]


def test_a_fixed_count_never_warns(monkeypatch):
    monkeypatch.setattr("vptracker.demo.pipeline.use_threads", lambda n: None)
    lines = []
    log = StepLog(lines.append, 1)
    log.step("SFT stage", lambda: None)
    assert log.used == {"SFT stage": 1} and not any("another process" in line for line in lines)


def test_the_demos_choose_per_step_and_a_bad_setting_exits_2(tmp_path, capsys):
    assert demo_config(False)["threads"] == demo_config(False, ["task=omnipt_mot"])["threads"] == "auto"
    assert demo_config(False, ["threads=1"])["threads"] == 1
    for bad in ("threads=0", "threads=two"):
        assert main(["demo", bad, "--out", str(tmp_path / "demo")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "demo.yaml: threads: expected a positive number" in err[0], err
    assert not (tmp_path / "demo").exists()
