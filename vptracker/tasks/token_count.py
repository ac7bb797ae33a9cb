"""Text-token counters for the length budget (:mod:`vptracker.tasks.lengths`): exact, and cheap
enough to count every text of a million rows.

A counter is a :class:`TextCounter`: ``count(text)`` or ``count.many(texts)`` (one tokenizer call
for every piece not seen before). Rows repeat most of their text (a task's prompts, the wording
around boxes), so counts are cached, and for the Qwen2 BPE and the estimate the cache is keyed on
small pieces that recur across rows, whose counts add up to the text's:

* every ASCII digit is a token of its own (Qwen2's split pattern isolates each ``\\p{N}`` and every
  digit is in the byte-level vocabulary; the estimate counts one per digit), whatever its value:
  digits are keyed as ``0``, so ``<bbox>123,45,67,890</bbox>`` is keyed as ``<bbox>000,00,00,000</bbox>``;
* a text splits before a space that follows a printable ASCII character: no split piece crosses
  that point (letters, digits and punctuation runs stop at a space, and the only look-ahead,
  ``\\s+(?!\\S)``, stays inside whitespace), and the piece after it starts there either way;
* ``><`` between letters or digits (``</bbox><bbox>``, ``<None><bbox>``) is a piece of its own, so
  a trajectory splits into its boxes and counts one ``><`` for each cut; except in a text holding
  an added token that such a cut could break (``<think>``: added tokens are cut out first).

These hold only for Qwen2's pattern (checked in the tokenizer's own ``tokenizer.json``, with added
tokens free of digits and spaces) and for the estimate; any other tokenizer is cached on whole
texts. ``tests/test_token_count.py`` checks the sums against the tokenizer on random text.
"""
from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Iterable
from functools import cache, lru_cache
from pathlib import Path

from vptracker.models import qwen_tokenizer
from vptracker.models.qwen_tokenizer import ENV, PATTERN, find_tokenizer

log = logging.getLogger("vptracker.tasks.lengths")

ESTIMATE = "estimate"
# Families whose language model reads Qwen2's byte-level BPE (151,643 ranks + the special tokens)
QWEN_BPE_FAMILIES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")
TOKEN_PIECE = re.compile(r"\d|[A-Za-z]+|[^\sA-Za-z\d]")
DIGITS_AS_ZERO = str.maketrans("123456789", "000000000")
# the literal comes first in both patterns so that the regex engine searches for it, not for the look-behind
BEFORE_SPACE = re.compile(r" (?<=[!-~] )")
BETWEEN_BOXES = re.compile(r"><(?=[A-Za-z0-9])(?<=[A-Za-z0-9]><)")
CACHE_LIMIT = 50_000   # keys kept before the cache starts again (memory stays flat in the row count)


def estimate_tokens(text: str) -> int:
    """One token per digit, per word and per punctuation mark (see :mod:`vptracker.tasks.lengths`)."""
    return len(TOKEN_PIECE.findall(text))


