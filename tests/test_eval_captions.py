"""Caption scores against loops written from the toolkits' definitions, on real text (the CRTrack
referring descriptions), through the CLI for the Java-backed COCO protocol."""
from __future__ import annotations

import contextlib
import io
import json
import math
import shutil
from collections import Counter

import pytest

from vptracker.eval.captions import CaptionInputError, evaluate_captions, load_caption_file


@pytest.fixture(scope="module")
def corpus(shared_data):
    """refs: each description; preds: the neighbouring description (real, partly overlapping text)."""
    names = sorted(p.name.split("_", 1)[1] for p in (shared_data / "crmot_in_domain" / "gt").iterdir())
    names = list(dict.fromkeys(names))
    refs = {f"q{i}": [text] for i, text in enumerate(names)}
    preds = {f"q{i}": names[(i + 1) % len(names)] for i in range(len(names))}
    return refs, preds


def _ngrams(tokens, n):
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def _closest_ref_len(hyp_len, refs):
    return min((abs(len(r) - hyp_len), len(r)) for r in refs)[1]


def reference_corpus_bleu(hyps, refs, max_n=4):
    """coco-caption's Bleu: corpus counts, closest reference length, geometric mean."""
    correct, guess = [0] * max_n, [0] * max_n
    hyp_len = ref_len = 0
    for hyp, rs in zip(hyps, refs):
        hyp_len += len(hyp)
        ref_len += _closest_ref_len(len(hyp), rs)
        for n in range(1, max_n + 1):
            h = _ngrams(hyp, n)
            best = Counter()
            for r in rs:
                best |= _ngrams(r, n)
            correct[n - 1] += sum(min(c, best[g]) for g, c in h.items())
            guess[n - 1] += max(len(hyp) - n + 1, 0)
    bp = 1.0 if hyp_len >= ref_len else math.exp(1 - ref_len / hyp_len)
    out, log_sum = [], 0.0
    for n in range(max_n):
        log_sum += math.log(correct[n] / guess[n])
        out.append(bp * math.exp(log_sum / (n + 1)))
    return out


def reference_rouge_l(hyps, refs, beta=1.2):
    def lcs(a, b):
        table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
        for i in range(1, len(a) + 1):
            for j in range(1, len(b) + 1):
                table[i][j] = table[i - 1][j - 1] + 1 if a[i - 1] == b[j - 1] else max(table[i - 1][j], table[i][j - 1])
        return table[-1][-1]

    scores = []
    for hyp, rs in zip(hyps, refs):
        prec = max(lcs(r, hyp) / len(hyp) for r in rs)
        rec = max(lcs(r, hyp) / len(r) for r in rs)
        scores.append(0.0 if prec == 0 or rec == 0 else (1 + beta ** 2) * prec * rec / (rec + beta ** 2 * prec))
    return sum(scores) / len(scores)


def reference_sentence_bleu(hyp, refs, n_max):
    """nltk sentence_bleu without smoothing: 0 when an order has no match."""
    log_sum = 0.0
    for n in range(1, n_max + 1):
        h = _ngrams(hyp, n)
        best = Counter()
        for r in refs:
            best |= _ngrams(r, n)
        matches = sum(min(c, best[g]) for g, c in h.items())
        if matches == 0:
            return 0.0
        log_sum += math.log(matches / max(1, sum(h.values()))) / n_max
    r = _closest_ref_len(len(hyp), refs)
    bp = 1.0 if len(hyp) > r else math.exp(1 - r / len(hyp))
    return bp * math.exp(log_sum)


def _ptb(text):
    # what the PTB tokenizer leaves of these descriptions: lower case, no commas or periods
    return text.lower().replace(",", " ").replace(".", " ").split()


