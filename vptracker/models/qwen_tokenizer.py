"""The real Qwen tokenizer, offline: Qwen's BPE ranks from the ``dashscope`` wheel, as a ``tokenizer.json``.

The PyPI package ``dashscope`` (Apache-2.0) ships ``qwen.tiktoken``: the byte-level BPE ranks
(151,643 tokens) that Qwen2, Qwen2.5 and Qwen3-VL reuse. :func:`fetch_ranks` downloads that one
wheel (``--no-deps``), checks its sha256 and extracts the file; :func:`write_tokenizer` turns the
ranks into a Hugging Face tokenizer: each token's bytes in the byte-level alphabet, one merge per
way a token splits into two lower-ranked tokens (ordered by the merged token's rank, which is the
order tiktoken merges in), Qwen2's pre-tokenizer regex, NFC, and the special tokens from 151643.

``python -m vptracker.models.qwen_tokenizer --out DIR`` writes it anywhere; ``scripts/setup.sh`` writes it
to :func:`default_dir` (``<venv>/share/vptracker/qwen_tokenizer``) where the registry is reachable,
and :func:`find_tokenizer` is where token-budget code and tests look for it (``$VPTRACKER_QWEN_TOKENIZER``
first).
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

# The Qwen2/2.5/3-VL special tokens, at their real ids from 151643 on.
QWEN_SPECIAL_TOKENS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>",
    "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
    "<|repo_name|>", "<|file_sep|>", "<tool_response>", "</tool_response>", "<think>", "</think>",
)
FIRST_SPECIAL_ID = 151643
# Qwen-VL's chat template: the tokenizers written here and the tiny models' use it.
CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}{% if content['type'] == 'image' or 'image' in content %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] == 'video' or 'video' in content %}"
    "<|vision_start|><|video_pad|><|vision_end|>{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

ENV = "VPTRACKER_QWEN_TOKENIZER"
WHEEL = "dashscope==2.0.2"
WHEEL_SHA256 = "0602d1800f7433bdb7953560986eaf5146454ed3988636c0a91963ba24e74258"
RANKS_IN_WHEEL = "dashscope/resources/qwen.tiktoken"
# Qwen2's pre-tokenizer: contractions, letters (with one leading non-letter), single digits,
# punctuation runs, newlines, spaces.
PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|"
           r"\s+(?!\S)|\s+")


def save_qwen_tokenizer(fast, out: Path) -> None:
    """Saves a fast tokenizer as a Qwen one: the chat template, and the class name swift's loaders expect."""
    fast.chat_template = CHAT_TEMPLATE
    fast.model_max_length = 32768
    fast.save_pretrained(out)
    cfg_path = Path(out) / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["tokenizer_class"] = "Qwen2Tokenizer"
    cfg_path.write_text(json.dumps(cfg, indent=2))


def default_dir() -> Path:
    """Where setup writes the tokenizer: inside the environment, next to nltk's WordNet copy."""
    return Path(sys.prefix) / "share" / "vptracker" / "qwen_tokenizer"


def find_tokenizer() -> Path | None:
    """The real Qwen tokenizer's folder: ``$VPTRACKER_QWEN_TOKENIZER`` if set, else :func:`default_dir`;
    None when neither holds a ``tokenizer.json`` (a set variable naming an empty folder is an error)."""
    if os.environ.get(ENV):
        folder = Path(os.environ[ENV])
        if not (folder / "tokenizer.json").is_file():
            raise FileNotFoundError(f"${ENV}={folder}: no tokenizer.json there (write one with "
                                    f"`python -m vptracker.models.qwen_tokenizer --out {folder}`)")
        return folder
    folder = default_dir()
    return folder if (folder / "tokenizer.json").is_file() else None


def fetch_ranks(out_dir: str | Path) -> Path:
    """Downloads the dashscope wheel, checks its sha256, writes ``qwen.tiktoken`` into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        result = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                                 WHEEL, "-d", tmp], capture_output=True, text=True, check=False)
        wheels = list(Path(tmp).glob("dashscope-*.whl"))
        if result.returncode != 0 or not wheels:
            raise RuntimeError(f"pip download {WHEEL} failed: {result.stderr.strip()[-500:]}")
        digest = hashlib.sha256(wheels[0].read_bytes()).hexdigest()
        if digest != WHEEL_SHA256:
            raise RuntimeError(f"{wheels[0].name}: sha256 {digest}, expected {WHEEL_SHA256}")
        with zipfile.ZipFile(wheels[0]) as wheel:
            (out_dir / "qwen.tiktoken").write_bytes(wheel.read(RANKS_IN_WHEEL))
    return out_dir / "qwen.tiktoken"


def read_ranks(path: str | Path) -> dict[bytes, int]:
    ranks = {}
    for lineno, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line:
            continue
        try:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
        except ValueError as err:
            raise ValueError(f"{path}:{lineno}: expected '<base64 token> <rank>' ({err})") from None
    return ranks


def _byte_alphabet() -> dict[int, str]:
    """GPT-2's byte-to-character map: printable bytes map to themselves, the rest to code points 256+."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            table[byte] = chr(byte)
        else:
            table[byte] = chr(256 + extra)
            extra += 1
    return table


def write_tokenizer(ranks_path: str | Path, out_dir: str | Path) -> Path:
    """Writes tokenizer.json / tokenizer_config.json for the ranks, special tokens from 151643 on."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    ranks = read_ranks(ranks_path)
    if len(ranks) != FIRST_SPECIAL_ID:
        raise ValueError(f"{ranks_path}: {len(ranks)} ranks, expected Qwen's {FIRST_SPECIAL_ID}")
    alphabet = _byte_alphabet()
    text = {token: "".join(alphabet[b] for b in token) for token in ranks}
    merges = []
    for token, rank in ranks.items():
        for cut in range(1, len(token)):
            left, right = token[:cut], token[cut:]
            if ranks.get(left, rank) < rank and ranks.get(right, rank) < rank:
                merges.append((rank, ranks[left], ranks[right], text[left], text[right]))
    merges.sort()
    bpe = models.BPE(vocab={text[t]: r for t, r in ranks.items()}, merges=[(a, b) for *_, a, b in merges],
                     ignore_merges=False)
    tokenizer = Tokenizer(bpe)
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in QWEN_SPECIAL_TOKENS])
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   bos_token=None, unk_token=None)
    for offset, token in enumerate(QWEN_SPECIAL_TOKENS):  # swift's templates hard-code these ids
        if fast.convert_tokens_to_ids(token) != FIRST_SPECIAL_ID + offset:
            raise ValueError(f"special token {token} did not land on id {FIRST_SPECIAL_ID + offset}")
    out_dir = Path(out_dir)
    save_qwen_tokenizer(fast, out_dir)
    return out_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(default_dir()),
                        help="folder for qwen.tiktoken and the tokenizer files (default: %(default)s, where "
                             "token budgets look for it)")
    parser.add_argument("--ranks", help="an existing qwen.tiktoken (default: fetch it from the dashscope wheel)")
    args = parser.parse_args(argv)
    ranks = Path(args.ranks) if args.ranks else fetch_ranks(args.out)
    write_tokenizer(ranks, args.out)
    print(f"Qwen tokenizer written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
