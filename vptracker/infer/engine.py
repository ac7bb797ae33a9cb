"""The engine interface the tracking loops talk to, and its ms-swift implementations.

A tracking loop only ever calls :meth:`Engine.generate` (a batch of :class:`Request` in, one answer
text per request out) or, for engines that batch continuously, ``await engine.agenerate(request)``.
It never sees a concrete engine, so the same loop runs on a scripted fake in tests, on swift's
``TransformersEngine`` (CPU and GPU) and on swift's ``VllmEngine`` (GPU, the ``gpu`` extra).

Decoding is stated, not inherited: every parameter (:class:`Decoding`: max_tokens, temperature,
top_p, top_k, repetition_penalty) comes from our config, and the checkpoint's own
``generation_config.json`` (real Qwen2.5-VL checkpoints carry ``repetition_penalty 1.05``) is set
aside with a message naming what it held. Greedy by default. Model folders are data: a folder whose
config files name their own code is refused unless ``trust_remote_code`` is set (see
:mod:`vptracker.models.folder`). Every image is resized by the engine under ``min_pixels`` /
``max_pixels`` passed per request (swift hands them to qwen-vl-utils' ``fetch_image``), and the
trackers map boxes with :func:`vptracker.models.families.coord_map` under the same two numbers,
so the model's coordinates and ours agree. On a CPU the transformers engine runs the ViT's patch
embedding as a matrix product and orders the requests of a call that swift cuts into chunks by
prompt length (:mod:`vptracker.infer.engine_speed`, measured in ``bench/infer_bench.py``).
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from vptracker.boxes import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS
from vptracker.config import ConfigError
from vptracker.infer.engine_speed import patch_embed_as_matmul, patch_embeds, prompt_tokens
from vptracker.models.families import detect_family, get_family  # detect_family: part of vptracker.infer's API
from vptracker.models.folder import ModelDirError, check_model_dir, remote_code_entries, remote_code_guard

log = logging.getLogger(__name__)

BACKENDS = ("transformers", "vllm")
MAX_CONSECUTIVE_FAILURES = 8  # async path: this many failed requests in a row is a broken engine, not a bad input


@dataclass
class Request:
    """One model call: chat ``messages`` (user turns hold ``<image>`` tags) and their ``images``.

    ``images`` are PIL images or file paths, in tag order. ``audit`` describes the request for the
    responses log (image paths, crops, outlines, frame numbers); it is never sent to the model.
    """

    messages: list[dict]
    images: list[Any] = field(default_factory=list)
    audit: dict = field(default_factory=dict)

    @classmethod
    def user(cls, text: str, images: Sequence[Any] = (), **audit) -> Request:
        return cls([{"role": "user", "content": text}], list(images), audit)

    @property
    def prompt(self) -> str:
        """The last user turn (the question this call asks)."""
        for message in reversed(self.messages):
            if message.get("role") == "user":
                return message["content"]
        return ""

    def to_json(self) -> dict:
        images = [str(im) if isinstance(im, (str, Path)) else f"<{type(im).__name__} {getattr(im, 'size', '')}>"
                  for im in self.images]
        return {"messages": self.messages, "images": images, **self.audit}


@runtime_checkable
class Engine(Protocol):
    """What a tracking loop needs from a model: answers for a batch of requests, in order."""

    def generate(self, requests: Sequence[Request]) -> list[str]: ...


class CallableEngine:
    """An engine from a function ``fn(request) -> str`` (scripted fakes, baselines, tests)."""

    def __init__(self, fn: Callable[[Request], str]):
        self.fn = fn
        self.calls = 0           # engine calls, to check batching
        self.batch_sizes: list[int] = []

    def generate(self, requests: Sequence[Request]) -> list[str]:
        self.calls += 1
        self.batch_sizes.append(len(requests))
        return [self.fn(r) for r in requests]

    async def agenerate(self, request: Request) -> str:
        return self.generate([request])[0]


@dataclass(frozen=True)
class Decoding:
    """Every decoding parameter, stated (configs/infer/base.yaml); nothing comes from the checkpoint."""

    max_tokens: int = 256
    temperature: float = 0.0          # 0: greedy
    top_p: float = 1.0                # 1: no nucleus cut
    top_k: int = 0                    # 0: no top-k cut
    repetition_penalty: float = 1.0   # 1: none

    def __post_init__(self):
        checks = {"max_tokens": self.max_tokens >= 1, "temperature": 0 <= self.temperature < math.inf,
                  "top_p": 0 < self.top_p <= 1, "top_k": self.top_k >= 0,
                  "repetition_penalty": 0 < self.repetition_penalty < math.inf}
        expected = {"max_tokens": ">= 1", "temperature": ">= 0", "top_p": "in (0, 1]", "top_k": ">= 0 (0: off)",
                    "repetition_penalty": "> 0"}
        for key, ok in checks.items():
            if not ok:
                raise ConfigError(f"decoding {key}={getattr(self, key)!r}: expected {expected[key]}")

    @classmethod
    def from_config(cls, cfg: dict) -> Decoding:
        """The decoding keys of an inference config (unset keys take the defaults above)."""
        types = {"max_tokens": int, "temperature": float, "top_p": float, "top_k": int, "repetition_penalty": float}
        values = {}
        for key, kind in types.items():
            if cfg.get(key) is None:
                continue
            try:
                values[key] = kind(cfg[key])
            except (TypeError, ValueError):
                raise ConfigError(f"decoding {key}={cfg[key]!r}: expected a number ({kind.__name__})") from None
        return cls(**values)

    def to_dict(self) -> dict:
        return asdict(self)


def _vocab_size(swift_engine) -> int:
    tokenizer = getattr(swift_engine, "tokenizer", None)
    if tokenizer is not None:
        return len(tokenizer)
    config = getattr(getattr(swift_engine, "model", None), "config", None)
    size = getattr(getattr(config, "text_config", config), "vocab_size", None)
    if not size:
        raise ValueError("top_k 0 (no cut) with sampling needs the engine's vocabulary size; set top_k > 0")
    return int(size)


# What a checkpoint's generation config can say about decoding (everything else in it is kept:
# token ids, cache settings). Each is reset, so only our request's values apply.
_DECODING_KEYS = ("do_sample", "temperature", "top_p", "top_k", "min_p", "typical_p", "epsilon_cutoff", "eta_cutoff",
                  "repetition_penalty", "encoder_repetition_penalty", "no_repeat_ngram_size", "length_penalty",
                  "num_beams", "max_new_tokens", "bad_words_ids", "suppress_tokens", "begin_suppress_tokens")


def _set_aside_generation_config(swift_engine, backend: str) -> dict:
    """Replaces the engine's checkpoint generation config by a neutral one; returns what it held.

    swift fills every request parameter left unset (and transformers every ``None``) from it, so a
    checkpoint's ``repetition_penalty`` or ``top_k`` would otherwise apply behind our config's back.
    """
    old = getattr(swift_engine, "generation_config", None)
    if old is None:
        return {}
    if backend == "vllm":   # a vLLM SamplingParams built from generation_config.json
        # swift reads only `stop` from it besides the sampling values (stop ids come from the template)
        fresh = type(old)(**({"stop": old.stop} if getattr(old, "stop", None) else {}))
        held = {k: getattr(old, k) for k in ("temperature", "top_p", "top_k", "min_p", "repetition_penalty",
                                             "max_tokens") if getattr(old, k, None) != getattr(fresh, k, None)}
    else:                   # a transformers GenerationConfig, shared with the model
        import copy

        from transformers import GenerationConfig

        default = GenerationConfig()
        held = {k: getattr(old, k) for k in _DECODING_KEYS if getattr(old, k, None) != getattr(default, k, None)}
        fresh = copy.deepcopy(old)
        for key in _DECODING_KEYS:
            setattr(fresh, key, getattr(default, key, None))
        if getattr(swift_engine, "model", None) is not None:
            swift_engine.model.generation_config = fresh
    swift_engine.generation_config = fresh
    if held:
        log.warning("the checkpoint's generation config sets %s; ignored: decoding comes from the config (%s)",
                    ", ".join(f"{k}={v!r}" for k, v in sorted(held.items())), "configs/infer/base.yaml")
    return held


class SwiftEngine:
    """:class:`Engine` over a swift infer engine (``TransformersEngine`` or ``VllmEngine``)."""

    def __init__(self, swift_engine, family: str, *, max_tokens: int = 256, temperature: float = 0.0,
                 min_pixels: int = DEFAULT_MIN_PIXELS, max_pixels: int = DEFAULT_MAX_PIXELS,
                 backend: str = "transformers", decoding: Decoding | None = None):
        from swift import RequestConfig

        self.swift = swift_engine
        self.family = family
        self.backend = backend
        self.min_pixels, self.max_pixels = int(min_pixels), int(max_pixels)
        self.decoding = decoding or Decoding(max_tokens=max_tokens, temperature=temperature)
        # every field set, so swift leaves none to the checkpoint
        request = self.decoding.to_dict()
        if backend != "vllm" and request["top_k"] == 0 and request["temperature"] > 0:
            # swift turns top_k 0 into None and transformers then applies its global default 50:
            # a cut at the whole vocabulary is the stated "no cut"
            request["top_k"] = _vocab_size(swift_engine)
        self.request_config = RequestConfig(**request)
        self.checkpoint_generation_config = _set_aside_generation_config(swift_engine, backend)
        self._failures = 0
        self.sort_by_length = True   # see _order
        self.patch_embed_matmul(True)

    def patch_embed_matmul(self, enabled: bool) -> int:
        """Runs the vision encoder's patch embedding as a matrix product (:mod:`vptracker.infer.engine_speed`)
        when the model is on a CPU; ``False`` restores the convolution. Returns the modules changed."""
        import types

        model = getattr(self.swift, "model", None)
        device = getattr(model, "device", None)
        if self.backend != "transformers" or model is None or getattr(device, "type", "cpu") != "cpu":
            return 0
        modules = patch_embeds(model)
        for module in modules:
            if enabled:
                module.forward = types.MethodType(patch_embed_as_matmul, module)
            else:
                module.__dict__.pop("forward", None)   # the class's own forward again
        return len(modules)

    def _swift_request(self, request: Request):
        from swift import InferRequest

        return InferRequest(messages=[dict(m) for m in request.messages], images=list(request.images),
                            chat_template_kwargs={"min_pixels": self.min_pixels, "max_pixels": self.max_pixels})

    @staticmethod
    def _text(response) -> str:
        if isinstance(response, BaseException) or response is None:
            return ""
        return response.choices[0].message.content or ""

    def generate(self, requests: Sequence[Request]) -> list[str]:
        if not requests:
            return []
        order = self._order(requests)
        ordered = [requests[i] for i in order]
        batch = [self._swift_request(r) for r in ordered]
        try:
            responses = self.swift.infer(batch, self.request_config, use_tqdm=False)
        except Exception as err:  # noqa: BLE001  one bad request must not sink the others: retry one by one
            log.warning("batched inference failed (%s); retrying %d requests one at a time", err, len(batch))
            responses = [self._single(one, request) for one, request in zip(batch, ordered)]
            if all(isinstance(r, BaseException) for r in responses):
                raise RuntimeError(f"every request of the batch failed; first error: {responses[0]}") from responses[0]
        answers = [""] * len(requests)
        for position, index in enumerate(order):
            answers[index] = self._text(responses[position])
        return answers

    def _order(self, requests: Sequence[Request]) -> list[int]:
        """The order requests go to swift in: shortest prompt first when swift will cut the call into
        chunks of ``max_batch_size`` (the transformers backend runs chunk by chunk, each padded to its
        longest prompt), so that each chunk holds prompts of similar length; as given otherwise."""
        limit = int(getattr(self.swift, "max_batch_size", 0) or 0)
        if not self.sort_by_length or self.backend != "transformers" or limit <= 0 or len(requests) <= limit:
            return list(range(len(requests)))
        lengths = [prompt_tokens(r, self.family, self.max_pixels) for r in requests]
        return sorted(range(len(requests)), key=lambda i: lengths[i])

    def _single(self, swift_request, request: Request):
        try:
            return self.swift.infer([swift_request], self.request_config, use_tqdm=False)[0]
        except Exception as err:  # noqa: BLE001  logged with the request; the tracker keeps its box
            log.warning("request %s failed, answering empty: %s", request.audit, err)
            return err

    async def agenerate(self, request: Request) -> str:
        """One request through swift's async path (vLLM's continuous batching keeps the GPU full)."""
        try:
            response = await self.swift.infer_async(self._swift_request(request), self.request_config)
        except Exception as err:  # a lone failure answers empty; a run of them is systemic
            self._failures += 1
            if self._failures >= MAX_CONSECUTIVE_FAILURES:
                raise RuntimeError(f"{self._failures} requests in a row failed; last error: {err}") from err
            log.warning("request %s failed, answering empty: %s", request.audit, err)
            return ""
        self._failures = 0
        return self._text(response)


def make_engine(model_dir: str | Path, family: str | None = None, adapter: str | Path | None = None,
                backend: str = "transformers", *, max_batch_size: int = 16, max_tokens: int = 256,
                temperature: float = 0.0, min_pixels: int = DEFAULT_MIN_PIXELS,
                max_pixels: int = DEFAULT_MAX_PIXELS, special_tokens: Sequence[str] = (),
                torch_dtype: str | None = None, engine_kwargs: dict | None = None,
                decoding: Decoding | None = None, trust_remote_code: bool = False) -> SwiftEngine:
    """An :class:`Engine` over ms-swift for a local model directory (and optional LoRA adapter).

    ``special_tokens`` are added to the tokenizer as swift's ``new_special_tokens`` do in training
    (a checkpoint that already holds them, like the released VPTracker one, is left unchanged).
    ``backend="vllm"`` needs the ``gpu`` extra; ``engine_kwargs`` go to the swift engine as is
    (e.g. ``gpu_memory_utilization``, ``tensor_parallel_size``). ``decoding`` (default: greedy from
    ``max_tokens``/``temperature``) states every decoding parameter. A model or adapter folder
    that names its own code is refused unless ``trust_remote_code``.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise FileNotFoundError(f"model directory {model_dir} does not exist")
    if adapter is not None and not Path(adapter).is_dir():
        raise FileNotFoundError(f"adapter directory {adapter} does not exist")
    model_type = check_model_dir(model_dir, trust_remote_code).get("model_type")
    if adapter is not None and not trust_remote_code and (code := remote_code_entries(adapter)):
        name = next(iter(code))
        raise ModelDirError(f"{Path(adapter) / name}: auto_map names code shipped in the adapter folder; "
                            "refused (pass --trust-remote-code only for a folder whose code you have read)")
    fam = get_family(family or detect_family(model_dir, trust_remote_code))
    family = fam.name
    # swift's names for this checkpoint: InternVL2.5 as remote code (internvl_chat) or native (internvl)
    swift_model_type, template = fam.swift_names(model_type)
    decoding = decoding or Decoding(max_tokens=max_tokens, temperature=temperature)
    # Checkpoints trained through our rendering templates name them (vptracker_<family>) in their
    # args.json, which swift reads back when loading; importing the plugin registers them (here, not at
    # the top: it loads torch, transformers and ms-swift).
    from vptracker.models.swift_plugin import TEMPLATE_PREFIX

    kwargs = dict(engine_kwargs or {})
    if "trust_remote_code" in kwargs:
        raise ValueError("engine_kwargs.trust_remote_code: set trust_remote_code (--trust-remote-code) instead")
    if torch_dtype:
        import torch

        kwargs["torch_dtype"] = getattr(torch, torch_dtype)
    adapters = [str(adapter)] if adapter is not None else None
    # swift 4.6 loads with trust_remote_code=True whatever it is told: the guard makes that a refusal
    with remote_code_guard(allowed=trust_remote_code):
        if backend == "transformers":
            from swift import TransformersEngine

            if special_tokens:
                kwargs["new_special_tokens"] = list(special_tokens)
            # Qwen-VL: our template, swift's own plus media token ids read from the tokenizer (see swift_plugin)
            template_type = TEMPLATE_PREFIX + template if fam.render_plugin else template
            swift_engine = TransformersEngine(str(model_dir), model_type=swift_model_type,
                                              template_type=template_type, adapters=adapters,
                                              max_batch_size=max_batch_size, **kwargs)
        else:
            swift_engine = _vllm_engine(model_dir, (swift_model_type, template), adapters, max_batch_size,
                                        special_tokens, kwargs, trust_remote_code)
    return SwiftEngine(swift_engine, family, min_pixels=min_pixels, max_pixels=max_pixels, backend=backend,
                       decoding=decoding)