class _NoSynonyms:
    """Stands in for nltk's WordNet corpus (not downloadable here): METEOR's exact and stem stages only."""

    def synsets(self, *args, **kwargs):
        return []


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("java") is None, reason="the coco protocol needs Java")
def test_coco_protocol_through_cli_matches_reference_loops(corpus, tmp_path):
    from vptracker.cli import main

    refs, preds = corpus
    (tmp_path / "refs.json").write_text(json.dumps(refs))
    (tmp_path / "preds.json").write_text(json.dumps(preds))
    out = tmp_path / "out"
    assert main(["eval", "captions", "--protocol", "coco", "--refs", str(tmp_path / "refs.json"),
                 "--preds", str(tmp_path / "preds.json"), "--out", str(out)]) == 0
    s = json.loads((out / "summary.json").read_text())
    keys = sorted(refs)
    hyps = [_ptb(preds[k]) for k in keys]
    rs = [[_ptb(r) for r in refs[k]] for k in keys]
    for n, value in enumerate(reference_corpus_bleu(hyps, rs), start=1):
        assert s[f"BLEU-{n}"] == pytest.approx(value, rel=1e-6), n
    assert s["ROUGE-L"] == pytest.approx(reference_rouge_l(hyps, rs), rel=1e-9)
    assert 0.0 < s["METEOR"] < 1.0 and s["CIDEr-D"] > 0.0 and s["protocol"] == "coco"
    each = s["per_caption"]
    assert list(each) == list(refs)  # per-caption rows in the references' order
    assert all(0.0 <= e["METEOR"] <= 1.0 for e in each.values())  # the corpus METEOR pools statistics
    assert sum(e["CIDEr-D"] for e in each.values()) / len(each) == pytest.approx(s["CIDEr-D"])
    first = keys[0]
    assert each[first]["ROUGE-L"] == pytest.approx(reference_rouge_l([hyps[0]], [rs[0]]))
    assert (out / "per_caption.csv").read_text().splitlines()[0] == "id,BLEU-1,BLEU-2,BLEU-3,BLEU-4,METEOR,ROUGE-L,CIDEr-D"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("java") is None, reason="the coco protocol needs Java")
