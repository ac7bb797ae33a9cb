"""Rows from ``vptracker prepare`` load through ms-swift's own dataset loading and template encoding,
with the visual prompt rendered by the plugin at load time (tiny model, offline)."""
from __future__ import annotations

import math

import layouts as fx
import pytest
from PIL import Image

from vptracker.models.families import smart_resize
from vptracker.models.swift_plugin import render_row_images
from vptracker.prompts.visual import VisualPrompt, render
from vptracker.tasks.prepare import direct_config, prepare

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def vp_rows(tmp_path_factory):
    root = tmp_path_factory.mktemp("tnl2k")
    boxes = [(20 + 4 * i, 12 + i, 18, 14) for i in range(6)]
    fx.write_tnl2k(root, "train", "s", boxes, "the green box", size=(160, 96))
    out = tmp_path_factory.mktemp("rows")
    prepare(direct_config("tnl2k", str(root), "vptracker_sot", 4, 0, str(out), split="train"), progress=False)
    return out / "train-vptracker_sot-00000.jsonl"


def _template(model_dir, family):
    from swift.model import get_processor
    from swift.template import get_template

    import vptracker.models.swift_plugin as plugin

    assert f"vptracker_{family}" in plugin.TEMPLATES
    processor = get_processor(str(model_dir), model_type=family)
    template = get_template(processor, template_type=f"vptracker_{family}", remove_unused_columns=False)
    template.set_mode("train")
    return template


def test_render_row_images_matches_visual_prompt_module(vp_rows):
    import json

    row = json.loads(vp_rows.read_text().splitlines()[0])
    images = render_row_images(row["images"], row["visual_prompt"], None, Image.open)
    expected = render(Image.open(row["images"][0]), Image.open(row["images"][1]),
                      VisualPrompt.from_json(row["visual_prompt"]))
    assert [im.tobytes() for im in images] == [im.tobytes() for im in expected]
    with pytest.raises(ValueError, match="needs 2 images"):
        render_row_images(row["images"][:1], row["visual_prompt"], None, Image.open)


