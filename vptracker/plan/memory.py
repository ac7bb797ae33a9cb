"""Memory per GPU process before a GPU hour is spent: `vptracker plan`, `--dry-run` and every run.

From a stage or inference config, a cluster shape and the model's ``config.json`` (no weights), the
plan adds up what one GPU process holds in each phase of the run and refuses a run that cannot fit,
naming the setting to change. The counts are exact (:mod:`vptracker.models.shapes`); the byte rules:

* training state (ZeRO, Rajbhandari et al. 2020): bf16/fp16 weights 2 bytes per parameter, gradients
  2, Adam's fp32 master copy + two moments 12 per trainable parameter; ZeRO-1 splits the optimizer
  states over the N processes, ZeRO-2 also the gradients, ZeRO-3 also the weights (``ceil(count / N)``
  each). Without DeepSpeed the weights keep ``torch_dtype``, and AdamW's two moments take the
  trainable parameters' dtype (PEFT keeps LoRA adapters in float32 under a half-precision model).
  LoRA trains ``rank * (in + out)`` per adapted linear layer (``all-linear``: the LLM's, plus the
  ViT's when ``freeze_vit`` is false).
* activations per micro-batch of ``b`` sequences of ``s`` tokens, in ``torch_dtype`` (flash
  attention or SDPA: no ``s^2`` term): per decoder layer and token, the tensors autograd keeps
  (``ACT_ELEMENTS``); with gradient checkpointing only each layer's input, plus one layer recomputed;
  the output layer's logits (only the answer's: ms-swift passes ``logits_to_keep``) in dtype, the
  loss's float32 log-softmax kept for backward, its gradient, the float32 gradient of the logits
  and, in half precision, that gradient cast back (16 bytes per logit in float32, measured on CPU).
* vLLM: its whole budget is ``gpu_memory_utilization * GPU``, which must hold the weights split over
  ``tensor_parallel_size`` GPUs, a KV cache for one ``max_model_len`` sequence and its profile run.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

from vptracker.models.shapes import ModelShapes

GB = 1e9
CUDA_RESERVE = 2 * GB        # CUDA context, NCCL buffers and allocator slack per process
VLLM_PROFILE = 2 * GB        # vLLM's profile run, CUDA graphs and sampler buffers (its own reserve)
ADAM_BYTES = 12              # fp32 master weights + exp_avg + exp_avg_sq, per trainable parameter
LOGIT_BYTES_EXTRA = 3 * 4    # float32 log-softmax kept for backward, its gradient, the logits' gradient
DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4, None: 2}


def parse_mem(text: str | float) -> float:
    """``80GB``, ``80GiB``, ``141`` (GB) -> bytes; GB is decimal, the planner's unit."""
    raw = str(text).strip().upper().replace(" ", "")
    for unit, scale in (("GIB", 2**30), ("GB", GB), ("G", GB)):
        if raw.endswith(unit):
            raw, mult = raw[: -len(unit)], scale
            break
    else:
        mult = GB
    try:
        return float(raw) * mult
    except ValueError:
        raise ValueError(f"gpu_mem {text!r}: expected a size such as 80GB") from None


@dataclass
class Cluster:
    nnodes: int = 1
    nproc_per_node: int = 8
    gpu_mem: float = 80 * GB

    @property
    def world(self) -> int:
        return self.nnodes * self.nproc_per_node

    @classmethod
    def from_env(cls, nnodes=None, nproc=None, gpu_mem=None) -> Cluster:
        return cls(int(nnodes or os.environ.get("NNODES") or 1), int(nproc or os.environ.get("NPROC_PER_NODE") or 8),
                   parse_mem(gpu_mem or os.environ.get("GPU_MEM") or "80GB"))

    def __str__(self) -> str:
        return f"{self.nnodes}x{self.nproc_per_node} GPUs of {self.gpu_mem / GB:.0f} GB"


@dataclass
class Line:
    what: str
    bytes: float
    detail: str = ""


@dataclass
class Phase:
    """What one GPU process holds at the peak of one phase (training step, rollout, engine...)."""
    name: str
    lines: list[Line]
    limit: float
    fix: str = ""               # the setting to change when it does not fit

    @property
    def total(self) -> float:
        return sum(line.bytes for line in self.lines)