def test_meteor_process_is_kept_between_calls_and_scores_as_a_fresh_one(corpus):
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    from vptracker.eval import captions

    refs, preds = corpus
    half = dict(list(refs.items())[: len(refs) // 2])
    evaluate_captions(half, {k: preds[k] for k in half}, "coco")   # an earlier call on other captions
    kept = captions._meteor.meteor_p.pid
    again = evaluate_captions(refs, preds, "coco")
    assert captions._meteor.meteor_p.pid == kept   # one Java process served both calls
    tokenizer = PTBTokenizer()
    with contextlib.redirect_stdout(io.StringIO()):
        gts = tokenizer.tokenize({k: [{"caption": c} for c in v] for k, v in refs.items()})
        res = tokenizer.tokenize({k: [{"caption": preds[k]}] for k in refs})
    fresh = Meteor()   # what coco_scores did before: a process of its own for each call
    score, each = fresh.compute_score(gts, res)
    del fresh
    assert again["METEOR"] == score
    assert [again["per_caption"][k]["METEOR"] for k in gts] == each
    # a process that died is replaced, not written to
    captions._meteor.meteor_p.kill()
    captions._meteor.meteor_p.wait()
    assert evaluate_captions(refs, preds, "coco")["METEOR"] == score


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("java") is None, reason="the coco protocol needs Java")
def test_coco_perfect_predictions(corpus):
    refs, _ = corpus
    s = evaluate_captions(refs, {k: v[0] for k, v in refs.items()}, "coco")
    assert s["BLEU-4"] == pytest.approx(1.0, abs=1e-6) and s["ROUGE-L"] == pytest.approx(1.0)
    assert s["CIDEr-D"] == pytest.approx(10.0, rel=1e-6)  # CIDEr-D's x10 scale, no length penalty
    assert s["METEOR"] > 0.95


def test_smoter_protocol_hand_checked():
    """SMOTer's eval_vu.py on three pairs, values worked out by hand (and printed identically by
    eval_vu.eval_language itself, SMOTer b3bc475)."""
    refs = {"a": ["a cat"], "b": ["A girl dressed in white, dancing."], "c": ["the cat sat"]}
    preds = {"a": "a bat", "b": "a girl dressed in white dancing", "c": "the cat"}
    s = evaluate_captions(refs, preds, "smoter", wordnet=_NoSynonyms())
    each = s["per_caption"]
    # corpus_bleu on raw strings counts characters: "a bat" vs "a cat" has 4/5 unigrams, 2/4
    # bigrams and no trigram in common
    assert each["a"]["BLEU-1"] == pytest.approx(4 / 5) and each["a"]["BLEU-2"] == pytest.approx(math.sqrt(0.4))
    assert each["a"]["BLEU-4"] < 1e-100
    # METEOR: ',' and '.' removed, lower-cased by nltk: 6 of 6 words in one chunk
    assert each["b"]["METEOR"] == pytest.approx(1 - 0.5 * (1 / 6) ** 3)
    # one of two words, one chunk per match: fmean 0.5, penalty 0.5
    assert each["a"]["METEOR"] == pytest.approx(0.25)
    p, r = 1.0, 2 / 3  # "the cat" in "the cat sat": fmean 10PR/(R+9P), 1 chunk / 2 matches
    assert each["c"]["METEOR"] == pytest.approx(10 * p * r / (r + 9 * p) * (1 - 0.5 * 0.5 ** 3))
    # ROUGE-L on untokenised strings: case and punctuation kept, so only "girl dressed in" matches
    assert each["b"]["ROUGE-L"] == pytest.approx(0.5)
    assert each["c"]["ROUGE-L"] == pytest.approx((1 + 1.2 ** 2) * p * r / (r + 1.2 ** 2 * p))
    # the corpus numbers SMOTer prints for these three pairs
    assert s["BLEU-4"] == pytest.approx(0.7629569238878761, rel=1e-12)
    assert s["METEOR"] == pytest.approx(0.6314123031077054, rel=1e-12)
    assert s["ROUGE-L"] == pytest.approx(0.5907172995780591, rel=1e-12)
    assert s["CIDEr-D"] == pytest.approx(2.6916381967854335, rel=1e-12)
    assert s["missing_predictions"] == 0


def _setup_wordnet(tmp_path, monkeypatch):
    """Runs scripts/setup.sh's install_wordnet in tmp_path; an nltk reader of what it built."""
    import subprocess
    from pathlib import Path

    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    script = Path(__file__).resolve().parents[1] / "scripts" / "setup.sh"
    if not Path("/usr/share/wordnet/index.sense").is_file() and shutil.which("apt-get") is None:
        pytest.skip("neither the Debian WordNet packages nor apt-get are here")
    cmd = f"source <(sed -n '/^install_wordnet() {{/,/^}}/p' '{script}') && install_wordnet"
    run = subprocess.run(["bash", "-c", cmd], check=False, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    folder = tmp_path / ".venv" / "share" / "nltk_data" / "corpora" / "wordnet"
    if run.returncode != 0:
        pytest.skip(f"WordNet could not be installed here: {run.stderr.strip()[-200:]}")
    assert len((folder / "lexnames").read_text().splitlines()) == 45
    assert not any(p.is_symlink() for p in folder.iterdir())  # copies: nltk refuses outside links
    # nltk reads only below its data path (setup.sh's folder is on it: <sys.prefix>/share/nltk_data)
    monkeypatch.setattr(nltk.data, "path", [*nltk.data.path, str(folder.parents[1])])
    return WordNetCorpusReader(str(folder), None)


@pytest.mark.slow
def test_setup_wordnet_and_smoter_equal_eval_vu_on_real_text(corpus, tmp_path, monkeypatch):
    wordnet = _setup_wordnet(tmp_path, monkeypatch)
    assert wordnet.get_version() == "3.0" and wordnet.synset("dog.n.01").lexname() == "noun.animal"
    refs, preds = corpus
    s = evaluate_captions(refs, preds, "smoter", wordnet=wordnet)
    # printed by SMOTer's eval_vu.eval_language (b3bc475) on the same 30 pairs, nltk WordNet 3.0
    assert s["BLEU-4"] == pytest.approx(0.6904377919884793, rel=1e-12)
    assert s["METEOR"] == pytest.approx(0.714609231313019, rel=1e-12)
    assert s["ROUGE-L"] == pytest.approx(0.6969910562568321, rel=1e-12)
    assert s["CIDEr-D"] == pytest.approx(3.0149282686787306, rel=1e-12)


def test_smoter_meteor_without_wordnet_says_how_to_fix(corpus):
    import nltk

    try:
        nltk.data.find("corpora/wordnet")
        pytest.skip("WordNet is installed here")
    except LookupError:
        pass
    refs, preds = corpus
    with pytest.raises(CaptionInputError, match="wordnet"):
        evaluate_captions(refs, preds, "smoter")


def test_caption_files_errors_name_the_file(tmp_path):
    bad = tmp_path / "refs.json"
    bad.write_text('{"a": ["x"],\n "b": }')
    with pytest.raises(CaptionInputError, match=r"refs.json:2"):
        load_caption_file(bad, many=True)
    (tmp_path / "preds.json").write_text(json.dumps({"a": ["not", "a", "string"]}))
    with pytest.raises(CaptionInputError, match="preds.json.*'a'"):
        load_caption_file(tmp_path / "preds.json", many=False)
    with pytest.raises(CaptionInputError, match="without references"):
        evaluate_captions({"a": ["x"]}, {"b": "y"}, "smoter", wordnet=_NoSynonyms())
    with pytest.raises(ValueError, match="unknown caption protocol"):
        evaluate_captions({"a": ["x"]}, {"a": "x"}, "spice")
