"""Caption scores (BenSMOT video and instance captions): BLEU-1..4, METEOR, ROUGE-L, CIDEr-D.

Two protocols exist and give different numbers, so every result names its protocol:

* ``coco``: the COCO caption toolkit (pycocoevalcap): PTB tokenizer (Java), corpus BLEU with
  the closest reference length, METEOR 1.5 (Java), ROUGE-L, CIDEr-D.
* ``smoter``: SMOTer's ``eval_vu.py`` (Nathan-Li123/SMOTer) as written, no tokenizer:
  ``corpus_bleu(gts, preds)`` with the raw strings (nltk then counts *character* n-grams; the
  default weights make that number our BLEU-4, and BLEU-1..3 are the same call with 1..3
  uniform weights); nltk ``meteor_score`` against the *first* reference only, after removing
  ``,`` and ``.`` and splitting at single spaces (needs nltk's WordNet corpus, see
  ``scripts/setup.sh``); pycocoevalcap ROUGE-L and CIDEr-D on the untokenised strings.

Inputs are plain dicts: ``refs = {id: [reference, ...]}``, ``preds = {id: prediction}``; an id
without a prediction scores against an empty string (the toolkits need one per id) and is
counted in ``missing_predictions``. Scores are fractions (0-1), as the BenSMOT table prints them.
"""
from __future__ import annotations

import contextlib
import io
import json
import shutil
import warnings
from pathlib import Path

CAPTION_FIELDS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D")
CAPTION_PROTOCOLS = ("coco", "smoter")


class CaptionInputError(ValueError):
    """Malformed refs/preds files or a scorer that cannot run here (names the file or the cause)."""


