"""Tiny random-weight InternVL2.5 and LLaVA-NeXT models, in transformers' native classes.

The two tiling families of OmniPT's Table 5, built offline so that the presets ``internvl2_5_4b`` and
``llava_next_8b`` run prepare -> training -> inference -> evaluation in tests:

* InternVL2.5 as ``InternVLForConditionalGeneration`` (config ``model_type: internvl``), which
  ms-swift loads as model type ``internvl`` with template ``internvl_hf``. Its processor is
  ``InternVLProcessor``: ``GotOcr2ImageProcessor`` cuts the image into square tiles plus a
  thumbnail (InternVL's ``dynamic_preprocess``), and each tile becomes ``<img>`` + ``image_seq_length``
  x ``<IMG_CONTEXT>`` + ``</img>`` (tile / patch squared, halved twice by the pixel shuffle). The
  language model is a Qwen2 one (InternVL2.5-4B's is Qwen2.5-3B), with ChatML turns.
* LLaVA-NeXT as ``LlavaNextForConditionalGeneration`` (``model_type: llava_next``), ms-swift's
  ``llama3_llava_next_hf``: a CLIP tower on ``tile``-pixel crops, an any-resolution grid chosen
  from ``image_grid_pinpoints`` (the real model's 336-pixel grids, scaled to the tiny tile), a Llama
  language model with Llama-3 header tokens and ``<image>``.

The tiles are small (56 and 28 pixels instead of 448 and 336) so that an image costs about as many
tokens as one of the tiny Qwen-VL models: 4 per tile, at most 5 tiles. The tokenizer is the small
BPE of :mod:`vptracker.tiny.model` with the family's special tokens right after it (a compact
vocabulary): swift's templates for both families read every token id from the tokenizer.
"""
from __future__ import annotations

import json
from pathlib import Path

from vptracker.models.families import get_family
from vptracker.tiny.tokens import bpe_tokenizer, set_generation_ids

PATCH = 14
INTERNVL_TILE = 56            # 4 x 4 patches -> 4 tokens after the 0.5 pixel shuffle
INTERNVL_MAX_TILES = 4        # + the thumbnail
LLAVA_TILE = 28               # 2 x 2 patches (+ CLIP's class token, dropped by the "default" strategy)
# llava-hf/llama3-llava-next-8b-hf's grids, in tiles of 336 pixels (configs/models/llava_next_8b.config.json)
LLAVA_GRIDS = ((1, 2), (2, 1), (2, 2), (3, 1), (1, 3))

# InternVL2.5's tokenizer: Qwen2.5's chat tokens, then its own image and grounding tokens
INTERNVL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<img>", "</img>", "<IMG_CONTEXT>", "<quad>",
                   "</quad>", *get_family("internvl2_5").box_tokens, "<video>")
LLAMA3_TOKENS = ("<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
                 "<image>", "<pad>")

_CONTENT = ("{% if message['content'] is string %}{{ message['content'] }}{% else %}"
            "{% for content in message['content'] %}{% if content['type'] == 'image' %}IMAGE"
            "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}{% endif %}")
INTERNVL_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n" + _CONTENT.replace("IMAGE", "<IMG_CONTEXT>\n")
    + "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
LLAMA3_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first %}<|begin_of_text|>{% endif %}"
    "<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n" + _CONTENT.replace("IMAGE", "<image>\n")
    + "<|eot_id|>{% endfor %}{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}")


def _save_tokenizer(fast, out: Path, chat_template: str):
    from transformers import AutoTokenizer

    fast.chat_template = chat_template
    fast.model_max_length = 32768
    fast.save_pretrained(out)
    return AutoTokenizer.from_pretrained(out)   # as the processor and swift will read it


def _text(vocab_size: int, hidden: int, layers: int) -> dict:
    return {"vocab_size": vocab_size, "hidden_size": hidden, "intermediate_size": hidden * 2,
            "num_hidden_layers": layers, "num_attention_heads": 4, "num_key_value_heads": 2}


