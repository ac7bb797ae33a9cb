"""The task contract: what training rows and the tracking loop must agree on, resolved once.

A builder's options decide how its answers are written: the answer grammar, the box scale of the
model family (:mod:`vptracker.models.families`), the pixel cap the images were resized under, the frames a
sample shows, the special tokens its prompts use and the visual-prompt outline. ``Task.contract()``
resolves them into one :class:`TaskContract`; ``vptracker prepare`` writes it into ``card.json``
(``contracts``: tracking task -> contract), the train runner copies it into the stage's output
folders as ``vptracker_contract.json`` (next to swift's ``args.json``), and ``vptracker infer``
reads it back from the model folder (or its parent), so the tracking options are never retyped:
a model without the file (a released or base model) keeps the inference defaults.

Two kinds of fields. *Binding* fields fix how the checkpoint reads and writes boxes and what its
prompts look like (answer grammar, box scale, pixel caps, special tokens, the visual-prompt outline):
an inference option that disagrees with one is an error naming both values and the file. *Chosen*
fields (:data:`CHOSEN`: frames per sample, caption frames) are what a run may pick: the contract
keeps every value the checkpoint was trained with (a stage trains DanceTrack MOT and BenSMOT tracking
under one task; a chain's final weights carry every stage's values, see :func:`merge_contracts`), and
a run with another value goes ahead with one log line naming the trained values.
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np

from vptracker.boxes import CoordMap
from vptracker.config import ConfigError
from vptracker.models.families import coord_map as family_coord_map
from vptracker.models.families import get_family

CONTRACT_FILE = "vptracker_contract.json"
FORMAT = 1
logger = logging.getLogger(__name__)

# contract field -> the inference option (vptracker.infer.common.TaskOptions) it sets
OPTION_OF = {"family": "family", "box_scale": "box_scale", "min_pixels": "min_pixels", "max_pixels": "max_pixels",
             "frames_per_sample": "frames_per_sample", "caption_frames": "caption_frames",
             "vp_color": "vp_color", "line_width": "line_width", "template_scale": "template_scale", "visual_prompt": "visual_prompt"}
PROMPT_GRAMMARS = ("bbox", "qwen")
# fields a run may choose (all trained values kept); every other field binds the checkpoint
CHOSEN = ("frames_per_sample", "caption_frames")   # the grammars the OmniPT prompts write prior boxes in (option grammar)


@dataclass(frozen=True)
class TaskContract:
    """One tracking task's agreement between its training rows and its tracking loop.

    ``max_pixels`` is the cap inference must use (None: the boxes do not depend on it, inference
    keeps its own, as the released VPTracker loop sets none); ``train_max_pixels`` is the cap the
    training images were resized under (the stage's ``max_pixels`` / ``IMAGE_MAX_TOKEN_NUM``).
    """

    task: str                          # the tracking task these rows train (vptracker.tasks registry)
    family: str
    grammar: str                       # answers: "vptracker_json" | "bbox" | "qwen"
    box_scale: str                     # abs | resized | norm1 | norm1000 (never "family": resolved)
    min_pixels: int | None = None
    max_pixels: int | None = None
    train_max_pixels: int | None = None
    frames_per_sample: tuple[int, ...] | None = None   # every value trained with (chosen: CHOSEN)
    caption_frames: tuple[int, ...] | None = None
    special_tokens: tuple[str, ...] = ()
    vp_color: str | None = None
    line_width: int | None = None
    template_scale: float | None = None
    visual_prompt: bool | None = None

    def __post_init__(self):
        object.__setattr__(self, "special_tokens", tuple(self.special_tokens))
        for name in CHOSEN:   # one value (a builder's option) or the values of several stages
            value = getattr(self, name)
            if value is not None:
                values = value if isinstance(value, (list, tuple)) else (value,)
                object.__setattr__(self, name, tuple(sorted({int(v) for v in values})))

    def to_dict(self) -> dict:
        out = asdict(self)
        out["special_tokens"] = list(self.special_tokens)
        for name in CHOSEN:
            if out[name] is not None:
                out[name] = list(out[name])
        return out

    def binding(self) -> dict:
        """The fields that bind the checkpoint (all but :data:`CHOSEN`)."""
        return {k: v for k, v in asdict(self).items() if k not in CHOSEN}

    @classmethod
    def from_dict(cls, data: dict, where: str = "contract") -> TaskContract:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown contract field(s) {unknown}; expected {sorted(known)}")
        try:
            return cls(**data)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{where}: {err}") from None

    def options(self) -> dict:
        """The inference options this contract sets (``TaskOptions`` keys; unset fields left out;
        a chosen field as its largest trained value, the longest context the checkpoint saw)."""
        out = {OPTION_OF[k]: (max(v) if k in CHOSEN else v) for k, v in asdict(self).items()
               if k in OPTION_OF and v is not None}
        if self.grammar in PROMPT_GRAMMARS:
            out["grammar"] = self.grammar
        return out

    def coord_map(self, width: int, height: int) -> CoordMap:
        """The training side's map from frame boxes to answer boxes for one image size."""
        if self.box_scale == "resized":
            return family_coord_map(self.family, width, height, "resized", min_pixels=self.min_pixels,
                                    max_pixels=self.train_max_pixels)
        return CoordMap(self.box_scale, width, height)


def resolve_scale(family: str, scale: str) -> str:
    """A builder's ``scale`` option with ``family`` replaced by the family's own convention."""
    return get_family(family).box_scale if scale == "family" else scale


def caption_frames(first: int, last: int, count: int) -> list[int]:
    """THE caption frame rule (training rows and the caption tracker both call it): up to ``count``
    distinct frame indices evenly over ``first..last`` (inclusive), always ``first`` and ``last``;
    a span shorter than ``count`` gives each of its frames once (no repeated images)."""
    if last < first:
        return []
    if last - first + 1 <= count:
        return list(range(first, last + 1))
    if count == 1:
        return [first]
    # the step exceeds one frame here, so rounding keeps the indices distinct
    return np.rint(np.linspace(first, last, count)).astype(int).tolist()


# --------------------------------------------------------------------------- files


def merge_contracts(contracts: dict[str, TaskContract], more: dict[str, TaskContract], where: str) -> None:
    """Adds ``more`` to ``contracts``: the binding fields of one task must agree (else an error
    naming them); its chosen fields gather every trained value."""
    for task, contract in more.items():
        old = contracts.get(task)
        if old is None:
            contracts[task] = contract
            continue
        theirs = contract.binding()
        diff = {k: (v, theirs[k]) for k, v in old.binding().items() if theirs[k] != v}
        if diff:
            raise ConfigError(f"{where}: rows for task {task} were prepared under two different contracts "
                              f"(field: (one, other)): {diff}; train one task under one contract")
        gathered = {name: _union(getattr(old, name), getattr(contract, name)) for name in CHOSEN}
        contracts[task] = replace(old, **gathered)


def _union(one: tuple | None, other: tuple | None) -> tuple | None:
    if one is None or other is None:
        return one if other is None else other
    return tuple(sorted(set(one) | set(other)))


def read_card_contracts(card: dict, where: str) -> dict[str, TaskContract]:
    raw = card.get("contracts") or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: 'contracts' must map task -> contract, got {type(raw).__name__}")
    return {task: TaskContract.from_dict(data, f"{where}: contracts.{task}") for task, data in raw.items()}


def write_contract_file(folder: str | Path, contracts: dict[str, TaskContract], sources: list[str]) -> Path:
    """``<folder>/vptracker_contract.json``: every task's contract and the data cards it came from."""
    path = Path(folder) / CONTRACT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"format": FORMAT, "sources": sources,
            "tasks": {task: c.to_dict() for task, c in sorted(contracts.items())}}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def find_contract_file(model_dir: str | Path | None, adapter: str | Path | None = None) -> Path | None:
    """The contract of a checkpoint: in the adapter or model folder, else in its parent (the run
    folder of a ``checkpoint-N``); None for a model trained elsewhere."""
    for folder in (adapter, model_dir):
        if folder is None:
            continue
        folder = Path(folder)
        for candidate in (folder / CONTRACT_FILE, folder.parent / CONTRACT_FILE):
            if candidate.is_file():
                return candidate
    return None