@dataclass
class Plan:
    title: str
    cluster: Cluster
    shapes: ModelShapes
    phases: list[Phase] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def fits(self) -> bool:
        return not self.refusals

    def check(self) -> None:
        for phase in self.phases:
            if phase.total > phase.limit:
                self.refusals.append(f"{phase.name}: needs {phase.total / GB:.1f} GB per GPU, more than "
                                     f"{phase.limit / GB:.1f} GB; {phase.fix}")

    def render(self) -> str:
        s = self.shapes
        out = [f"plan: {self.title} on {self.cluster}",
               (f"model: {s.source} ({s.model_type}): {s.total:,} parameters (vision {s.params['vision']:,}, "
                f"aligner {s.params['aligner']:,}, llm {s.params['llm']:,})")]
        for phase in self.phases:
            mark = "ok" if phase.total <= phase.limit else "DOES NOT FIT"
            out.append(f"  {phase.name}: {phase.total / GB:.1f} / {phase.limit / GB:.1f} GB per GPU  [{mark}]")
            for line in phase.lines:
                out.append(f"    {line.what:<26} {line.bytes / GB:9.2f} GB  {line.detail}")
        out += [f"  note: {n}" for n in self.notes]
        out += [f"  REFUSED: {r}" for r in self.refusals] or ["  fits"]
        return "\n".join(out)


class PlanError(ValueError):
    """A run that cannot fit; the message names the setting to change."""


def split(count: int, parts: int) -> int:
    """One process's share of ``count`` elements split over ``parts`` processes (ZeRO pads up)."""
    return math.ceil(count / parts)


# ---- training state ---------------------------------------------------------------------------

@dataclass
class Training:
    """What the training side of a stage holds: the rules of the module docstring."""
    total_params: int        # all parameters of the model as trained (LoRA adapters included)
    trainable: int
    zero_stage: int | None   # None: no DeepSpeed
    half: bool               # bf16 or fp16 mixed precision under DeepSpeed
    dtype_bytes: int         # torch_dtype of the weights without DeepSpeed
    trainable_bytes: int     # dtype of the trainable parameters without DeepSpeed

    def state(self, world: int) -> list[Line]:
        if self.zero_stage is None:
            return [Line("weights", self.frozen_bytes(), "torch_dtype, one full copy per process"),
                    Line("gradients", self.trainable * self.trainable_bytes, "trainable parameters"),
                    Line("optimizer states", self.trainable * 2 * self.trainable_bytes, "AdamW exp_avg + exp_avg_sq")]
        w, g, opt = (2, 2, ADAM_BYTES) if self.half else (4, 4, 8)
        zero = self.zero_stage
        weights = split(self.total_params, world) if zero >= 3 else self.total_params
        grads = split(self.trainable, world) if zero >= 2 else self.trainable
        states = split(self.trainable, world) if zero >= 1 else self.trainable
        return [Line("weights", weights * w, f"ZeRO-{zero}" + (f", 1/{world} of them" if zero >= 3 else "")),
                Line("gradients", grads * g, f"{self.trainable:,} trainable" + (f", 1/{world}" if zero >= 2 else "")),
                Line("optimizer states", states * opt,
                     f"{opt} bytes per trainable parameter" + (f", 1/{world}" if zero >= 1 else ""))]

    def frozen_bytes(self) -> float:
        return (self.total_params - self.trainable) * self.dtype_bytes + self.trainable * self.trainable_bytes


# Tensors autograd keeps per token in one decoder layer (flash/SDPA attention, SwiGLU MLP): the two
# norms' inputs and outputs (4h), q, k, v before and after rotary (q 2x, k 2x, v 1x), the attention
# output (q), and the MLP's gate, up, act(gate) and product (4i).
def act_elements(s: ModelShapes) -> int:
    q, kv = s.heads * s.head_dim, s.kv_heads * s.head_dim
    return 4 * s.hidden + 3 * q + 3 * kv + 4 * s.intermediate


def lora_dropout_elements(s: ModelShapes) -> int:
    """PEFT's dropout keeps a dropped copy of each adapted layer's input (q, k, v, o, gate, up, down)."""
    return 5 * s.hidden + s.heads * s.head_dim + s.intermediate


def vision_act_elements(s: ModelShapes) -> int:
    return 8 * s.vision_hidden + 4 * s.vision_intermediate