class TextCounter:
    """Counts text tokens: ``count(text)``, ``count.many(texts)``.

    ``count_many`` counts a list of texts the tokenizer's way; ``pieces`` (only for counts that are
    sums over the pieces, with one token per digit, see the module docstring) keys the cache on
    pieces instead of whole texts; texts that match ``uncut`` are not cut at ``><``.
    """

    def __init__(self, count_many: Callable[[list[str]], list[int]], pieces: bool,
                 uncut: re.Pattern | None = None):
        self._count_many = count_many
        self.pieces = pieces
        self._uncut = uncut
        self._cache: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        return self.many((text,))[0]

    def many(self, texts: Iterable[str]) -> list[int]:
        known = self._cache
        if len(known) > CACHE_LIMIT:
            known.clear()
        keyed = [self._pieces(text) for text in texts] if self.pieces else [(0, (text,)) for text in texts]
        new = list({key: None for _, keys in keyed for key in keys if key not in known})
        if new:
            known.update(zip(new, self._count_many(new)))
        return [sum(map(known.__getitem__, keys)) + cuts * known["><"] for cuts, keys in keyed]

    def _pieces(self, text: str) -> tuple[int, list[str]]:
        """The ``><`` cuts and the pieces of ``text`` (see the module docstring)."""
        if "><" not in self._cache:
            self._cache["><"] = self._count_many(["><"])[0]
        text = text.translate(DIGITS_AS_ZERO)
        if "><" not in text:   # a prompt or a short answer: the whole text recurs as it is
            return 0, [text]
        first, *rest = BEFORE_SPACE.split(text)
        parts = [first, *(" " + part for part in rest)]
        if self._uncut is not None and self._uncut.search(text):
            return 0, parts
        pieces, cuts = [], 0
        for part in parts:
            if "><" in part:
                boxes = BETWEEN_BOXES.split(part)
                cuts += len(boxes) - 1
                pieces += boxes
            else:
                pieces.append(part)
        return cuts, pieces


def text_counter(family: str, tokenizer: str | None = None) -> tuple[TextCounter, str]:
    """A text-token counter and what it counts with (for cards and messages).

    ``tokenizer``: a tokenizer folder, ``"estimate"``, or None: the real Qwen tokenizer for the
    Qwen-VL families when setup wrote it, else the estimate (logged once per family).
    """
    return _resolve(family, tokenizer, os.environ.get(ENV))


@cache
def _resolve(family: str, tokenizer: str | None, env: str | None) -> tuple[TextCounter, str]:
    """:func:`text_counter`, once per family, setting and ``$VPTRACKER_QWEN_TOKENIZER`` value."""
    if tokenizer == ESTIMATE:
        return _estimate(), ESTIMATE
    if tokenizer:
        return _count_with(str(tokenizer)), str(tokenizer)
    if family in QWEN_BPE_FAMILIES:
        found = find_tokenizer()
        if found is not None:
            return _count_with(str(found)), f"qwen ({found})"
    _fallback_note(family)
    return _estimate(), ESTIMATE


@cache
def _estimate() -> TextCounter:
    return TextCounter(lambda texts: [estimate_tokens(t) for t in texts], pieces=True)


@cache
def _fallback_note(family: str) -> None:
    if family in QWEN_BPE_FAMILIES:
        log.warning("token counts for %s are estimated (errs high by about 10%% on boxes): the real Qwen tokenizer "
                    "is not at %s; write it with `python -m vptracker.models.qwen_tokenizer` (scripts/setup.sh does)",
                    family, qwen_tokenizer.default_dir())   # an attribute: tests replace it
    else:
        log.warning("token counts for %s are estimated: set length_budget.tokenizer to the model's folder to count "
                    "them exactly", family)


@lru_cache(maxsize=4)
def _count_with(path: str) -> TextCounter:
    direct = _direct_spec(path)
    if direct is not None:
        # the Rust tokenizer of the folder's tokenizer.json, without transformers: the same ids as the
        # AutoTokenizer (tests/test_token_count.py), 0.5 s to load instead of ~5 s, which every
        # `vptracker prepare` and `train` process paid
        from tokenizers import Tokenizer

        text, spec = direct
        backend = Tokenizer.from_str(text)

        def count_many(texts: list[str]) -> list[int]:
            return [len(e.ids) for e in backend.encode_batch(texts, add_special_tokens=False)]
        return TextCounter(count_many, pieces=_qwen_pieces(spec, count_many), uncut=_box_cut_breaks(spec))
    tokenizer = _tokenizer(path)

    def count_many(texts: list[str]) -> list[int]:
        return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    spec = _spec(tokenizer)   # a 151k-token vocabulary's JSON: about a second to write and read, once
    return TextCounter(count_many, pieces=_qwen_pieces(spec, count_many), uncut=_box_cut_breaks(spec))