def test_swift_loads_and_encodes_vptracker_rows(vp_rows, tiny_model):
    from swift.dataset import load_dataset

    dataset, _ = load_dataset([str(vp_rows)], remove_unused_columns=False)
    assert len(dataset) == 4 and "visual_prompt" in dataset.features
    template = _template(tiny_model, "qwen2_5_vl")
    batch = []
    for row in dataset:
        encoded = template.encode(row)
        # image 0 is the template crop, not the full frame: its grid follows the crop's size
        x1, y1, x2, y2 = row["visual_prompt"]["template_region"]
        crop_w, crop_h = smart_resize(x2 - x1, y2 - y1, "qwen2_5_vl")
        full_w, full_h = smart_resize(160, 96, "qwen2_5_vl")
        grid = encoded["image_grid_thw"].tolist()
        assert grid[0] == [1, crop_h // 14, crop_w // 14] and grid[1] == [1, full_h // 14, full_w // 14]
        assert math.prod(grid[0]) != math.prod(grid[1])
        assert "visual_prompt" not in (encoded.get("_extra_kwargs") or {})
        batch.append(encoded)
    collated = template.data_collator(batch)
    assert "visual_prompt" not in collated and collated["input_ids"].shape[0] == 4
    labels = collated["labels"][0]
    answer = template.tokenizer.decode(labels[labels >= 0])
    assert '"visible": "yes"' in answer


def test_swift_template_for_qwen3_vl_family(vp_rows, tiny_model_factory):
    from swift.dataset import load_dataset

    dataset, _ = load_dataset([str(vp_rows)], remove_unused_columns=False)
    template = _template(tiny_model_factory("qwen3_vl"), "qwen3_vl")
    encoded = template.encode(dataset[0])
    x1, y1, x2, y2 = dataset[0]["visual_prompt"]["template_region"]
    crop_w, crop_h = smart_resize(x2 - x1, y2 - y1, "qwen3_vl")
    assert encoded["image_grid_thw"].tolist()[0] == [1, crop_h // 16, crop_w // 16]


def test_swift_encodes_omnipt_rows_and_cuts_reid_crops(tmp_path, tiny_model):
    from swift.dataset import load_dataset

    root = tmp_path / "dance"
    people = {tid: {f: (5 + 20 * tid + f, 5, 12, 30) for f in range(1, 13)} for tid in (1, 2, 3)}
    fx.write_mot(root, "train", "dancetrack0001", 12, fx.mot_rows(people), size=(120, 60), pad=8)
    out = tmp_path / "rows"
    config = {"seed": 0, "out": str(out), "jobs": {
        "mot": {"task": "omnipt_mot", "options": {"frames": 4},
                "sources": {"dance": {"dataset": "dancetrack", "root": str(root), "split": "train"}},
                "samples": {"train": 2}},
        "reid": {"task": "pretext_reid", "options": {"negatives": 2, "min_gap": 2},
                 "sources": {"dance": {"dataset": "dancetrack", "root": str(root), "split": "train"}},
                 "samples": {"train": 2}},
        "grpo": {"task": "omnipt_sot_grpo", "options": {"frames": 3},
                 "sources": {"dance": {"dataset": "dancetrack", "root": str(root), "split": "train"}},
                 "samples": {"train": 2}}}}
    card = prepare(config, progress=False)
    assert card["totals"]["train"] == {"omnipt_mot": 2, "pretext_reid": 2, "omnipt_sot_grpo": 2}
    template = _template(tiny_model, "qwen2_5_vl")

    mot, _ = load_dataset([str(out / "train-mot-00000.jsonl")])
    encoded = template.encode(mot[0])
    assert encoded["image_grid_thw"].shape[0] == 4
    answer = template.tokenizer.decode([x for x in encoded["labels"] if x >= 0])
    assert "trajectory of the first people are: <bbox>" in answer and answer.count("<bbox>") >= 3

    reid, _ = load_dataset([str(out / "train-reid-00000.jsonl")], remove_unused_columns=False)
    row = reid[0]
    encoded = template.encode(row)
    for (x1, y1, x2, y2), grid in zip(row["crops"], encoded["image_grid_thw"].tolist()):
        w, h = smart_resize(x2 - x1, y2 - y1, "qwen2_5_vl")
        assert grid == [1, h // 14, w // 14]

    grpo, _ = load_dataset([str(out / "train-grpo-00000.jsonl")], remove_unused_columns=False)
    assert grpo[0]["solution"].startswith("<bbox>") and [m["role"] for m in grpo[0]["messages"]] == ["user"]


def test_rows_fitted_by_lower_max_pixels_encode_at_their_own_pixels(tmp_path, tiny_model):
    """A row that prepare's length_budget shrank encodes to the token count prepare counted."""
    from swift.dataset import load_dataset

    from vptracker.tasks.lengths import LengthBudget

    root = tmp_path / "dance"
    people = {tid: {f: (40 * tid + f, 50, 60, 200) for f in range(1, 7)} for tid in (1, 2)}
    fx.write_mot(root, "train", "dancetrack0001", 6, fx.mot_rows(people), size=(640, 480), pad=8)
    out = tmp_path / "rows"
    config = {"seed": 0, "out": str(out), "length_budget": {"max_length": 1000, "policy": "lower_max_pixels"},
              "jobs": {"sot": {"task": "omnipt_sot", "options": {"frames": 4},
                               "sources": {"dance": {"dataset": "dancetrack", "root": str(root), "split": "train"}},
                               "samples": {"train": 1}}}}
    card = prepare(config, progress=False)
    assert card["lengths"]["train"]["sot"]["changed_by_policy"] == 1
    rows, _ = load_dataset([str(out / "train-sot-00000.jsonl")], remove_unused_columns=False)
    row = rows[0]
    assert row["max_pixels"] < 28 * 28 * 646
    encoded = _template(tiny_model, "qwen2_5_vl").encode(row)
    w, h = smart_resize(640, 480, "qwen2_5_vl", max_pixels=row["max_pixels"])
    assert encoded["image_grid_thw"].tolist() == [[1, h // 14, w // 14]] * 4
    image_tokens = sum(t * hh * ww // 4 for t, hh, ww in encoded["image_grid_thw"].tolist())
    assert LengthBudget().row_tokens(row) >= image_tokens and len(encoded["input_ids"]) <= 1000