def activations(s: ModelShapes, batch: int, tokens: int, logit_tokens: int, dtype_bytes: int, checkpointing: bool,
                lora_dropout: bool, vision_patches: int, vision_trains: bool) -> list[Line]:
    per_layer = act_elements(s) + (lora_dropout_elements(s) if lora_dropout else 0)
    layer_bytes = batch * tokens * per_layer * dtype_bytes
    if checkpointing:
        lines = [Line("activations (layer inputs)", s.layers * batch * tokens * s.hidden * dtype_bytes,
                      f"gradient checkpointing: {s.layers} layers x {batch}x{tokens} tokens x hidden {s.hidden}"),
                 Line("activations (1 layer)", layer_bytes, "the layer being recomputed in backward")]
    else:
        lines = [Line("activations", s.layers * layer_bytes,
                      f"{s.layers} layers x {batch}x{tokens} tokens x {per_layer} values (no checkpointing)")]
    cast_back = dtype_bytes if dtype_bytes < 4 else 0  # the float32 gradient cast to a half-precision one
    lines.append(Line("logits", batch * logit_tokens * s.vocab * (dtype_bytes + cast_back + LOGIT_BYTES_EXTRA),
                      f"{batch}x{logit_tokens} tokens x vocab {s.vocab}"))
    vis = batch * vision_patches * vision_act_elements(s) * dtype_bytes
    if vision_patches:
        if vision_trains:
            depth = s.vision_layers
            vis_bytes = (depth * batch * vision_patches * s.vision_hidden * dtype_bytes + vis) if checkpointing \
                else depth * vis
            lines.append(Line("vision activations", vis_bytes, f"{vision_patches} patches per sequence, ViT trains"))
        else:
            lines.append(Line("vision activations", vis, f"{vision_patches} patches, frozen ViT: one layer at a time"))
    return lines


def kv_bytes_per_token(s: ModelShapes, tp: int, dtype_bytes: int = 2) -> float:
    """K and V of every layer for one token on one GPU; vLLM replicates KV heads when tp > kv_heads."""
    heads_per_gpu = max(1, s.kv_heads // tp) if s.kv_heads >= tp else 1
    return 2 * s.layers * heads_per_gpu * s.head_dim * dtype_bytes


def vllm_engine(s: ModelShapes, cluster: Cluster, tp: int, utilization: float, max_model_len: int,
                setting: str, dtype_bytes: int = 2) -> Phase:
    """vLLM's own budget: weights / tp + one max_model_len sequence of KV + its profile reserve."""
    weights = split(s.total, tp) * dtype_bytes
    kv = max_model_len * kv_bytes_per_token(s, tp, dtype_bytes)
    fix = suggest_tp(s, cluster, utilization, max_model_len, setting, dtype_bytes)
    return Phase(f"vLLM engine (tensor_parallel_size {tp}, gpu_memory_utilization {utilization})",
                 [Line("vLLM weights", weights, f"{s.total:,} parameters / tp {tp}"),
                  Line("vLLM KV cache (1 sequence)", kv, f"max_model_len {max_model_len} tokens"),
                  Line("vLLM profile + graphs", VLLM_PROFILE, "profile run, CUDA graphs (estimate)")],
                 utilization * cluster.gpu_mem, fix)


def suggest_tp(s: ModelShapes, cluster: Cluster, utilization: float, max_model_len: int, setting: str,
               dtype_bytes: int = 2) -> str:
    budget = utilization * cluster.gpu_mem
    for tp in (1, 2, 4, 8, 16):
        if cluster.nproc_per_node % tp or s.heads % tp:
            continue
        need = split(s.total, tp) * dtype_bytes + max_model_len * kv_bytes_per_token(s, tp, dtype_bytes) + VLLM_PROFILE
        if need <= budget:
            return (f"set {setting}tensor_parallel_size to {tp} (weights {split(s.total, tp) * dtype_bytes / GB:.1f} GB "
                    f"per GPU), or raise {setting}gpu_memory_utilization / lower {setting}max_model_len")
    return (f"no tensor_parallel_size dividing {cluster.nproc_per_node} GPUs per node fits {budget / GB:.1f} GB: raise "
            f"{setting}gpu_memory_utilization, lower {setting}max_model_len, or use a larger GPU")
