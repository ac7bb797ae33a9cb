"""Plans for the two kinds of runs: a training stage (SFT, GRPO, mid-training) and an inference config.

:func:`plan_stage` reads a resolved stage config (``vptracker.train.stages.load_stage``): its
``swift:``, ``rollout:`` and ``clip:`` blocks hold ms-swift's own names, and ms-swift's defaults
apply where a key is absent. :func:`plan_infer` reads a ``configs/infer/*.yaml`` config. Both
return a :class:`vptracker.plan.memory.Plan` whose ``refusals`` name the setting to change.
"""
from __future__ import annotations

import json
from pathlib import Path

from vptracker.config import load_yaml, resolve_path
from vptracker.infer.common import TaskOptions
from vptracker.infer.sides import tracking
from vptracker.models.shapes import PRESET_DIR, ModelShapes, model_shapes
from vptracker.plan.memory import (
    CUDA_RESERVE,
    DTYPE_BYTES,
    GB,
    Cluster,
    Line,
    Phase,
    Plan,
    PlanError,
    Training,
    activations,
    kv_bytes_per_token,
    split,
    vllm_engine,
)
from vptracker.plan.rows import RowLengths, visual_tokens
from vptracker.tasks import get_task

# ms-swift 4.6's defaults for the keys the plan reads (swift/arguments, rlhf_trainers/args_mixin.py).
SWIFT_DEFAULTS = {"tuner_type": "lora", "lora_rank": 8, "lora_dropout": 0.05, "freeze_llm": False, "freeze_vit": True,
                  "freeze_aligner": True, "per_device_train_batch_size": 1, "gradient_checkpointing": True,
                  "max_length": None, "torch_dtype": "bfloat16", "bf16": None, "fp16": None, "deepspeed": None}
ANSWER_TOKENS = 2048  # OmniPT's output budget ("at most 2048 output tokens"), when no data is given
ROLLOUT_DEFAULTS = {"use_vllm": False, "vllm_mode": None, "vllm_gpu_memory_utilization": 0.9,
                    "vllm_tensor_parallel_size": 1, "vllm_max_model_len": None, "sleep_level": 0,
                    "max_completion_length": 512, "beta": 0.04, "offload_model": False, "offload_optimizer": False}


def resolve_model(cfg_model: dict | None, override: str | None, init: str | None = None,
                  preset: str | None = None) -> ModelShapes:
    """The config.json to plan with: ``--model``, else the weights the run starts from, else the preset's
    (a hub id a preset names, or the stage's ``model_preset`` when its model folder is on another machine:
    a dry run on a login node plans the cluster's run)."""
    candidates = [override] if override else []
    candidates += [init, (cfg_model or {}).get("path")]
    for cand in candidates:
        if cand and (Path(str(cand)) / "config.json").is_file():
            return model_shapes(cand)
    if override:
        return model_shapes(override)
    path = str((cfg_model or {}).get("path") or "")
    for preset_file in sorted(PRESET_DIR.glob("*.yaml")):  # a hub id names a preset's published config
        if load_yaml(preset_file).get("path") == path:
            return model_shapes(preset_file.stem)
    if preset and (PRESET_DIR / f"{preset}.yaml").is_file():
        return model_shapes(str(preset))
    raise ValueError(f"no config.json for model {path!r}: pass --model DIR (a directory with config.json) or a preset")


def zero_stage(deepspeed) -> int | None:
    if not deepspeed:
        return None
    name = str(deepspeed)
    if name in ("zero0", "zero1", "zero2", "zero3", "zero2_offload", "zero3_offload"):
        return int(name[4])
    path = resolve_path(name)
    try:
        return int(json.loads(path.read_text()).get("zero_optimization", {}).get("stage", 0))
    except (OSError, json.JSONDecodeError, ValueError) as err:
        raise ValueError(f"deepspeed {name!r}: cannot read the ZeRO stage ({err})") from None


def _training(s: ModelShapes, sw: dict, train_parts: list[str], full: bool) -> Training:
    dtype_bytes = DTYPE_BYTES.get(sw.get("torch_dtype"), 2)
    stage = zero_stage(sw.get("deepspeed"))
    half = bool(sw.get("bf16") or sw.get("fp16")) or (sw.get("bf16") is None and dtype_bytes == 2)
    if full:
        trainable = sum(s.params[p] for p in train_parts)
        return Training(s.total, trainable, stage, half, dtype_bytes, dtype_bytes)
    lora = s.lora_params(tuple(train_parts), int(sw["lora_rank"]))
    # PEFT keeps the adapters in float32 under a half-precision base; DeepSpeed casts them to bf16.
    return Training(s.total + lora, lora, stage, half, dtype_bytes, 4)