def _vllm_engine(model_dir: Path, swift_names: tuple[str, str], adapters, max_batch_size: int, special_tokens, kwargs,
                 trust_remote_code: bool = False):
    try:
        import vllm  # noqa: F401
    except ImportError:
        raise ImportError("backend 'vllm' needs vLLM, which is in the GPU extra: "
                          "pip install -c scripts/constraints.txt -e '.[gpu]' (or set backend=transformers)") from None
    from swift.infer_engine import VllmEngine

    if special_tokens:
        # vLLM reads the tokenizer from disk: new tokens must already be saved with the checkpoint.
        from transformers import AutoTokenizer

        vocab = AutoTokenizer.from_pretrained(str(model_dir), trust_remote_code=trust_remote_code).get_vocab()
        missing = [t for t in special_tokens if t not in vocab]
        if missing:
            raise ValueError(f"{model_dir}: tokenizer lacks special tokens {missing}; the vLLM backend "
                             "cannot add them at load time (use a checkpoint trained with them)")
    kwargs.setdefault("max_num_seqs", max_batch_size)
    kwargs.setdefault("use_async_engine", True)
    if adapters:
        kwargs.setdefault("enable_lora", True)
    class StatedVllmEngine(VllmEngine):
        """swift hard-codes ``trust_remote_code=True`` in vLLM's engine arguments; ours says what we chose.

        (vLLM loads the model in worker processes, where the in-process guard does not reach.)
        """

        def _prepare_engine(self) -> None:
            self.engine_args.trust_remote_code = trust_remote_code
            super()._prepare_engine()

    model_type, template = swift_names
    return StatedVllmEngine(str(model_dir), model_type=model_type, template_type=template, adapters=adapters, **kwargs)