def _internvl(out: Path, hidden: int, layers: int, vision_depth: int, extra_corpus, bpe_vocab: int):
    from transformers import GotOcr2ImageProcessor, InternVLConfig, InternVLProcessor, InternVLVideoProcessor

    fast, first, vocab_size = bpe_tokenizer(
        INTERNVL_TOKENS, None, extra_corpus, bpe_vocab, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        extra_special_tokens={"start_image_token": "<img>", "end_image_token": "</img>",
                              "context_image_token": "<IMG_CONTEXT>", "video_token": "<video>"})
    tok = _save_tokenizer(fast, out, INTERNVL_CHAT_TEMPLATE)
    tokens_per_tile = (INTERNVL_TILE // PATCH) ** 2 // 4
    config = InternVLConfig(
        vision_config={"hidden_size": hidden, "num_hidden_layers": vision_depth, "num_attention_heads": 4,
                       "intermediate_size": hidden * 2, "image_size": INTERNVL_TILE, "patch_size": PATCH},
        text_config={**_text(vocab_size, hidden, layers), "model_type": "qwen2", "max_position_embeddings": 32768,
                     "tie_word_embeddings": True, "bos_token_id": first, "eos_token_id": first + 2,
                     "pad_token_id": first},
        image_token_id=tok.context_image_token_id, image_seq_length=tokens_per_tile, downsample_ratio=0.5)
    size = {"height": INTERNVL_TILE, "width": INTERNVL_TILE}
    processor = InternVLProcessor(
        image_processor=GotOcr2ImageProcessor(size=size, crop_to_patches=True, min_patches=1,
                                              max_patches=INTERNVL_MAX_TILES),
        tokenizer=tok, video_processor=InternVLVideoProcessor(size=size), image_seq_length=tokens_per_tile,
        chat_template=INTERNVL_CHAT_TEMPLATE)
    return config, processor, [first + 2, first], first


def _llava_next(out: Path, hidden: int, layers: int, vision_depth: int, extra_corpus, bpe_vocab: int):
    from transformers import LlavaNextConfig, LlavaNextImageProcessor, LlavaNextProcessor

    fast, _, vocab_size = bpe_tokenizer(
        LLAMA3_TOKENS, None, extra_corpus, bpe_vocab, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>",
        pad_token="<pad>", extra_special_tokens={"image_token": "<image>"})
    tok = _save_tokenizer(fast, out, LLAMA3_CHAT_TEMPLATE)
    ids = {t: tok.convert_tokens_to_ids(t) for t in LLAMA3_TOKENS}
    grids = [[LLAVA_TILE * h, LLAVA_TILE * w] for h, w in LLAVA_GRIDS]
    config = LlavaNextConfig(
        vision_config={"model_type": "clip_vision_model", "hidden_size": hidden, "num_hidden_layers": vision_depth,
                       "num_attention_heads": 4, "intermediate_size": hidden * 2, "image_size": LLAVA_TILE,
                       "patch_size": PATCH, "projection_dim": hidden},
        text_config={**_text(vocab_size, hidden, layers), "model_type": "llama", "max_position_embeddings": 8192,
                     "rope_theta": 500000.0, "bos_token_id": ids["<|begin_of_text|>"],
                     "eos_token_id": ids["<|eot_id|>"], "pad_token_id": ids["<pad>"]},
        image_token_index=ids["<image>"], image_grid_pinpoints=grids, vision_feature_layer=-2,
        vision_feature_select_strategy="default", tie_word_embeddings=False)
    processor = LlavaNextProcessor(
        image_processor=LlavaNextImageProcessor(size={"shortest_edge": LLAVA_TILE}, image_grid_pinpoints=grids,
                                                crop_size={"height": LLAVA_TILE, "width": LLAVA_TILE}),
        tokenizer=tok, patch_size=PATCH, vision_feature_select_strategy="default", num_additional_image_tokens=1,
        chat_template=LLAMA3_CHAT_TEMPLATE)
    return config, processor, [ids["<|eot_id|>"], ids["<|end_of_text|>"]], ids["<pad>"]


BUILDERS = {"internvl2_5": _internvl, "llava_next": _llava_next}


def make_tiling_model(family: str, out: str | Path, hidden: int = 64, layers: int = 2, vision_depth: int = 2,
                      seed: int = 0, extra_corpus: tuple[str, ...] = (), bpe_vocab: int = 600) -> Path:
    """Writes a random-weight ``family`` model (``internvl2_5`` or ``llava_next``), tokenizer and processor."""
    import torch
    from transformers import AutoModelForImageTextToText

    if family not in BUILDERS:
        raise ValueError(f"no tiny tiling model for family {family!r}; expected one of {sorted(BUILDERS)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    config, processor, eos, pad = BUILDERS[family](out, hidden, layers, vision_depth, tuple(extra_corpus), bpe_vocab)
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(config, dtype=torch.float32)
    processor.save_pretrained(out)
    set_generation_ids(model, out, eos, pad)
    model.save_pretrained(out)
    (out / "vptracker_tiny.json").write_text(json.dumps(
        {"family": family, "hidden": hidden, "layers": layers, "vision_depth": vision_depth, "seed": seed,
         "compact_vocab": True, "vocab_size": config.text_config.vocab_size,
         "tile": INTERNVL_TILE if family == "internvl2_5" else LLAVA_TILE}))
    return out