def _parts(sw: dict, full: bool) -> list[str]:
    parts = [] if sw["freeze_llm"] else ["llm"]
    parts += [] if sw["freeze_vit"] else ["vision"]
    parts += [] if sw["freeze_aligner"] or not full else ["aligner"]
    return parts


def plan_stage(cfg, cluster: Cluster, model: str | None = None, lengths: RowLengths | None = None) -> Plan:
    """Memory per GPU process for each phase of a stage; ``plan.refusals`` lists what cannot fit."""
    s = resolve_model(cfg.get("model"), model, cfg.get("init"), cfg.get("model_preset"))
    sw = {**SWIFT_DEFAULTS, **{k: v for k, v in (cfg.get("swift") or {}).items() if v is not None}}
    plan = Plan(f"stage {cfg.name} ({cfg.kind})", cluster, s)
    if cfg.kind == "midtrain":
        plan.phases.append(_clip_phase(s, cfg.get("clip") or {}, cluster, plan))
    full = sw["tuner_type"] == "full"
    train = _training(s, sw, _parts(sw, full), full)
    dtype = train.dtype_bytes if train.zero_stage is None else (2 if train.half else 4)
    batch = int(sw["per_device_train_batch_size"])
    max_length = int(sw["max_length"] or s.max_position)
    prompt = min(max_length, lengths.max_tokens) if lengths else max_length
    patches = (lengths.max_visual_tokens if lengths else prompt) * s.merge ** 2
    if not lengths:
        plan.notes.append(f"no data given: every one of the {prompt} prompt tokens is counted as a visual token "
                          f"for the ViT (pass --data DIR for the real lengths)")
    resident = train.state(cluster.world)
    if train.zero_stage == 3:
        gathered = 2 * max(s.largest_layer, s.vocab * s.hidden) * dtype
        resident.append(Line("ZeRO-3 gathered weights", gathered, "current + prefetched module"))
    if cfg.kind != "grpo":
        # ms-swift (transformers 5) computes logits from the first labelled token on: the answer.
        answer = min(prompt, (lengths.max_answer_tokens if lengths and lengths.max_answer_tokens is not None
                              else ANSWER_TOKENS))
        if not lengths:
            plan.notes.append(f"no data given: answers are taken to be at most {ANSWER_TOKENS} tokens (OmniPT's "
                              f"output budget); the logits cover them")
        act_args = (s, batch, prompt, answer, dtype, bool(sw["gradient_checkpointing"]),
                    not full and float(sw["lora_dropout"]) > 0, patches, "vision" in _parts(sw, full))
        acts = activations(*act_args)
        _note_other_checkpointing(plan, act_args)
        plan.phases.append(Phase("training step", resident + acts + [Line("CUDA reserve", CUDA_RESERVE)],
                                 cluster.gpu_mem, _train_fix(train, sw)))
        plan.check()
        return plan
    ro = {**ROLLOUT_DEFAULTS, **{k: v for k, v in (cfg.get("rollout") or {}).items() if v is not None}}
    completion = int(ro["max_completion_length"])
    act_args = (s, batch, prompt + completion, completion, dtype, bool(sw["gradient_checkpointing"]),
                not full and float(sw["lora_dropout"]) > 0, patches, "vision" in _parts(sw, full))
    acts = activations(*act_args)
    _note_other_checkpointing(plan, act_args)
    if full and float(ro["beta"]) > 0:  # LoRA's reference model is the base with the adapter off: no copy
        ref = split(train.total_params, cluster.world if train.zero_stage == 3 else 1) * dtype
        resident.append(Line("reference model", ref, "full tuning with beta > 0 keeps a frozen copy"))
    colocate = ro["use_vllm"] and ro["vllm_mode"] == "colocate"
    util = float(ro["vllm_gpu_memory_utilization"])
    vllm_awake = Line("vLLM (awake)", util * cluster.gpu_mem, f"vllm_gpu_memory_utilization {util}")
    train_lines = resident + acts + [Line("CUDA reserve", CUDA_RESERVE)]
    if colocate and int(ro["sleep_level"]) == 0:
        train_lines.append(vllm_awake)
    plan.phases.append(Phase("training step", train_lines, cluster.gpu_mem, _train_fix(train, sw)))
    if ro["use_vllm"]:
        _plan_vllm(plan, s, cluster, ro, prompt + completion, colocate, resident, vllm_awake, lengths)
    plan.check()
    return plan