def _direct_spec(path: str) -> tuple[str, dict] | None:
    """The folder's ``tokenizer.json`` (its text and its parse) when its Rust tokenizer alone counts as transformers would, else
    None. Transformers' ``Qwen2Tokenizer`` does not take the file as it is: it rebuilds the normalizer
    (NFC), the pre-tokenizer (Qwen2's pattern, then byte level) and the BPE from the file's vocabulary
    and merges, and adds the special tokens its config names. So the file must already hold all of
    that (the real Qwen tokenizers and the one setup writes do; the tiny models' do not)."""
    folder = Path(path)
    try:
        config = json.loads((folder / "tokenizer_config.json").read_text())
        text = (folder / "tokenizer.json").read_text()
        spec = json.loads(text)
    except (OSError, ValueError):
        return None
    if config.get("tokenizer_class") not in ("Qwen2Tokenizer", "Qwen2TokenizerFast"):
        return None
    model = spec.get("model") or {}
    expected = [{"type": "Split", "pattern": {"Regex": PATTERN}, "behavior": "Isolated", "invert": False},
                {"type": "ByteLevel", "add_prefix_space": bool(config.get("add_prefix_space")),
                 "use_regex": False}]
    splits = (spec.get("pre_tokenizer") or {}).get("pretokenizers") or []
    same_split = len(splits) == 2 and all({k: s.get(k) for k in e} == e for s, e in zip(splits, expected))
    if not (same_split and spec.get("normalizer") == {"type": "NFC"} and model.get("type") == "BPE"
            and not model.get("byte_fallback") and model.get("dropout") is None and not model.get("ignore_merges")):
        return None
    named = {t.get("content") for t in (config.get("added_tokens_decoder") or {}).values()}
    named |= {_content(config.get(k, "<|endoftext|>" if k == "unk_token" else None))
              for k in ("bos_token", "eos_token", "pad_token", "unk_token")}
    named |= {_content(t) for k in ("additional_special_tokens", "extra_special_tokens") for t in config.get(k) or ()}
    return (text, spec) if named - {None} <= set(_added(spec)) else None


def _content(token) -> str | None:
    return token.get("content") if isinstance(token, dict) else token


def _qwen_pieces(spec: dict, count_many: Callable[[list[str]], list[int]]) -> bool:
    """Whether a tokenizer splits text with Qwen2's pattern (so :class:`TextCounter` may key on pieces):
    its ``tokenizer.json`` pattern, a byte-level BPE, added tokens without digits or spaces
    (they are cut out before the pattern applies) and every digit a single token."""
    splits = (spec.get("pre_tokenizer") or {}).get("pretokenizers") or []
    patterns = [(s.get("pattern") or {}).get("Regex") for s in splits if s.get("type") == "Split"]
    return (patterns == [PATTERN] and (spec.get("model") or {}).get("type") == "BPE"
            and (spec.get("normalizer") or {}).get("type") in (None, "NFC")
            and not any(re.search(r"[0-9 ]", t) for t in _added(spec))
            and count_many(list("0123456789")) == [1] * 10)


def _box_cut_breaks(spec: dict) -> re.Pattern | None:
    """The added tokens that a cut at ``><`` between letters or digits could split (``<think>``:
    ``<`` or ``>`` beside a letter or digit, or ``><`` inside), as one pattern; None when none could."""
    risky = [t for t in _added(spec) if re.search(r"^<[A-Za-z0-9]|[A-Za-z0-9]>$|><", t)]
    return re.compile("|".join(re.escape(t) for t in risky)) if risky else None


def _spec(tokenizer) -> dict:
    """The tokenizer's ``tokenizer.json`` (empty for a tokenizer without a Rust backend)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    return json.loads(backend.to_str()) if backend is not None else {}


def _added(spec: dict) -> list[str]:
    return [t["content"] for t in spec.get("added_tokens") or []]


@lru_cache(maxsize=2)
def _tokenizer(path: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)
