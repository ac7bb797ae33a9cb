"""Tokenizer pieces shared by every tiny model family (:mod:`vptracker.tiny.model` builds the Qwen-VL
ones, :mod:`vptracker.tiny.tiling` InternVL2.5 and LLaVA-NeXT): the small byte-level BPE and the
generation ids that keep a random model from sampling a media placeholder."""
from __future__ import annotations

import json
from pathlib import Path

# Text the BPE learns its merges from: digits, punctuation and the words of our prompts and answers.
_CORPUS = [
    "<bbox>12,34,56,78</bbox><None> 0123456789 ,.:;()[]{}\"' visible yes no bbox json",
    "You are a visual object tracker. Track the object located at the first image.",
    "There are some images of a video. Describe this video. The trajectory of the first people are",
    "Please return the answer in JSON format x_min y_min x_max y_max rectangular bounding box red",
    "a man woman person car dog walking running wearing black white shirt trousers shoes",
]


def bpe_tokenizer(special_tokens: tuple[str, ...], first_special: int | None = None,
                  extra_corpus: tuple[str, ...] = (), bpe_vocab: int = 600, **roles):
    """A small byte-level BPE trained here, then ``special_tokens`` from id ``first_special`` on (None:
    right after the BPE's tokens), the gap padded with filler entries no merge can produce.

    ``roles`` name the tokenizer's special tokens (``eos_token="<|im_end|>"``, ...); a dict in
    ``extra_special_tokens`` names model-specific ones (InternVL's ``context_image_token``).
    Returns ``(fast tokenizer, first special id, vocabulary size)``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=bpe_vocab, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    bpe.train_from_iterator((_CORPUS + list(extra_corpus)) * 20, trainer=trainer)
    state = json.loads(bpe.to_str())
    vocab = state["model"]["vocab"]
    first = len(vocab) if first_special is None else first_special
    for i in range(len(vocab), first):
        vocab[f"<|filler_{i}|>"] = i
    state["added_tokens"] = [
        {"id": first + k, "content": tok, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True}
        for k, tok in enumerate(special_tokens)
    ]
    roles = {"bos_token": None, "unk_token": None, **roles}
    fast = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(state)), **roles)
    return fast, first, -(-(first + len(special_tokens)) // 64) * 64   # rows: the next multiple of 64


# Tokens a chat template reads as media placeholders, in every family we build (Qwen-VL, InternVL2.5,
# LLaVA-NeXT).
MEDIA_TOKENS = ("<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
                "<img>", "</img>", "<IMG_CONTEXT>", "<video>", "<image>")


def set_generation_ids(model, out: Path, eos: list[int], pad: int) -> None:
    """End and pad ids; the tokenizer's media placeholders (in ``out``) never sampled.

    A random-weight model samples any id, and swift's GRPO re-encodes the completions it sampled:
    one ``<|image_pad|>`` there is one image token more than the images ("Image features and image
    tokens do not match, tokens: 513, features: 512" at the first step of the 128 px MOT demo).
    Box and reference tokens stay: the ``qwen`` grammar answers in them. Our inference engine sets
    this list aside (:mod:`vptracker.infer.engine`), so only sampling in training sees it.
    """
    from transformers import AutoTokenizer

    added = AutoTokenizer.from_pretrained(out).added_tokens_decoder
    model.generation_config.eos_token_id = eos
    model.generation_config.pad_token_id = pad
    model.generation_config.suppress_tokens = sorted(i for i, t in added.items() if t.content in MEDIA_TOKENS)