def _note_other_checkpointing(plan: Plan, act_args: tuple) -> None:
    """The activations under the other ``gradient_checkpointing`` setting, for comparison."""
    other = list(act_args)
    other[5] = not other[5]
    total = sum(line.bytes for line in activations(*other) if line.what != "logits")
    plan.notes.append(f"with gradient_checkpointing {str(other[5]).lower()} the activations would take "
                      f"{total / GB:.1f} GB")


def _plan_vllm(plan: Plan, s: ModelShapes, cluster: Cluster, ro: dict, seq_len: int, colocate: bool,
               resident: list[Line], vllm_awake: Line, lengths: RowLengths | None) -> None:
    tp = int(ro["vllm_tensor_parallel_size"])
    max_len = int(ro["vllm_max_model_len"] or s.max_position)
    if not ro["vllm_max_model_len"]:
        plan.notes.append(f"rollout.vllm_max_model_len unset: vLLM reserves for the model's {s.max_position} tokens; "
                          f"the longest prompt + completion here is {seq_len}")
    if lengths and ro.get("vllm_limit_mm_per_prompt") is None:
        plan.notes.append(f"rollout.vllm_limit_mm_per_prompt unset: the data's rows carry at most "
                          f"{lengths.max_images} images (set {{\"image\": {lengths.max_images}}})")
    if max_len < seq_len and lengths:
        plan.refusals.append(f"rollout.vllm_max_model_len {max_len} is shorter than the longest prompt + completion "
                             f"({seq_len} tokens): raise it")
    if colocate and (cluster.nproc_per_node % tp or cluster.world % tp):
        plan.refusals.append(f"rollout.vllm_tensor_parallel_size {tp} must divide NPROC_PER_NODE "
                             f"{cluster.nproc_per_node} (a tensor-parallel group stays on one node)")
    if s.heads % tp:
        plan.refusals.append(f"rollout.vllm_tensor_parallel_size {tp} must divide the {s.heads} attention heads")
    if colocate:
        kept = [ln for ln in resident if not ((ln.what == "weights" and ro["offload_model"]) or
                                               (ln.what == "optimizer states" and ro["offload_optimizer"]))]
        plan.phases.append(Phase("rollout (vLLM awake beside the trainer)", kept + [vllm_awake,
                                 Line("CUDA reserve", CUDA_RESERVE)], cluster.gpu_mem,
                                 "lower rollout.vllm_gpu_memory_utilization, or set rollout.offload_model / "
                                 "offload_optimizer true, or use ZeRO-3"))
    engine = vllm_engine(s, cluster, tp, float(ro["vllm_gpu_memory_utilization"]), max_len, "rollout.vllm_")
    if not colocate:
        engine.name += " on the rollout server's GPUs (swift rollout)"
    plan.phases.append(engine)


def _train_fix(train: Training, sw: dict) -> str:
    if not sw["gradient_checkpointing"]:
        return "set swift.gradient_checkpointing true (each layer's activations recomputed in backward)"
    if train.zero_stage is None or train.zero_stage < 3:
        return "set swift.deepspeed to configs/deepspeed/zero3.json (weights split over all GPUs), or lower " \
               "swift.max_length / per_device_train_batch_size"
    change = "lower swift.max_length or per_device_train_batch_size, or add GPUs (NNODES)"
    return f"set swift.tuner_type lora (no full optimizer states), or {change}" if sw["tuner_type"] == "full" \
        else change


def _clip_phase(s: ModelShapes, clip: dict, cluster: Cluster, plan: Plan) -> Phase:
    """The CLIP-style phase: full training of the ViT and/or merger, LLM frozen but backpropagated through."""
    parts = list(clip.get("train") or ["vision", "aligner"])
    stage = zero_stage(clip.get("deepspeed"))
    half = bool(clip.get("bf16", False))
    trainable = sum(s.params[p] for p in parts)
    train = Training(s.total, trainable, stage, half, 2 if half else 4, 2 if half else 4)
    batch = int(clip.get("per_device_train_batch_size", 8))
    visual = int(clip.get("max_pixels", 50176)) // (s.patch * s.merge) ** 2
    tokens = visual + int(clip.get("max_caption_tokens", 77)) + 16  # the query's own words
    dtype = 2 if half else 4
    lines = train.state(cluster.world)
    if stage == 3:
        lines.append(Line("ZeRO-3 gathered weights", 2 * max(s.largest_layer, s.vocab * s.hidden) * dtype))
    # No output layer (vptracker/train/clip.py); the image query's LLM activations are kept because the
    # loss reaches the ViT through the frozen LLM, so clip.py checkpoints every layer by default.
    checkpointing = bool(clip.get("gradient_checkpointing", True))
    acts = activations(s, batch, tokens, 0, dtype, checkpointing, False, visual * s.merge ** 2, True)
    acts = [a for a in acts if a.what != "logits"]
    phase = Phase("CLIP phase step", lines + acts + [Line("CUDA reserve", CUDA_RESERVE)], cluster.gpu_mem,
                  "set clip.deepspeed to configs/deepspeed/zero3.json (vptracker/train/clip.py partitions the "
                  "model at load), or lower clip.per_device_train_batch_size")
    return phase


