#!/usr/bin/env bash
# One-command setup: .venv, torch first, then the pinned stack under a constraints file.
# Safe to run twice. GPU users: install their CUDA torch, then `pip install -e .[gpu]`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
VPY=.venv/bin/python
$VPY -m pip install -q --no-warn-script-location --upgrade pip
if ! $VPY -c "import torch,sys; sys.exit(0 if torch.__version__.startswith('2.13.0') else 1)" 2>/dev/null; then
  $VPY -m pip install -q --no-warn-script-location "torch==2.13.0"
fi
$VPY -m pip install -q --no-warn-script-location -c scripts/constraints.txt -e ".[dev]"
# The registry torchvision is CUDA-linked; on a CPU-only torch its ops must be declared before import.
$VPY -m vptracker.models.torchvision_hook install
# The real Qwen tokenizer (BPE ranks from the dashscope wheel, sha256 checked) where token budgets look for it
# (vptracker/models/qwen_tokenizer.py); without it they are estimated, with a message.
if [ ! -f .venv/share/vptracker/qwen_tokenizer/tokenizer.json ]; then
  $VPY -m vptracker.models.qwen_tokenizer --out .venv/share/vptracker/qwen_tokenizer \
    || echo "setup: could not build the Qwen tokenizer (needs the package registry once); token counts will be estimated."
fi
if ! command -v java >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null) \
      || echo "setup: could not install Java; METEOR and the PTB tokenizer (caption metrics) need Java."
  else
    echo "setup: Java not found and cannot be installed here; METEOR and the PTB tokenizer (caption metrics) need Java."
  fi
fi
# --- WordNet 3.0 for nltk's METEOR (the smoter caption protocol); the coco protocol needs Java only.
# Debian's wordnet-base and wordnet-sense-index ship WordNet 3.0's dict files. nltk also reads a
# `lexnames` file that they do not ship; its 45 lines (number, name, category 1 noun .. 4 adverb)
# are the table of the lexnames(5WN) man page in wordnet-base. nltk refuses a symlinked corpus
# outside its data path, so the files are copied into .venv/share/nltk_data (nltk searches
# <sys.prefix>/share/nltk_data). Without root, the two .deb files are fetched with `apt-get download`.
install_wordnet() {
  local dst=.venv/share/nltk_data/corpora/wordnet src=/usr/share/wordnet
  local man=/usr/share/man/man5/lexnames.5WN.gz tmp
  if [ ! -f "$src/index.sense" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      wordnet-base wordnet-sense-index >/dev/null) || true
  fi
  tmp=$(mktemp -d)
  if { [ ! -f "$src/index.sense" ] || [ ! -f "$man" ]; } && command -v apt-get >/dev/null 2>&1; then
    # not installable as root, or the image drops man pages: unpack the packages themselves
    (cd "$tmp" && apt-get download wordnet-base wordnet-sense-index >/dev/null 2>&1 \
      && for deb in ./*.deb; do dpkg-deb -x "$deb" root; done) || true
    [ -f "$src/index.sense" ] || src=$tmp/root/usr/share/wordnet
    [ -f "$man" ] || man=$tmp/root/usr/share/man/man5/lexnames.5WN.gz
  fi
  if [ ! -f "$src/data.noun" ] || [ ! -f "$src/index.sense" ] || [ ! -f "$man" ]; then
    rm -rf "$tmp"
    return 1
  fi
  mkdir -p "$tmp/wordnet"
  for f in data.noun data.verb data.adj data.adv index.noun index.verb index.adj index.adv \
           noun.exc verb.exc adj.exc adv.exc index.sense cntlist.rev; do
    cp "$src/$f" "$tmp/wordnet/" || { rm -rf "$tmp"; return 1; }
  done
  # table rows of the man page: "NN<TAB>name<TAB>contents" -> "NN<TAB>name<TAB>category"
  gzip -dc "$man" | awk -F'\t' '/^[0-9][0-9]\t/ { name = $2; gsub(/ /, "", name); split(name, part, ".");
      cat = part[1] == "noun" ? 1 : part[1] == "verb" ? 2 : part[1] == "adj" ? 3 : 4;
      printf "%s\t%s\t%d\n", $1, name, cat }' > "$tmp/wordnet/lexnames"
  if [ "$(wc -l < "$tmp/wordnet/lexnames")" != 45 ]; then
    rm -rf "$tmp"
    return 1
  fi
  rm -rf "$dst"
  mkdir -p "$(dirname "$dst")"
  cp -r "$tmp/wordnet" "$dst"
  rm -rf "$tmp"
}
if ! $VPY -c "import nltk; nltk.data.find('corpora/wordnet')" >/dev/null 2>&1; then
  install_wordnet || true
  if $VPY -c "from nltk.corpus import wordnet as wn; from nltk.translate.meteor_score import meteor_score as m; \
assert wn.get_version() == '3.0' and m([['a', 'dog']], ['a', 'hound']) > 0.3" >/dev/null 2>&1; then
    echo "setup: WordNet 3.0 installed for nltk in .venv/share/nltk_data (smoter caption protocol)"
  else
    echo "setup: could not install WordNet 3.0 (needs the Debian packages wordnet-base and wordnet-sense-index:" \
         "run as root or with apt-get access, or put an NLTK corpora/wordnet folder under NLTK_DATA)." \
         "\`vptracker eval captions --protocol smoter\` will stop until it is there; --protocol coco works without it."
  fi
fi
$VPY -c "import vptracker, swift, transformers, torchvision, trackeval; print('vptracker setup ok: torch', __import__('torch').__version__, 'transformers', transformers.__version__)"
