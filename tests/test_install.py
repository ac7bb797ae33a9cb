"""The GPU install resolves as the README prints it: wheels only, under scripts/constraints.txt.

``pip install --dry-run --report`` resolves the ``gpu`` extra with the project's own dependencies
and says where each distribution would come from; a conflict fails the resolution, a source
release that would have to be compiled fails the test. Needs the package registry (CI has it):
skips, saying so, when pip cannot reach it. Takes about two minutes (pip fetches metadata).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Source releases that install without a compiler. DeepSpeed publishes no wheels; its CUDA ops are
# compiled at first use (DS_BUILD_OPS=0 by default), not at install time. ms-swift's own stack (the
# CPU install, not the gpu extra) brings oss2 and transformers-stream-generator (pure Python) and
# crcmod (its C extension is optional: without a compiler it installs its pure-Python module).
PURE_PYTHON_SDISTS = {"deepspeed", "oss2", "crcmod", "transformers-stream-generator"}
PINNED = {"vllm": "0.32.0", "deepspeed": "0.19.8", "torch": "2.13.0"}


def _pip(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, timeout=timeout,
                          check=False)


@pytest.mark.slow
@pytest.mark.network
def test_gpu_extra_resolves_from_wheels_under_the_constraints(tmp_path):
    probe = _pip("index", "versions", "vllm", timeout=120)
    if probe.returncode != 0 or "0.32.0" not in probe.stdout:
        pytest.skip(f"package registry unreachable (pip index versions vllm: {probe.stderr.strip()[-200:]})")
    report = tmp_path / "report.json"
    no_binary = ",".join(sorted(PURE_PYTHON_SDISTS))
    result = _pip("install", "--dry-run", "--ignore-installed", "--only-binary", ":all:", "--no-binary", no_binary,
                  "-c", str(REPO / "scripts" / "constraints.txt"), "--report", str(report), f"{REPO}[gpu]")
    assert result.returncode == 0, f"the gpu extra does not resolve:\n{result.stderr[-3000:]}"
    installs = json.loads(report.read_text())["install"]
    versions = {item["metadata"]["name"].lower(): item["metadata"]["version"] for item in installs}
    for name, version in PINNED.items():
        assert versions.get(name, "").split("+")[0] == version, (name, versions.get(name))
    built = [f"{item['metadata']['name']} ({item['download_info']['url']})" for item in installs
             if not item["download_info"]["url"].endswith(".whl")
             and item["metadata"]["name"].lower() not in PURE_PYTHON_SDISTS | {"vptracker"}]
    assert not built, f"would be compiled from source: {built}"


def test_flash_attention_falls_back_to_sdpa_when_not_built(monkeypatch):
    import importlib.util

    from vptracker.models.attn import usable_attn_impl

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "flash_attn" else real(name, *a))
    with pytest.warns(UserWarning, match="flash_attn package is not installed.*'sdpa'"):
        assert usable_attn_impl("flash_attn") == "sdpa"
    assert usable_attn_impl("sdpa") == "sdpa" and usable_attn_impl(None) is None
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object())
    assert usable_attn_impl("flash_attn") == "flash_attn"
