"""Builds tiny random-weight models offline, for tests, benchmarks and the CPU demo.

Every family of :mod:`vptracker.models.families` is built: the Qwen-VL ones here, InternVL2.5 and
LLaVA-NeXT by :mod:`vptracker.tiny.tiling` (through :func:`make_tiny_model` as well).

The tokenizer is a small byte-level BPE trained here, padded with inert filler tokens so that the
Qwen special tokens keep their real ids: ms-swift's own Qwen templates hard-code those ids.

``compact_vocab=True`` drops the filler: the special tokens follow the BPE's ~600 tokens and the
whole vocabulary has ~640 rows instead of 151,680, so the output layer stops dominating a CPU
training step. Such a model needs templates that read the media token ids from the tokenizer:
the ``vptracker_<family>`` templates of :mod:`vptracker.models.swift_plugin` do (and so do the engines of
:mod:`vptracker.infer.engine`, which use them).
"""
from __future__ import annotations

import json
from pathlib import Path

from vptracker.models.families import family_names, family_of_model_type, get_family
from vptracker.models.qwen_tokenizer import CHAT_TEMPLATE, FIRST_SPECIAL_ID, QWEN_SPECIAL_TOKENS, save_qwen_tokenizer
from vptracker.models.shapes import hf_config, read_config
from vptracker.tiny.tiling import BUILDERS, make_tiling_model
from vptracker.tiny.tokens import MEDIA_TOKENS, bpe_tokenizer, set_generation_ids  # noqa: F401  (MEDIA_TOKENS: tests read it here)


def tiny_families() -> tuple[str, ...]:
    """The families :func:`make_tiny_model` builds: every registered one."""
    return (*qwen_families(), *BUILDERS)


def qwen_families() -> tuple[str, ...]:
    """The Qwen-VL families, built here (Qwen's special tokens at their real ids, ``compact_vocab``,
    ``merge_size``, real-width presets); their templates are the ones swift_plugin wraps."""
    return family_names(render_plugin=True)


VOCAB_SIZE = 151680  # the next multiple of 64 above the last special id

