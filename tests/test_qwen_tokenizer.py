"""The real Qwen tokenizer built offline from the dashscope wheel's BPE ranks, checked against tiktoken.

Needs the package registry once (pip downloads the one wheel); skips, saying so, when unreachable.
"""
from __future__ import annotations

import random
import unicodedata

import pytest

from vptracker.boxes import render_bbox, render_trajectory
from vptracker.prompts import texts as prompts


@pytest.fixture(scope="module")
def qwen(tmp_path_factory):
    """The tokenizer written again here from the ranks: the ones setup kept (find_tokenizer), else the
    dashscope wheel's (one download)."""
    from transformers import AutoTokenizer

    from vptracker.models.qwen_tokenizer import fetch_ranks, find_tokenizer, write_tokenizer

    out = tmp_path_factory.mktemp("qwen_tokenizer")
    built = find_tokenizer()
    if built is not None and (built / "qwen.tiktoken").is_file():
        ranks = built / "qwen.tiktoken"
    else:
        try:
            ranks = fetch_ranks(out)
        except RuntimeError as err:
            pytest.skip(f"package registry unreachable: {err}")
    write_tokenizer(ranks, out)
    return AutoTokenizer.from_pretrained(out), ranks


def test_find_tokenizer_reads_the_variable_then_the_environment(tmp_path, monkeypatch):
    import vptracker.models.qwen_tokenizer as qt

    monkeypatch.delenv(qt.ENV, raising=False)
    monkeypatch.setattr(qt, "default_dir", lambda: tmp_path / "venv_share")
    assert qt.find_tokenizer() is None
    (tmp_path / "venv_share").mkdir()
    (tmp_path / "venv_share" / "tokenizer.json").write_text("{}")
    assert qt.find_tokenizer() == tmp_path / "venv_share"
    monkeypatch.setenv(qt.ENV, str(tmp_path / "elsewhere"))
    with pytest.raises(FileNotFoundError, match=r"VPTRACKER_QWEN_TOKENIZER=.*elsewhere: no tokenizer.json"):
        qt.find_tokenizer()


def _texts() -> list[str]:
    rng = random.Random(0)
    boxes = [[rng.uniform(0, 1000) for _ in range(4)] for _ in range(40)]
    texts = [prompts.vptracker_prompt("the man in a red coat walking"), prompts.omnipt_sot(16, render_bbox(boxes[0])),
             prompts.omnipt_mot_first(16), prompts.omnipt_crmot([8, 8], "people crossing the street"),
             render_trajectory(boxes[:16]), "Hello, world!", "  leading spaces\n\n\ttabs\r\nand CRLF  ",
             "数字 123456 和中文，标点！", "émigré naïve café — “quotes” 'tis we'll I'M", "x" * 300, "1,000.5e-3 %$#@!"]
    words = ["the", "a", "person", "car", "dog", "runs", "walks", "left", "right", "of", "with", "in", "near", "12", "3.5", "<bbox>", "</bbox>", "<None>"]
    texts += [" ".join(rng.choice(words) for _ in range(rng.randint(1, 60))) for _ in range(300)]
    return [unicodedata.normalize("NFC", t) for t in texts]  # Qwen's tokenizer normalises to NFC


def test_hello_world_and_special_ids(qwen):
    tok, _ = qwen
    assert tok("Hello, world!")["input_ids"] == [9707, 11, 1879, 0]
    assert tok.convert_tokens_to_ids(["<|endoftext|>", "<|vision_start|>", "<|image_pad|>"]) == [151643, 151652, 151655]


def test_same_ids_as_tiktoken(qwen):
    tiktoken = pytest.importorskip("tiktoken")
    from vptracker.models.qwen_tokenizer import PATTERN, read_ranks

    tok, ranks_path = qwen
    reference = tiktoken.Encoding("qwen", pat_str=PATTERN, mergeable_ranks=read_ranks(ranks_path), special_tokens={})
    texts = _texts()
    mismatched = [t for t in texts if tok(t, add_special_tokens=False)["input_ids"] != reference.encode_ordinary(t)]
    assert not mismatched, f"{len(mismatched)} of {len(texts)} texts differ, e.g. {mismatched[0]!r}"
