"""A model's shapes without its weights: the published ``config.json`` instantiated on the meta device.

Every preset in ``configs/models/<preset>.yaml`` has its Hugging Face ``config.json`` next to it as
``configs/models/<preset>.config.json``; a model directory's own ``config.json`` works the same
way. Parameter counts are exact (the real modules are built, on the ``meta`` device, so no memory
is used); ``trust_remote_code`` stays off. InternVL2.5's remote-code layout (``internvl_chat``) is
read through transformers' native InternVL classes, which hold the same tensors.

Parts follow ms-swift's model architecture names: ``vision`` (the ViT), ``aligner`` (the merger or
projector), ``llm`` (decoder layers, norms, embeddings and output layer).
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path

PRESET_DIR = Path(__file__).resolve().parents[2] / "configs" / "models"
# Substrings of parameter names, checked in this order (the merger lives inside the vision module).
ALIGNER_KEYS = ("merger", "multi_modal_projector", "image_newline", "mlp1")
VISION_KEYS = ("visual", "vision_tower", "vision_model")


@dataclass
class ModelShapes:
    """Counts (parameters, not bytes) and the widths the memory plan needs."""
    source: str
    model_type: str
    params: dict[str, int]             # vision / aligner / llm -> count (tied weights counted once)
    lora_linears: dict[str, list[tuple[int, int]]]  # part -> (in, out) of each nn.Linear (lm_head excluded)
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    max_position: int
    vision_hidden: int
    vision_intermediate: int
    vision_layers: int
    merge: int                          # spatial merge: LLM visual token = merge**2 ViT patches
    patch: int
    largest_layer: int                  # parameters of the largest decoder layer (ZeRO-3 gathers one at a time)
    extra: dict = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.params.values())

    def lora_params(self, parts: tuple[str, ...], rank: int) -> int:
        """LoRA's A and B matrices on every linear layer of ``parts`` (ms-swift's ``all-linear``)."""
        return sum(rank * (i + o) for part in parts for i, o in self.lora_linears.get(part, []))


def preset_config_path(preset: str) -> Path:
    return PRESET_DIR / f"{preset}.config.json"


def read_config(source: str | Path) -> tuple[dict, str]:
    """``config.json`` of a preset name, a model directory or a config file; returns (dict, where)."""
    path = Path(str(source))
    if path.is_dir():
        path = path / "config.json"
    elif path.suffix != ".json":
        path = preset_config_path(str(source))
        if not path.is_file():
            known = sorted(p.name[: -len(".config.json")] for p in PRESET_DIR.glob("*.config.json"))
            raise ValueError(f"model {source!r}: not a directory with config.json, a config file, or a preset "
                             f"with a published config ({known})")
    if not path.is_file():
        raise ValueError(f"{path}: no such file (the planner needs the model's config.json, not its weights)")
    try:
        return json.loads(path.read_text()), str(path)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}:{err.lineno}: expected JSON ({err.msg})") from None


def _internvl_as_native(cfg: dict) -> dict:
    """InternVL2.5's remote-code config, expressed with transformers' native InternVL classes."""
    vis, llm = cfg["vision_config"], cfg["llm_config"]
    return {
        "model_type": "internvl",
        "downsample_ratio": cfg.get("downsample_ratio", 0.5),
        "vision_feature_layer": cfg.get("select_layer", -1),
        "text_config": dict(llm),
        "vision_config": {
            "model_type": "internvl_vision", "hidden_size": vis["hidden_size"],
            "intermediate_size": vis["intermediate_size"], "num_hidden_layers": vis["num_hidden_layers"],
            "num_attention_heads": vis["num_attention_heads"], "attention_bias": vis.get("qkv_bias", True),
            "use_qk_norm": vis.get("qk_normalization", False), "image_size": [vis["image_size"]] * 2,
            "patch_size": [vis["patch_size"]] * 2, "norm_type": vis.get("norm_type", "layer_norm"),
            "layer_norm_eps": vis.get("layer_norm_eps", 1e-6), "hidden_act": vis.get("hidden_act", "gelu"),
            "use_mean_pooling": False,
        },
        "tie_word_embeddings": llm.get("tie_word_embeddings", False),
    }


def hf_config(cfg: dict):
    from transformers import AutoConfig

    cfg = dict(cfg)
    if cfg.get("model_type") == "internvl_chat":
        cfg = _internvl_as_native(cfg)
    model_type = cfg.pop("model_type")
    for key in ("architectures", "auto_map", "_commit_hash", "transformers_version", "_name_or_path"):
        cfg.pop(key, None)
    return AutoConfig.for_model(model_type, **cfg)


def _part(name: str) -> str:
    if any(k in name for k in ALIGNER_KEYS):
        return "aligner"
    if any(k in name.split(".") for k in VISION_KEYS):
        return "vision"
    return "llm"


@functools.cache
def _shapes_cached(text: str, source: str) -> ModelShapes:
    import torch
    from transformers import AutoModelForImageTextToText

    raw = json.loads(text)
    config = hf_config(raw)
    with torch.device("meta"):
        model = AutoModelForImageTextToText.from_config(config, trust_remote_code=False)
    params: dict[str, int] = {"vision": 0, "aligner": 0, "llm": 0}
    for name, p in model.named_parameters():  # named_parameters() yields a tied tensor once
        params[_part(name)] += p.numel()
    linears: dict[str, list[tuple[int, int]]] = {"vision": [], "aligner": [], "llm": []}
    largest = 0
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and not name.endswith("lm_head"):
            linears[_part(name)].append((module.in_features, module.out_features))
        if type(module).__name__.endswith("DecoderLayer"):
            largest = max(largest, sum(p.numel() for p in module.parameters()))
    text_cfg = config.get_text_config()
    vis = config.vision_config
    heads = text_cfg.num_attention_heads
    vision_layers = getattr(vis, "depth", None) or vis.num_hidden_layers
    vision_inter = getattr(vis, "intermediate_size", None) or int(vis.embed_dim * vis.mlp_ratio)
    patch = getattr(vis, "patch_size", 14)
    return ModelShapes(
        source=source, model_type=raw.get("model_type", ""), params=params, lora_linears=linears,
        hidden=text_cfg.hidden_size, intermediate=text_cfg.intermediate_size, layers=text_cfg.num_hidden_layers,
        heads=heads, kv_heads=getattr(text_cfg, "num_key_value_heads", None) or heads,
        head_dim=getattr(text_cfg, "head_dim", None) or text_cfg.hidden_size // heads, vocab=text_cfg.vocab_size,
        max_position=getattr(text_cfg, "max_position_embeddings", 32768),
        vision_hidden=getattr(vis, "embed_dim", None) or vis.hidden_size, vision_intermediate=vision_inter,
        vision_layers=vision_layers, merge=_merge_size(raw, vis),
        patch=patch[0] if isinstance(patch, (list, tuple)) else patch, largest_layer=largest,
    )


def _merge_size(raw: dict, vis) -> int:
    """ViT patches per LLM visual token, per side: Qwen's spatial merge, InternVL's pixel shuffle."""
    if raw.get("model_type") == "internvl_chat":
        return round(1 / raw.get("downsample_ratio", 0.5))
    return getattr(vis, "spatial_merge_size", 1)


def model_shapes(source: str | Path) -> ModelShapes:
    """Shapes of a preset name, a model directory or a ``config.json`` (cached per file content)."""
    cfg, where = read_config(source)
    return _shapes_cached(json.dumps(cfg, sort_keys=True), where)