def plan_infer(cfg: dict, cluster: Cluster, model: str | None = None,
               frame_size: tuple[int, int] = (1920, 1080)) -> Plan:
    """One inference worker's GPUs: the transformers engine on one GPU, or vLLM over tensor_parallel_size.
    Frames are taken to be ``frame_size`` (full HD by default), resized under ``options.max_pixels``."""
    s = resolve_model({"path": cfg.get("model")}, model or cfg.get("model"))
    opts = cfg.get("options") or {}
    task = cfg.get("task", "vptracker_sot")
    options = TaskOptions.from_dict(opts)   # unset (null) options take their defaults
    images = tracking(get_task(task)).images_per_request(options)
    width, height = frame_size
    cap = options.max_pixels
    if opts.get("max_visual_tokens"):   # a cap on tokens, as the command turns it into pixels
        cap = int(opts["max_visual_tokens"]) * (s.patch * s.merge) ** 2
    per_image = visual_tokens(width, height, cap, s.patch * s.merge)   # the frame's own tokens, under the cap
    seq = images * per_image + 512 + int(cfg.get("max_tokens", 256))  # 512: the prompt's words (upper bound)
    batch = int(cfg.get("max_batch_size") or cfg.get("concurrency") or 1)
    dtype = DTYPE_BYTES.get(cfg.get("torch_dtype"), 2)
    plan = Plan(f"inference {task} ({cfg.get('backend', 'transformers')})", cluster, s)
    plan.notes.append(f"requests of {images} frames of {width}x{height} ({per_image} visual tokens each) + "
                      f"{cfg.get('max_tokens', 256)} answer tokens: {seq} tokens")
    kw = cfg.get("engine_kwargs") or {}
    if cfg.get("backend") == "vllm":
        tp = int(kw.get("tensor_parallel_size", 1))
        max_len = int(kw.get("max_model_len") or s.max_position)
        if max_len < seq:
            plan.notes.append(f"engine_kwargs.max_model_len {max_len} < the longest request here ({seq} tokens at "
                              f"{images} images x {per_image} visual tokens): long requests will be cut")
        if cluster.nproc_per_node % tp:
            plan.refusals.append(f"engine_kwargs.tensor_parallel_size {tp} must divide the {cluster.nproc_per_node} "
                                 f"GPUs per node (one worker per {tp} GPUs)")
        plan.phases.append(vllm_engine(s, cluster, tp, float(kw.get("gpu_memory_utilization", 0.9)), max_len,
                                       "engine_kwargs.", dtype))
        plan.notes.append(f"{cluster.world // tp} workers of {tp} GPUs each")
    else:
        lines = [Line("weights", s.total * dtype, "one full copy on the worker's GPU"),
                 Line("KV cache", batch * seq * kv_bytes_per_token(s, 1, dtype), f"{batch} sequences x {seq} tokens"),
                 Line("prefill activations", batch * (images * per_image * s.merge ** 2) * s.vision_hidden * 8 * dtype,
                      "one ViT layer over the batch's patches"),
                 Line("CUDA reserve", CUDA_RESERVE)]
        plan.phases.append(Phase("transformers engine (1 GPU per worker)", lines, cluster.gpu_mem,
                                 "use backend=vllm with engine_kwargs.tensor_parallel_size, or lower "
                                 "concurrency / max_batch_size"))
    plan.check()
    return plan



def check_before_run(cfg, cluster: Cluster | None = None) -> Plan | None:
    """What the stage runner calls before it launches anything (and prints under ``--dry-run``).

    GPU runs only (the ``gpu`` profile): raises :class:`vptracker.plan.memory.PlanError` with the rendered
    plan when it cannot fit. Returns None, after saying why, when there is no config.json to plan
    with (a hub id that is not a preset's and no local directory).
    """
    if (cfg.get("profile") or "gpu") != "gpu":
        return None
    try:
        plan = plan_stage(cfg, cluster or Cluster.from_env())
    except ValueError as err:
        print(f"plan: skipped ({err})")
        return None
    if not plan.fits:
        raise PlanError(plan.render())
    return plan
