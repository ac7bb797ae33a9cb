"""The demo pipeline: each step calls the project's real entry points at laptop scale.

Steps (each writes under ``out``): ``data/`` (synthetic TNL2K-style SOT and MOTChallenge-style
MOT sets), ``model/`` (a tiny random-weight Qwen3-VL), ``prepared/`` (ms-swift JSONL from the
``vptracker_sot`` or ``omnipt_sot`` task builders and their ``_grpo`` variants), ``runs/`` (an SFT
stage, ``vptracker_sft`` or ``stage3_sft``, then a GRPO stage, through :func:`vptracker.train.runner.run_stage`), ``results/<tracker>/`` (the
batched SOT loop, :func:`vptracker.infer.runner.track_sot`) and the scores of
:func:`vptracker.eval.sot_eval.evaluate_sot`. The report is written by :mod:`vptracker.demo.report`.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from vptracker.boxes import (
    Form,
    parse_trajectory,
    parse_vptracker,
    render_bbox,
    render_vptracker,
    strip_trajectory_tokens,
)
from vptracker.datasets.synthetic import SyntheticConfig, write_mot, write_sot
from vptracker.eval.sot_eval import evaluate_sot
from vptracker.infer.engine import make_engine
from vptracker.infer.outputs import sot_text
from vptracker.infer.runner import track_sot
from vptracker.infer.threads import check_threads, choose_threads, use_threads
from vptracker.prompts.texts import VPTRACKER_SPECIAL_TOKENS, omnipt_sot, vptracker_prompt
from vptracker.tasks.contract import contract_for
from vptracker.tasks.prepare import prepare
from vptracker.tiny.model import make_tiny_model
from vptracker.train import runner

PROTOCOL = "ostrack"  # frames without a valid target count as misses for every tracker alike

# The demos' numbers in the README are measured on two threads; ``threads: auto`` uses no more.
AUTO_MOST = 2


@dataclass
class StepLog:
    """Wall time per step, shown as progress and kept for the report; with ``threads`` (the config's
    setting) each step first chooses its CPU threads (``auto``: as many cores as are idle, at most
    :data:`AUTO_MOST`) and the number used is kept beside its time."""

    echo: callable = print
    threads: object = None
    times: dict = field(default_factory=dict)
    used: dict = field(default_factory=dict)
    _start: float = field(default_factory=time.time)

    def step(self, name: str, fn, *args, **kwargs):
        if self.threads is not None:
            self._threads(name)
        t0 = time.time()
        self.echo(f"[demo {time.time() - self._start:6.0f}s] {name} ...")
        value = fn(*args, **kwargs)
        self.times[name] = round(time.time() - t0, 1)
        self.echo(f"[demo {time.time() - self._start:6.0f}s] {name} done in {self.times[name]:.0f}s")
        return value

    def _threads(self, name: str) -> None:
        n = choose_threads(self.threads, most=AUTO_MOST)
        use_threads(n)
        self.used[name] = n
        if n < AUTO_MOST and check_threads(self.threads) == "auto":
            self.echo(f"[demo] {name}: another process holds a core; this step runs on {n} thread "
                      f"(threads: auto; the README's numbers use {AUTO_MOST}: threads={AUTO_MOST} "
                      f"fixes them, at up to 12x the time beside a busy process)")

    @property
    def total(self) -> float:
        return round(time.time() - self._start, 1)


# --------------------------------------------------------------------------- data and model

def synthetic_config(cfg: dict):
    d = cfg["data"]
    return SyntheticConfig(width=int(d["width"]), height=int(d["height"]), frames=int(d["frames"]),
                           size_range=tuple(d["size_range"]), speed_range=tuple(d["speed_range"]),
                           distractors=tuple(d["distractors"]), occluder_prob=float(d["occluder_prob"]),
                           leave_prob=float(d["leave_prob"]),
                           background_contrast=float(d["background_contrast"]),
                           texture_contrast=float(d["texture_contrast"]))


def make_data(cfg: dict, out: Path) -> dict[str, Path]:
    d = cfg["data"]
    syn = synthetic_config(cfg)
    sot = write_sot(out / "data" / "sot", {"train": int(d["train_sequences"]), "test": int(d["test_sequences"])},
                    seed=int(cfg["seed"]), cfg=syn)
    mot = write_mot(out / "data" / "mot", {"train": int(d["mot_sequences"])}, seed=int(cfg["seed"]), cfg=syn)
    return {"sot": sot, "mot": mot}


def make_model(cfg: dict, out: Path) -> Path:
    m = cfg["model"]
    # The BPE learns the prompts' words and the answers' punctuation, so that the released VPTracker
    # prompt costs ~230 tokens instead of ~460 (step time grows with sequence length).
    corpus = (vptracker_prompt("the green striped square moving left"), render_vptracker((12, 34, 56, 78)),
              render_vptracker(None), omnipt_sot(2, render_bbox((12, 34, 56, 78))))
    model_dir = make_tiny_model(m["family"], out / "model", hidden=int(m["hidden"]), layers=int(m["layers"]),
                                vision_depth=int(m["vision_depth"]), seed=int(cfg["seed"]), extra_corpus=corpus,
                                compact_vocab=bool(m["compact_vocab"]), merge_size=int(m["merge_size"]))
    if m.get("embed_std"):
        _rescale_embedding(model_dir, float(m["embed_std"]), int(cfg["seed"]))
    if m.get("vision_pos") == "sincos":
        _sincos_vision_positions(model_dir)
    return model_dir


def sincos_2d(side: int, dim: int, base: float = 100.0):
    """A ``side`` x ``side`` grid of 2-D sine-cosine position codes (MAE's fixed table), row-major:
    the first half of each code is the row's, the second the column's."""
    import torch

    quarter = dim // 4
    omega = base ** (-torch.arange(quarter, dtype=torch.float64) / max(quarter - 1, 1))
    pos = torch.arange(side, dtype=torch.float64)[:, None] * omega[None]      # side x quarter
    axis = torch.cat([pos.sin(), pos.cos()], dim=1)                            # side x dim/2
    rows = axis[:, None, :].expand(side, side, dim // 2)
    cols = axis[None, :, :].expand(side, side, dim // 2)
    return torch.cat([rows, cols], dim=2).reshape(side * side, dim).float()


def _sincos_vision_positions(model_dir: Path) -> None:
    """Writes a 2-D sine-cosine table into the vision tower's learned position embedding.

    Qwen3-VL's ViT adds a learned (``pos_embed``) table to the patch features; at its random
    0.02-std init it is noise that the model must first turn into geometry, one grid cell at a
    time, before it can say where anything is. A smooth table (base 100, so that its slowest
    codes are nearly linear over the grid) lets every cell's coordinates be read out at once.
    """
    from safetensors.torch import load_file, save_file

    path = model_dir / "model.safetensors"
    state = load_file(path)
    key = next((k for k in state if k.endswith("visual.pos_embed.weight")), None)
    if key is None:
        raise ValueError(f"{path}: model.vision_pos=sincos needs a vision tower with a pos_embed table "
                         "(Qwen3-VL); this model has none")
    n, dim = state[key].shape
    side = int(round(n ** 0.5))
    state[key] = sincos_2d(side, dim).to(state[key].dtype)
    save_file(state, path, metadata={"format": "pt"})


def _rescale_embedding(model_dir: Path, std: float, seed: int) -> None:
    """Redraws the (tied) token embedding with standard deviation ``std``.

    The demo freezes the embedding, which is also the output layer. At the usual 0.02 init a
    frozen output layer cannot express confident answers (logits stay within ~+-3 and the loss
    stalls near ln(vocab) for hundreds of steps); at ~0.3 the rest of the network can align its
    final states with the answer tokens' rows within tens of steps.
    """
    import torch
    from safetensors.torch import load_file, save_file

    path = model_dir / "model.safetensors"
    state = load_file(path)
    gen = torch.Generator().manual_seed(seed)
    for key, value in state.items():
        if key.endswith("embed_tokens.weight"):
            state[key] = torch.randn(value.shape, generator=gen, dtype=value.dtype) * std
    save_file(state, path, metadata={"format": "pt"})


def prepare_rows(cfg: dict, sot_root: Path, out: Path) -> dict[str, list[str]]:
    """Training rows from the real task builders, via the same driver as ``vptracker prepare``."""
    task = cfg["task"]
    source = {"synthetic": {"dataset": "synthetic_sot", "root": str(sot_root), "split": "train"}}
    options = {"scale": cfg["prepare"]["scale"], "family": cfg["model"]["family"], **(cfg["task_options"] or {})}
    config = {"seed": int(cfg["seed"]), "out": str(out / "prepared"), "workers": 1, "jobs": {
        "sft": {"task": task, "options": options, "sources": source,
                "samples": {"train": int(cfg["prepare"]["sft_samples"])}},
        "grpo": {"task": f"{task}_grpo", "options": options, "sources": source,
                 "samples": {"train": int(cfg["prepare"]["grpo_samples"])}},
    }}
    card = prepare(config, progress=False)
    folder = Path(config["out"])  # the card names shard files relative to the output folder
    return {job: [str(folder / f) for f in card["outputs"]["train"][job]["files"]] for job in config["jobs"]}


# --------------------------------------------------------------------------- training

def _model_overrides(cfg: dict, model_dir: Path, out: Path) -> list[str]:
    return ["model_preset=qwen3_vl_4b", f"model={model_dir}", f"model.family={cfg['model']['family']}",
            "profile=cpu", f"run_dir={out / 'runs'}",
            "val_dataset=[]", "global_batch_size=null", "swift.freeze_vit=false", "swift.freeze_aligner=false",
            "swift.report_to=none", "swift.save_total_limit=1", f"swift.seed={int(cfg['seed'])}",
            f"swift.data_seed={int(cfg['seed'])}", "swift.full_determinism=true",
            "swift.max_length=1024", "swift.gradient_accumulation_steps=1", "swift.weight_decay=0.0",
            # Full tuning of a model this small costs little more than LoRA and learns much faster.
            "merge_lora=false", "swift.tuner_type=full", "swift.lora_rank=null", "swift.lora_alpha=null",
            "swift.lora_dropout=null"]


def _list(value) -> str:
    return "[" + ",".join(str(v) for v in value) + "]"


def _freeze(names) -> str:
    return f"swift.freeze_parameters={_list(names)}" if names else "swift.freeze_parameters=null"


def train_sft(cfg: dict, model_dir: Path, files: list[str], out: Path, echo=print, output=None) -> Path:
    s = cfg["sft"]
    steps = int(s["max_steps"])
    overrides = _model_overrides(cfg, model_dir, out) + [
        f"dataset={_list(files)}", f"swift.max_steps={steps}", f"swift.per_device_train_batch_size={s['batch_size']}",
        f"swift.learning_rate={s['learning_rate']}", f"swift.lr_scheduler_type={s['lr_scheduler']}",
        f"swift.warmup_ratio={s['warmup_ratio']}",
        _freeze(s["freeze_parameters"]), f"swift.save_steps={steps}",
        f"swift.logging_steps={max(1, steps // 20)}", "swift.eval_steps=null"]
    return runner.run_stage(s["stage"], overrides, echo=echo, force=True, stream=output)


def train_grpo(cfg: dict, model_dir: Path, init: Path, files: list[str], out: Path, echo=print,
               output=None) -> Path:
    g = cfg["grpo"]
    steps = int(g["max_steps"])
    overrides = _model_overrides(cfg, model_dir, out) + [
        f"init={init}", f"dataset={_list(files)}", f"swift.max_steps={steps}", f"swift.per_device_train_batch_size={g['batch_size']}",
        f"swift.learning_rate={g['learning_rate']}", "swift.lr_scheduler_type=cosine", "swift.warmup_ratio=0.0",
        _freeze(cfg["sft"]["freeze_parameters"]), f"swift.save_steps={steps}",
        "swift.logging_steps=1", f"swift.new_special_tokens={_list(VPTRACKER_SPECIAL_TOKENS)}",
        f"rollout.num_generations={g['num_generations']}",
        f"rollout.max_completion_length={g['max_completion_length']}", f"rollout.temperature={g['temperature']}",
        f"rollout.top_k={g['top_k']}"]
    return runner.run_stage(g["stage"], overrides, echo=echo, force=True, stream=output)


# --------------------------------------------------------------------------- inference and scores

def contract_pixels(task: str, model_dir: Path) -> dict:
    """The image size limits a trained checkpoint's task contract fixes (none for an untrained model),
    so the engine resizes frames as the training rows were resized."""
    contract, _ = contract_for(task, model_dir)
    if contract is None:
        return {}
    return {k: getattr(contract, k) for k in ("min_pixels", "max_pixels") if getattr(contract, k) is not None}


def track(cfg: dict, model_dir: Path, sequences, results: Path) -> Path:
    """Runs the real batched SOT loop of ``cfg['task']``; writes ``<seq>.txt`` + ``responses.jsonl``."""
    i = cfg["infer"]
    engine = make_engine(model_dir, cfg["model"]["family"], max_batch_size=int(i["batch_size"]),
                         max_tokens=int(i["max_tokens"]), special_tokens=VPTRACKER_SPECIAL_TOKENS,
                         torch_dtype="float32", **contract_pixels(cfg["task"], model_dir))
    options = {"family": cfg["model"]["family"], "box_scale": cfg["prepare"]["scale"]}
    if "frames" in (cfg["task_options"] or {}):
        options["frames_per_sample"] = int(cfg["task_options"]["frames"])
    # model_dir: a trained checkpoint's task contract (vptracker_contract.json) is read and checked
    track_sot(engine, sequences, results, task=cfg["task"], options=options,
              concurrency=int(i["batch_size"]), progress=True, model_dir=model_dir)
    return results


def hold_first_box(sequences, results: Path) -> Path:
    """The baseline every tracker must beat: the first frame's box, repeated."""
    results.mkdir(parents=True, exist_ok=True)
    for seq in sequences:
        (results / f"{seq.name}.txt").write_text(sot_text([seq.target.boxes[0]] * len(seq)))
    return results


def in_grammar(answer: str, task: str) -> bool:
    """Whether an answer is written in the task's trained grammar: VPTracker's JSON with ``visible``
    and ``bbox``, or (OmniPT) one exact ``<bbox>x,y,w,h</bbox>`` / ``<None>`` per image and nothing else."""
    if task == "vptracker_sot":
        parsed = parse_vptracker(answer)
        return parsed.form == Form.EXACT and parsed.visible is not None
    slots = parse_trajectory(answer)
    leftover = strip_trajectory_tokens(answer).strip()
    return bool(slots) and not leftover and all(s.form in (Form.EXACT, Form.NONE) for s in slots)


def parse_rate(results: Path, task: str = "vptracker_sot") -> float:
    """Percentage of the loop's answers (``responses.jsonl``) written in the trained grammar."""
    answers = [json.loads(line)["answer"] for line in (results / "responses.jsonl").read_text().splitlines() if line]
    return 100.0 * sum(in_grammar(a, task) for a in answers) / max(len(answers), 1)


def score(sequences, results: Path) -> dict:
    return evaluate_sot(sequences, results, protocol=PROTOCOL)