def load_caption_file(path: str | Path, many: bool) -> dict[str, list[str] | str]:
    """``refs.json`` (``{id: [str, ...]}``, ``many``) or ``preds.json`` (``{id: str}``)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CaptionInputError(f"{path}: file not found") from None
    except json.JSONDecodeError as e:
        raise CaptionInputError(f"{path}:{e.lineno}: expected JSON ({e.msg})") from None
    if not isinstance(data, dict):
        raise CaptionInputError(f"{path}: expected a JSON object {{id: ...}}, got {type(data).__name__}")
    out = {}
    for key, value in data.items():
        if many:
            if isinstance(value, str):
                value = [value]
            if not (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
                raise CaptionInputError(f"{path}: id {key!r}: expected a non-empty list of reference strings")
        elif not isinstance(value, str):
            raise CaptionInputError(f"{path}: id {key!r}: expected one prediction string")
        out[str(key)] = value
    return out


def _aligned(refs: dict, preds: dict) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    if not refs:
        raise CaptionInputError("no reference captions to score against")
    unknown = sorted(set(preds) - set(refs))
    if unknown:
        raise CaptionInputError(f"predictions for ids without references: {unknown[:5]}")
    gts = {k: list(v) if not isinstance(v, str) else [v] for k, v in refs.items()}
    res = {k: [preds.get(k, "")] for k in refs}
    return gts, res


def _require_java() -> None:
    if shutil.which("java") is None:
        raise CaptionInputError("the coco protocol needs Java for the PTB tokenizer and METEOR "
                                "(install a JRE, e.g. openjdk-17-jre-headless)")


def _per_caption(keys: list[str], columns: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    return {k: {field: float(values[i]) for field, values in columns.items()} for i, k in enumerate(keys)}


_meteor = None   # one METEOR process per Python process (see _meteor_score)


def _meteor_score(gts: dict, res: dict) -> tuple[float, list[float]]:
    """pycocoevalcap's METEOR on one Java process kept for the next call: it takes ~7.5 s to start
    (its paraphrase table) and each call's scores depend on that call's lines only (every SCORE line
    gives one caption's statistics, the EVAL line combines the statistics it is given)."""
    global _meteor
    from pycocoevalcap.meteor.meteor import Meteor

    if _meteor is None or _meteor.meteor_p.poll() is not None:
        _meteor = Meteor()
    try:
        return _meteor.compute_score(gts, res)
    except BaseException:
        # a process left mid-answer is not reused; its lock stays held, so it is killed here (its
        # __del__ would wait for that lock)
        broken, _meteor = _meteor, None
        broken.meteor_p.kill()
        broken.meteor_p.wait()
        if broken.lock.locked():
            broken.lock.release()
        raise


def coco_scores(refs: dict, preds: dict) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """pycocoevalcap exactly as the COCO caption evaluation runs it (SPICE left out: it downloads).

    Returns the corpus scores and each caption's own (the scorers' per-image lists)."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    _require_java()
    gts, res = _aligned(refs, preds)
    tokenizer = PTBTokenizer()
    with contextlib.redirect_stdout(io.StringIO()):  # the scorers print progress
        gts_tok = tokenizer.tokenize({k: [{"caption": c} for c in v] for k, v in gts.items()})
        res_tok = tokenizer.tokenize({k: [{"caption": c} for c in v] for k, v in res.items()})
        bleu, bleu_each = Bleu(4).compute_score(gts_tok, res_tok)
        meteor, meteor_each = _meteor_score(gts_tok, res_tok)
        rouge, rouge_each = Rouge().compute_score(gts_tok, res_tok)
        cider, cider_each = Cider().compute_score(gts_tok, res_tok)
    scores = {f"BLEU-{i + 1}": float(b) for i, b in enumerate(bleu)}
    scores.update({"METEOR": float(meteor), "ROUGE-L": float(rouge), "CIDEr-D": float(cider)})
    # every scorer walks the ids in the order of the (tokenised) references
    columns = {f"BLEU-{i + 1}": b for i, b in enumerate(bleu_each)}
    columns.update({"METEOR": meteor_each, "ROUGE-L": rouge_each, "CIDEr-D": list(cider_each)})
    return scores, _per_caption(list(gts_tok), columns)


def nltk_wordnet():
    import nltk

    try:
        nltk.data.find("corpora/wordnet")
    except LookupError:
        try:
            nltk.data.find("corpora/wordnet.zip")
        except LookupError:
            raise CaptionInputError(
                "the smoter protocol's METEOR is nltk's meteor_score, which needs WordNet 3.0: run "
                "`bash scripts/setup.sh` (it builds .venv/share/nltk_data/corpora/wordnet from Debian's "
                "wordnet-base and wordnet-sense-index), or set NLTK_DATA to a folder holding "
                "corpora/wordnet, or use --protocol coco") from None
    from nltk.corpus import wordnet

    return wordnet


def _smoter_meteor_tokens(text: str) -> list[str]:
    # eval_vu.py: caption.replace(',', '').replace('.', '').split(' ')
    return text.replace(",", "").replace(".", "").split(" ")


def smoter_scores(refs: dict, preds: dict, wordnet=None) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """SMOTer's ``eval_language``; ``wordnet`` replaces nltk's WordNet corpus for METEOR (tests).

    Per-caption BLEU is nltk's ``sentence_bleu`` on the same raw strings (a diagnostic: the
    protocol's BLEU is the corpus number, not their mean)."""
    from nltk.translate.bleu_score import corpus_bleu, sentence_bleu
    from nltk.translate.meteor_score import meteor_score
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    gts, res = _aligned(refs, preds)
    if wordnet is None:
        wordnet = nltk_wordnet()
    keys = list(gts)
    references = [gts[k] for k in keys]          # lists of raw strings
    hypotheses = [res[k][0] for k in keys]       # raw strings
    weights = {1: (1.0,), 2: (0.5, 0.5), 3: (1 / 3, 1 / 3, 1 / 3), 4: (0.25, 0.25, 0.25, 0.25)}
    scores: dict[str, float] = {}
    columns: dict[str, list[float]] = {}
    with contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nltk warns on every order without a match
        for n, w in weights.items():
            scores[f"BLEU-{n}"] = float(corpus_bleu(references, hypotheses, weights=w))
            columns[f"BLEU-{n}"] = [float(sentence_bleu(r, h, weights=w)) for r, h in zip(references, hypotheses)]
    columns["METEOR"] = [float(meteor_score([_smoter_meteor_tokens(r[0])], _smoter_meteor_tokens(h), wordnet=wordnet))
                         for r, h in zip(references, hypotheses)]
    scores["METEOR"] = sum(columns["METEOR"]) / len(keys)
    with contextlib.redirect_stdout(io.StringIO()):
        rouge, rouge_each = Rouge().compute_score(gts, res)
        cider, cider_each = Cider().compute_score(gts, res)
    scores.update({"ROUGE-L": float(rouge), "CIDEr-D": float(cider)})
    columns.update({"ROUGE-L": list(rouge_each), "CIDEr-D": list(cider_each)})
    return scores, _per_caption(keys, columns)


def evaluate_captions(refs: dict, preds: dict, protocol: str = "coco", wordnet=None) -> dict:
    """``{"protocol", "num_captions", "BLEU-1", ..., "CIDEr-D", "per_caption"}`` under the named
    protocol; ``per_caption`` holds each id's own scores."""
    if protocol == "coco":
        scores, per_caption = coco_scores(refs, preds)
    elif protocol == "smoter":
        scores, per_caption = smoter_scores(refs, preds, wordnet=wordnet)
    else:
        raise ValueError(f"unknown caption protocol {protocol!r}; expected one of {CAPTION_PROTOCOLS}")
    missing = sorted(set(refs) - set(preds))
    return {"protocol": protocol, "num_captions": len(refs), "missing_predictions": len(missing),
            "missing_ids": missing[:20], **scores, "per_caption": per_caption}


def format_caption_table(rows: dict[str, dict]) -> str:
    head = f"{'captions':<18} {'protocol':<8}" + "".join(f"{f:>9}" for f in CAPTION_FIELDS)
    lines = [head, "-" * len(head)]
    for name, s in rows.items():
        lines.append(f"{name:<18} {s['protocol']:<8}" + "".join(f"{s[f]:>9.4f}" for f in CAPTION_FIELDS))
    return "\n".join(lines)
