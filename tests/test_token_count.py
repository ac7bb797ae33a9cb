"""The length budget's fast counting gives the tokenizer's own numbers: piece-keyed counts against
the tokenizer on random text, and the array renderers against the box-by-box ones."""
from __future__ import annotations

import random

import numpy as np
import pytest

from vptracker.boxes import render_trajectory, render_trajectory_array
from vptracker.models.qwen_tokenizer import find_tokenizer
from vptracker.tasks.token_count import TextCounter, _tokenizer, estimate_tokens, text_counter

# characters and runs that sit on the split rules' edges: digits, spaces before letters and punctuation,
# ``><`` between boxes, added tokens (some with a letter beside ``<``/``>``), other whitespace, non-ASCII
ALPHABET = [*"abcXYZ 0123456789,.:;<>/()[]{}'\"-_!?\n\r\t", "é", "e\u0301", "²", "٣", "中", "  ", "<bbox>",
            "</bbox>", "<None>", "><", "bbox", "None", "<|box_start|>", "<|box_end|>", "<think>", "</think>",
            "<tool_call>", "'s", " the", "\u00a0", "\u3000", "\x1c", "ǅ", "Ⅻ"]


def _texts(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 40))) for _ in range(n)]


def test_qwen_counts_equal_the_tokenizer_on_random_text():
    if find_tokenizer() is None:
        pytest.skip("the real Qwen tokenizer is not built: `python -m vptracker.models.qwen_tokenizer` (scripts/setup.sh)")
    tokenizer = _tokenizer(str(find_tokenizer()))
    count = text_counter("qwen2_5_vl")[0]
    assert count.pieces  # the real tokenizer is recognised as Qwen2's pattern
    texts = _texts(0, 2000)
    direct = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    assert count.many(texts) == direct
    assert [count(t) for t in texts[:200]] == direct[:200]          # again, from the cache


def test_estimate_counts_equal_the_estimate_on_random_text():
    count = text_counter("qwen2_5_vl", "estimate")[0]
    texts = _texts(1, 2000)
    assert count.many(texts) == [estimate_tokens(t) for t in texts]


def test_the_cache_stays_bounded(monkeypatch):
    import vptracker.tasks.token_count as tc

    monkeypatch.setattr(tc, "CACHE_LIMIT", 50)
    count = TextCounter(lambda texts: [estimate_tokens(t) for t in texts], pieces=True)
    for text in _texts(2, 500):
        assert count(text) == estimate_tokens(text)
        assert len(count._cache) <= 50 + 60


@pytest.mark.parametrize("grammar", ["bbox", "qwen"])
@pytest.mark.parametrize("decimals", [0, 3])
def test_array_renderer_matches_render_trajectory(grammar, decimals):
    rng = np.random.default_rng(0)
    scale = 1.0 if decimals else 1000.0
    corners = rng.uniform(-0.1, 1.1, (7, 16, 2)) * scale
    boxes = np.concatenate([corners, corners + rng.uniform(0, 0.3, (7, 16, 2)) * scale], axis=-1)
    boxes[0, :4] = np.array([0.5, 1.5, 2.5, 999.5]) * (scale / 1000)   # ties round half to even
    present = rng.random((7, 16)) > 0.3
    expected = [render_trajectory([b if p else None for b, p in zip(row, keep)], decimals, grammar)
                for row, keep in zip(boxes.tolist(), present.tolist())]
    assert render_trajectory_array(boxes, present, decimals, grammar) == expected


def _transformers_counts(folder, texts):
    from transformers import AutoTokenizer

    return [len(ids) for ids in AutoTokenizer.from_pretrained(str(folder))(texts, add_special_tokens=False)["input_ids"]]


@pytest.mark.slow   # builds a tokenizer and loads transformers: ~10 s
def test_a_tokenizer_folder_counts_as_transformers_does(tmp_path):
    """Transformers' Qwen2Tokenizer rebuilds the pre-tokenizer and normalizer and adds the tokens its
    config names: a folder is counted without transformers only where its tokenizer.json already
    holds all that (a copy of the real one, with a named token it has), through transformers
    otherwise (a config naming a token the file lacks; a tiny model's byte-level-only file), and the
    counts equal the AutoTokenizer's either way."""
    import json
    import shutil

    from vptracker.tasks.token_count import _count_with, _direct_spec
    from vptracker.tiny.model import _tokenizer as write_tiny_tokenizer

    if find_tokenizer() is None:
        pytest.skip("the real Qwen tokenizer is not built: `python -m vptracker.models.qwen_tokenizer` (scripts/setup.sh)")
    texts = _texts(3, 1500)
    for named, direct in (("<think>", True), ("<vp_mark>", False)):
        folder = tmp_path / named.strip("<>")
        shutil.copytree(find_tokenizer(), folder)
        config = json.loads((folder / "tokenizer_config.json").read_text())
        config["additional_special_tokens"] = [named]
        (folder / "tokenizer_config.json").write_text(json.dumps(config))
        assert (_direct_spec(str(folder)) is not None) == direct, named
        marked = [t + named for t in texts[:300]]
        assert _count_with(str(folder)).many(marked) == _transformers_counts(folder, marked)

    tiny = tmp_path / "tiny"
    write_tiny_tokenizer(tiny, ("<bbox>12,34,56,78</bbox> the person in red",), 400)
    assert _direct_spec(str(tiny)) is None
    assert _count_with(str(tiny)).many(texts) == _transformers_counts(tiny, texts)


def test_counting_with_the_qwen_tokenizer_does_not_import_transformers():
    """`vptracker prepare` counts every row's tokens; loading transformers for that cost each
    process about 5 s."""
    import subprocess
    import sys

    if find_tokenizer() is None:
        pytest.skip("the real Qwen tokenizer is not built: `python -m vptracker.models.qwen_tokenizer` (scripts/setup.sh)")
    code = ("import sys; from vptracker.tasks.token_count import text_counter; "
            "count, what = text_counter('qwen2_5_vl'); assert count('<bbox>1,2,3,4</bbox>') == 13, count('<bbox>1,2,3,4</bbox>'); "
            "print(what, 'transformers' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().endswith("False"), done.stdout + done.stderr
