"""The family registry: one record per model family, looked up by prepare, training and inference."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import yaml

from vptracker.boxes import parse_trajectory
from vptracker.datasets import load
from vptracker.infer.common import TaskOptions
from vptracker.models.families import FAMILIES, Family, detect_family, family_of_model_type, get_family, register_family
from vptracker.models.folder import ModelDirError
from vptracker.tasks.prepare import prepare
from vptracker.train.stages import CONFIG_DIR, load_stage


def test_every_preset_names_a_registered_family_its_templates_and_its_config_model_type():
    presets = sorted((CONFIG_DIR / "models").glob("*.yaml"))
    assert len(presets) == 7
    for path in presets:
        preset = yaml.safe_load(path.read_text())
        family = get_family(preset["family"])
        assert preset["template"] in family.templates, path
        assert "box_scale" not in preset and "target_modules" not in preset, path   # the family holds them
        published = json.loads(path.with_suffix(".config.json").read_text())["model_type"]
        assert family_of_model_type(published) == family.name, path
        assert family.swift_names(published) == (preset["model_type"], preset["template"]), path
    # InternVL2.5 converted to transformers' native classes says "internvl": same family, swift's HF names
    assert family_of_model_type("internvl") == "internvl2_5"
    assert get_family("internvl2_5").swift_names("internvl") == ("internvl", "internvl_hf")
    assert family_of_model_type("llava_next") == "llava_next"


def test_box_conventions_and_resize_rules():
    assert {n: f.box_scale for n, f in FAMILIES.items()} == {
        "qwen2_vl": "norm1000", "qwen2_5_vl": "resized", "qwen3_vl": "norm1000",
        "internvl2_5": "norm1000", "llava_next": "norm1"}
    assert {n: f.resize_factor for n, f in FAMILIES.items()} == {
        "qwen2_vl": 28, "qwen2_5_vl": 28, "qwen3_vl": 32, "internvl2_5": None, "llava_next": None}


def test_registry_refuses_duplicates():
    with pytest.raises(ValueError, match="'qwen3_vl' is already registered"):
        register_family(Family("qwen3_vl", "norm1000", {"qwen3_vl_new": ("a", "b")}))
    with pytest.raises(ValueError, match="model_type 'llava_next' already belongs to family 'llava_next'"):
        register_family(Family("llava_next_2", "norm1", {"llava_next": ("a", "b")}))
    assert "llava_next_2" not in FAMILIES
    with pytest.raises(ValueError, match="unknown model family 'llava'"):
        get_family("llava")


def test_detect_family_maps_model_type_and_never_runs_code(tmp_path):
    for model_type, family in [("internvl", "internvl2_5"), ("llava_next", "llava_next"), ("qwen3_vl", "qwen3_vl")]:
        folder = tmp_path / model_type
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps({"model_type": model_type}))
        assert detect_family(folder) == family
    remote = tmp_path / "remote"
    remote.mkdir()
    (remote / "config.json").write_text(json.dumps({"model_type": "internvl_chat",
                                                    "auto_map": {"AutoConfig": "configuration_internvl_chat.C"}}))
    with pytest.raises(ModelDirError):
        detect_family(remote)                                    # read through check_model_dir: refused
    assert detect_family(remote, trust_remote_code=True) == "internvl2_5"
    (tmp_path / "qwen3_vl" / "config.json").write_text('{"model_type": "mllama"}')
    with pytest.raises(ValueError, match="model_type 'mllama' is not a supported family"):
        detect_family(tmp_path / "qwen3_vl")


def test_stage_configs_read_the_registry():
    cfg = load_stage("stage3_sft", ["model_preset=llava_next_8b"])
    assert cfg["model"]["target_modules"] == "all-linear"         # the family's LoRA targets
    with pytest.raises(Exception, match="'model.template'.*family qwen3_vl runs with swift templates"):
        load_stage("stage3_sft", ["model_preset=qwen3_vl_4b", "model.template=internvl2_5"])
    with pytest.raises(Exception, match="CLIP-style phase supports.*not 'llava_next'"):
        load_stage("stage2_midtrain", ["model_preset=llava_next_8b"])


@pytest.mark.parametrize("family, scale, top", [("internvl2_5", "norm1000", 1000), ("llava_next", "norm1", 1)])
def test_prepared_rows_are_in_the_family_convention_and_map_back_at_inference(shared_data, tmp_path, family,
                                                                              scale, top):
    """Rows written by the real prepare on real OTB frames, mapped back by the inference-side CoordMap."""
    config = {"seed": 0, "out": str(tmp_path / "out"), "workers": 1, "jobs": {"sot": {
        "task": "omnipt_sot", "options": {"family": family, "scale": "family", "frames": 4},
        "sources": {"otb": {"dataset": "otb", "root": str(shared_data / "otb")}}, "samples": {"train": 12}}}}
    card = prepare(config, progress=False)
    seqs = {s.name: s for s in load("otb", shared_data / "otb")}
    where = {os.path.realpath(f): (s, i) for s in seqs.values() for i, f in enumerate(s.frames)}
    files = card["outputs"]["train"]["sot"]["files"]
    rows = [json.loads(line) for f in files for line in (tmp_path / "out" / f).read_text().splitlines()]
    assert len(rows) == 12
    checked = 0
    for row in rows:
        seq, _ = where[os.path.realpath(row["images"][0])]
        cmap = TaskOptions(family=family, box_scale="family").coord_map(seq.width, seq.height)
        assert cmap.scale == scale
        for path, parsed in zip(row["images"], parse_trajectory(row["messages"][-1]["content"]), strict=True):
            if parsed.box is None:
                continue
            assert all(0 <= v <= top for v in parsed.box)       # the family's grid, not pixels
            t = where[os.path.realpath(path)][1]
            x, y, w, h = seq.target.boxes[t]
            expected = (max(x, 0), max(y, 0), min(x + w, seq.width), min(y + h, seq.height))
            unit = 0.5 * 10 ** -cmap.decimals * max(seq.width, seq.height) / top   # one rounding step
            assert np.allclose(cmap.to_frame(parsed.box), expected, atol=unit + 1e-6)
            checked += 1
    assert checked >= 24


def test_tiling_families_refuse_what_they_cannot_do():
    from vptracker.tasks import get_task

    with pytest.raises(ValueError, match="scale=resized needs a family that resizes"):
        get_task("omnipt_sot", family="internvl2_5", scale="resized")
    with pytest.raises(ValueError, match="grammar=qwen writes Qwen's <\\|box_start\\|> tokens"):
        get_task("omnipt_sot", family="llava_next", grammar="qwen")


@pytest.mark.parametrize("model_type, family, swift_names", [
    ("internvl", "internvl2_5", ("internvl", "internvl_hf")),
    ("llava_next", "llava_next", ("llama3_llava_next_hf", "llama3_llava_next_hf")),
    ("qwen2_5_vl", "qwen2_5_vl", ("qwen2_5_vl", "vptracker_qwen2_5_vl")),     # our rendering template
])
def test_inference_accepts_every_family_with_swift_names_from_the_registry(tmp_path, monkeypatch, model_type,
                                                                          family, swift_names):
    import swift

    from vptracker.commands.infer import describe_run
    from vptracker.infer.engine import make_engine

    (tmp_path / "config.json").write_text(json.dumps({"model_type": model_type}))
    run = describe_run({"model": str(tmp_path), "task": "omnipt_sot"})
    assert run["family"] == family and run["options"]["family"] == family
    created = {}

    class FakeTransformersEngine:
        def __init__(self, model, **kwargs):
            created.update(model=model, **kwargs)

    monkeypatch.setattr(swift, "TransformersEngine", FakeTransformersEngine)
    engine = make_engine(tmp_path)
    assert engine.family == family
    assert (created["model_type"], created["template_type"]) == swift_names


def test_swift_knows_every_model_type_and_template_the_registry_names():
    from swift.model import MODEL_MAPPING
    from swift.template import TEMPLATE_MAPPING

    for family in FAMILIES.values():
        for model_type, template in family.swift.values():
            assert model_type in MODEL_MAPPING and template in TEMPLATE_MAPPING, (family.name, model_type, template)


def test_registry_names_are_what_swift_registers_for_each_checkpoint_class():
    """Each config model_type's swift pair is one swift registers together, for that model class."""
    from swift.model import MODEL_MAPPING
    from transformers import CONFIG_MAPPING

    from vptracker.tiny.model import tiny_families

    assert set(tiny_families()) == set(FAMILIES)         # make-tiny-model builds every family
    for family in FAMILIES.values():
        for config_type, (model_type, template) in family.swift.items():
            meta = MODEL_MAPPING[model_type]
            templates = {group.template or meta.template for group in meta.model_groups}
            assert template in templates, (family.name, model_type, template, templates)
            if config_type in CONFIG_MAPPING:             # transformers' own classes (not remote code)
                architectures = set(meta.architectures)
                assert any(a.startswith(CONFIG_MAPPING[config_type].__name__.removesuffix("Config"))
                           for a in architectures), (config_type, architectures)

