"""Where a transformers VLM's generate() time goes: vision encoder, prefill, decode, output layer.

:class:`Phases` hooks the model's modules (wall time between each module's pre- and post-forward
hook; CPU ops are synchronous, so the time is the module's) and sorts the language model's calls
into prefill (more than one new position) and decode (one), and the output layer's calls with them.
It also records the padding share of every prefill batch: positions the attention mask masks out,
which a batch of unequal prompts computes for nothing. Used by ``bench/infer_bench.py --profile``.
"""
from __future__ import annotations

import time
from collections import defaultdict

PARTS = ("vision", "prefill", "decode", "head_prefill", "head_decode")


def _find(model, names: tuple[str, ...]):
    for name in names:
        module = model
        for part in name.split("."):
            module = getattr(module, part, None)
            if module is None:
                break
        if module is not None:
            return module
    raise ValueError(f"{type(model).__name__}: none of {names} found")


class Phases:
    """Accumulated seconds per part (:data:`PARTS`) and prefill padding, from forward hooks."""

    def __init__(self, model):
        self.seconds: dict[str, float] = defaultdict(float)
        self.padded = self.positions = 0
        self._start: dict[str, float] = {}
        self._stage = "prefill"
        vision = _find(model, ("model.visual", "visual", "model.vision_tower", "vision_tower"))
        language = _find(model, ("model.language_model", "language_model", "model.model"))
        head = _find(model, ("lm_head",))
        self._handles = [
            vision.register_forward_pre_hook(lambda m, a: self._begin("vision")),
            vision.register_forward_hook(lambda m, a, o: self._end("vision")),
            language.register_forward_pre_hook(self._begin_language, with_kwargs=True),
            language.register_forward_hook(lambda m, a, o: self._end(self._stage)),
            head.register_forward_pre_hook(lambda m, a: self._begin("head")),
            head.register_forward_hook(lambda m, a, o: self._end("head_" + self._stage)),
        ]

    def _begin(self, key: str) -> None:
        self._start[key] = time.perf_counter()

    def _end(self, part: str) -> None:
        key = "head" if part.startswith("head") else ("language" if part in ("prefill", "decode") else part)
        self.seconds[part] += time.perf_counter() - self._start.pop(key)

    def _begin_language(self, module, args, kwargs) -> None:
        embeds = kwargs.get("inputs_embeds")
        ids = kwargs.get("input_ids")
        tokens = embeds.shape[1] if embeds is not None else ids.shape[1]
        self._stage = "prefill" if tokens > 1 else "decode"
        mask = kwargs.get("attention_mask")
        if self._stage == "prefill" and mask is not None and getattr(mask, "dim", lambda: 0)() == 2:
            self.positions += int(mask.numel())
            self.padded += int(mask.numel() - mask.sum())
        self._start["language"] = time.perf_counter()

    def take(self) -> dict:
        """The seconds and padding since the last call, then zeroed."""
        out = {part: self.seconds.get(part, 0.0) for part in PARTS}
        out["padding"] = self.padded / self.positions if self.positions else 0.0
        self.seconds.clear()
        self.padded = self.positions = 0
        return out

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