def read_contract_file(path: str | Path, task: str) -> TaskContract | None:
    """The contract of ``task`` in a contract file; None when the checkpoint was not trained on it."""
    return read_all_contracts(path).get(task)


def read_all_contracts(path: str | Path) -> dict[str, TaskContract]:
    """Every task's contract in a contract file."""
    path = Path(path)
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ConfigError(f"{path}: not a readable contract file ({err})") from None
    if not isinstance(body, dict) or body.get("format") != FORMAT or not isinstance(body.get("tasks"), dict):
        raise ConfigError(f"{path}: expected {{'format': {FORMAT}, 'tasks': {{task: contract}}}}")
    return {task: TaskContract.from_dict(data, f"{path}: tasks.{task}") for task, data in body["tasks"].items()}


def read_sources(path: str | Path) -> list[str]:
    """The data cards a contract file names (``sources``)."""
    try:
        sources = json.loads(Path(path).read_text(encoding="utf-8")).get("sources") or []
    except (OSError, ValueError, AttributeError):
        return []
    return [str(s) for s in sources] if isinstance(sources, list) else []


def contract_for(task: str, model_dir, adapter=None) -> tuple[TaskContract | None, Path | None]:
    """The checkpoint's contract for ``task`` and its file, or ``(None, file-or-None)`` with one log line."""
    path = find_contract_file(model_dir, adapter)
    if path is None:
        logger.warning("%s: no %s (a model not trained by `vptracker train`): task options keep the "
                       "inference defaults", adapter or model_dir, CONTRACT_FILE)
        return None, None
    contract = read_contract_file(path, task)
    if contract is None:
        logger.warning("%s: holds no contract for task %s (the checkpoint was not trained on it): task options "
                       "keep the inference defaults", path, task)
    return contract, path


def apply_contract(options: dict, contract: TaskContract, source: Path | str) -> dict:
    """``options`` with every unset key filled from the contract. A set binding key that disagrees
    is a :class:`ConfigError` naming the option, both values and the contract file; a chosen key
    (frames per sample, caption frames) set to a value the checkpoint was not trained with runs,
    with one log line naming the trained values. An unset chosen key takes the largest trained value
    (the longest context the checkpoint saw)."""
    out = dict(options)
    trained = {OPTION_OF[name]: getattr(contract, name) for name in CHOSEN}
    for key, value in contract.options().items():
        given = out.get(key)
        if key in trained:
            if given is None:
                out[key] = value
            elif not any(_same(given, v) for v in trained[key]):
                logger.warning("task option %s=%s: %s was trained with %s %s (%s); running with %s", key, given,
                               contract.task, key, list(trained[key]), source, given)
            continue
        if given is None:
            out[key] = value
        elif not _same(given, value):
            raise ConfigError(f"task option {key}={given!r} disagrees with {value!r} in {source} (the contract "
                              f"the checkpoint was trained under); remove the option or set it to {value!r}")
    return out


def _same(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return float(a) == float(b)
    return a == b