def _tokenizer(out: Path, extra_corpus: tuple[str, ...] = (), bpe_vocab: int = 600,
               compact: bool = False) -> tuple[int, int]:
    """Writes the Qwen tokenizer; returns (first special id, vocabulary size)."""
    fast, first, size = bpe_tokenizer(QWEN_SPECIAL_TOKENS, None if compact else FIRST_SPECIAL_ID, extra_corpus,
                                      bpe_vocab, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    save_qwen_tokenizer(fast, out)
    return first, size


def _config(family: str, hidden: int, layers: int, vision_depth: int, first: int = FIRST_SPECIAL_ID,
            vocab_size: int = VOCAB_SIZE, merge: int = 2):
    from transformers import Qwen2_5_VLConfig, Qwen2VLConfig, Qwen3VLConfig

    patch = get_family(family).patch_size   # the family's resize rule (vptracker.models.families)
    heads, head_dim = 4, hidden // 4
    half = head_dim // 2
    mrope = [half - 2 * (half // 4 + half // 8), half // 4 + half // 8, half // 4 + half // 8]
    text = dict(vocab_size=vocab_size, hidden_size=hidden, intermediate_size=hidden * 2,
                num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=2,
                max_position_embeddings=32768, tie_word_embeddings=True,
                bos_token_id=first, eos_token_id=first + 2, pad_token_id=first)
    special = {tok: first + k for k, tok in enumerate(QWEN_SPECIAL_TOKENS)}
    ids = dict(image_token_id=special["<|image_pad|>"], video_token_id=special["<|video_pad|>"],
               vision_start_token_id=special["<|vision_start|>"], vision_end_token_id=special["<|vision_end|>"],
               tie_word_embeddings=True)
    if family == "qwen2_vl":
        text["rope_parameters"] = {"rope_type": "default", "rope_theta": 1e6, "mrope_section": mrope}
        vision = dict(depth=vision_depth, embed_dim=hidden, hidden_size=hidden, num_heads=4,
                      mlp_ratio=2, patch_size=patch, spatial_merge_size=merge, temporal_patch_size=2)
        return Qwen2VLConfig(text_config=text, vision_config=vision, **ids)
    if family == "qwen2_5_vl":
        text["rope_parameters"] = {"rope_type": "default", "rope_theta": 1e6, "mrope_section": mrope}
        vision = dict(depth=vision_depth, hidden_size=hidden, out_hidden_size=hidden, intermediate_size=hidden * 2,
                      num_heads=4, patch_size=patch, spatial_merge_size=merge, temporal_patch_size=2,
                      window_size=112, fullatt_block_indexes=[vision_depth - 1])
        return Qwen2_5_VLConfig(text_config=text, vision_config=vision, **ids)
    if family == "qwen3_vl":
        text.update(head_dim=head_dim, rope_parameters={"rope_type": "default", "rope_theta": 5e5,
                                                         "mrope_section": mrope, "mrope_interleaved": True})
        vision = dict(depth=vision_depth, hidden_size=hidden, out_hidden_size=hidden, intermediate_size=hidden * 2,
                      num_heads=4, patch_size=patch, spatial_merge_size=merge, temporal_patch_size=2,
                      num_position_embeddings=256, deepstack_visual_indexes=[0])
        return Qwen3VLConfig(text_config=text, vision_config=vision, **ids)
    raise ValueError(f"no tiny Qwen-VL model for family {family!r}; expected one of {qwen_families()}")


def _processor(family: str, out: Path, tokenizer_dir: Path, merge: int = 2) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    patch = get_family(family).patch_size   # the family's resize rule (vptracker.models.families)
    if family == "qwen3_vl":
        from transformers import Qwen2VLImageProcessor, Qwen3VLProcessor, Qwen3VLVideoProcessor

        image = Qwen2VLImageProcessor(patch_size=patch, merge_size=merge, temporal_patch_size=2,
                                      image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5],
                                      min_pixels=64 * (patch * 2) ** 2 // merge ** 2,
                                      max_pixels=16384 * (patch * 2) ** 2)
        video = Qwen3VLVideoProcessor(patch_size=patch, merge_size=merge, temporal_patch_size=2)
        proc = Qwen3VLProcessor(image_processor=image, tokenizer=tok, video_processor=video,
                                chat_template=CHAT_TEMPLATE)
    else:
        from transformers import Qwen2VLImageProcessor, Qwen2VLVideoProcessor

        image = Qwen2VLImageProcessor(patch_size=patch, merge_size=merge, temporal_patch_size=2)
        video = Qwen2VLVideoProcessor(patch_size=patch, merge_size=merge, temporal_patch_size=2)
        if family == "qwen2_vl":
            from transformers import Qwen2VLProcessor as Proc
        else:
            from transformers import Qwen2_5_VLProcessor as Proc
        proc = Proc(image_processor=image, tokenizer=tok, video_processor=video, chat_template=CHAT_TEMPLATE)
    proc.save_pretrained(out)


def make_tiny_model(family: str, out: str | Path, hidden: int = 64, layers: int = 2, vision_depth: int = 2,
                    seed: int = 0, extra_corpus: tuple[str, ...] = (), bpe_vocab: int = 600,
                    compact_vocab: bool = False, merge_size: int = 2) -> Path:
    """Writes a random-weight model, tokenizer and processor of ``family`` to ``out``.

    ``extra_corpus`` / ``bpe_vocab`` let the BPE learn merges for long prompts (the CPU demo trains
    on VPTracker's 130-word prompt, which the default 600-token BPE spells in ~460 tokens).
    ``merge_size`` is the ViT's spatial merge (2 in every real Qwen-VL): at 1 each visual token is one
    patch, four times as many tokens per image: a finer grid for a model trained from scratch
    (the CPU demo's setting; pair it with ``abs`` or ``norm`` boxes: the ``resized`` grid assumes the real merge of 2).
    InternVL2.5 and LLaVA-NeXT (:mod:`vptracker.tiny.tiling`) always have a compact vocabulary (their
    swift templates read every token id from the tokenizer) and no merge size to choose.
    """
    import torch
    from transformers import AutoModelForImageTextToText

    if family not in qwen_families():
        if merge_size != 2:
            raise ValueError(f"merge_size={merge_size}: only the Qwen-VL families have a spatial merge, not {family}")
        return make_tiling_model(family, out, hidden, layers, vision_depth, seed, extra_corpus, bpe_vocab)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    first, vocab_size = _tokenizer(out, tuple(extra_corpus), bpe_vocab, compact_vocab)
    config = _config(family, hidden, layers, vision_depth, first, vocab_size, merge_size)
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(config, dtype=torch.float32)
    _processor(family, out, out, merge_size)
    set_generation_ids(model, out, [first + 2, first], first)
    model.save_pretrained(out)
    (out / "vptracker_tiny.json").write_text(json.dumps(
        {"family": family, "hidden": hidden, "layers": layers, "vision_depth": vision_depth, "seed": seed,
         "compact_vocab": compact_vocab, "vocab_size": vocab_size, "merge_size": merge_size}))
    return out


def real_width_config(preset: str, layers: int, vision_layers: int) -> dict:
    """A preset's published ``config.json`` with only the depths cut: real widths, heads, vocabulary,
    rope sections; window attention kept (only the last ViT layer attends globally, as each of the
    real model's full-attention layers closes a window block) and Qwen3-VL's deepstack taps scaled."""
    cfg, _ = read_config(preset)
    if family_of_model_type(cfg.get("model_type", ""), f"preset {preset}") not in qwen_families():
        raise ValueError(f"preset {preset!r} is a {cfg.get('model_type')} model; real-width models are built for "
                         f"the Qwen-VL families {qwen_families()}")
    text = cfg.get("text_config", cfg)
    text["num_hidden_layers"] = layers
    if "max_window_layers" in text:
        text["max_window_layers"] = layers
    vision = cfg["vision_config"]
    real_depth = vision["depth"]
    vision["depth"] = vision_layers
    if "fullatt_block_indexes" in vision:
        vision["fullatt_block_indexes"] = [vision_layers - 1]
    if "deepstack_visual_indexes" in vision:
        taps = vision["deepstack_visual_indexes"]
        vision["deepstack_visual_indexes"] = sorted({min(vision_layers - 1, i * vision_layers // real_depth)
                                                     for i in taps})
    return cfg


def make_real_width_model(preset: str, out: str | Path, layers: int = 2, vision_layers: int = 4,
                          seed: int = 0, dtype: str = "float32", tokenizer_dir: str | Path | None = None) -> Path:
    """A random-weight model with a preset's real widths and vocabulary size but few layers, so that
    CPU tests run real shapes (window attention, mrope, the 151,936-row output layer). The tokenizer
    is ``tokenizer_dir``'s (e.g. the real Qwen one, :mod:`vptracker.models.qwen_tokenizer`), else the small
    padded BPE above, its special tokens at their real ids (below the real vocab size)."""
    import torch
    from transformers import AutoModelForImageTextToText

    cfg = real_width_config(preset, layers, vision_layers)
    family = family_of_model_type(cfg["model_type"])
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if tokenizer_dir:
        from transformers import AutoTokenizer

        AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(out)
        first = FIRST_SPECIAL_ID
    else:
        first, _ = _tokenizer(out)
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(hf_config(cfg), dtype=getattr(torch, dtype))
    _processor(family, out, out, cfg["vision_config"].get("spatial_merge_size", 2))
    set_generation_ids(model, out, [first + 2, first], first)
    model.save_pretrained(out)
    (out / "vptracker_tiny.json").write_text(json.dumps(
        {"family": family, "preset": preset, "layers": layers, "vision_depth": vision_layers, "seed": seed,
         "parameters": sum(p.numel() for p in model.parameters())}))
    return out
