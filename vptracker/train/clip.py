"""Stage 2's CLIP-style alignment (OmniPT "Mid Training"), a small trainer on the HF Trainer.

The paper inserts ``<CLS>`` tokens into the input and uses their states to build a similarity
matrix supervised with cross-entropy, training the vision encoder on SYNTH-PEDES image-text pairs.
Here each pair gives two queries (``prompts.clip_image_query`` = the image then ``<CLS>``,
``prompts.clip_text_query`` = the caption then ``<CLS>``); the language model's last-layer state at
``<CLS>`` is the embedding of each, L2-normalised; the loss is CLIP's symmetric cross-entropy over
the batch's image-by-text similarity matrix (row i's positive is column i) at a fixed temperature.

Why not ms-swift's ``--task_type embedding --loss_type infonce``: it pools the last token of the
templated sequence (the chat template's closing tokens, not ``<CLS>``) and its loss is one-way
(query to document), so it does not express the paper's loss. The LLM stays frozen (the paper
trains the vision encoder), so text embeddings are a fixed target the encoder aligns to.
Under torchrun each process's batch forms its own matrix; DeepSpeed comes through the Trainer.

Run: ``python -m vptracker.train.clip --config clip_config.json [--resume_from_checkpoint DIR]``;
the stage runner writes the config. Rows: ``{"images": [path], "caption": text}`` or ms-swift's
embedding layout (``messages`` with the image, ``positive_messages`` with the caption).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from vptracker.models.families import family_names
from vptracker.prompts.texts import CLS_TOKEN, IMAGE, clip_image_query, clip_text_query

VISION_TOKENS = "<|vision_start|><|image_pad|><|vision_end|>"


def read_pairs(files: list[str]) -> list[tuple[str, str]]:
    """(image path, caption) pairs; a malformed row raises naming the file and line."""
    pairs = []
    for name in files:
        with open(name, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    image = row.get("image") or (row.get("images") or [None])[0]
                    caption = row.get("caption")
                    if caption is None and row.get("positive_messages"):
                        caption = row["positive_messages"][0][-1]["content"]
                    if isinstance(image, dict):
                        image = image.get("path")
                    if not image or not caption:
                        raise KeyError("expected an image (image/images) and a caption (caption/positive_messages)")
                except (json.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError) as err:
                    raise ValueError(f"{name}:{lineno}: {err}") from None
                pairs.append((str(image), caption.replace(CLS_TOKEN, "").replace(IMAGE, "").strip()))
    if not pairs:
        raise ValueError(f"no image-caption pairs in {files}")
    return pairs


class PairDataset(torch.utils.data.Dataset):
    def __init__(self, pairs):
        self.pairs = pairs

    def __len__(self):
        return len(self.pairs)

    def __getitem__(self, i):
        return {"image": self.pairs[i][0], "caption": self.pairs[i][1]}


class PairCollator:
    """Tokenises a batch into an image query batch and a caption query batch, both ending in <CLS>."""

    def __init__(self, processor, max_pixels: int, max_caption_tokens: int):
        self.processor = processor
        self.max_pixels = max_pixels
        self.max_caption_tokens = max_caption_tokens

    def __call__(self, rows):
        from PIL import Image

        images = []
        for row in rows:
            with Image.open(row["image"]) as im:
                im = im.convert("RGB")
            scale = min(1.0, (self.max_pixels / (im.width * im.height)) ** 0.5)
            if scale < 1.0:
                im = im.resize((max(28, int(im.width * scale)), max(28, int(im.height * scale))))
            images.append(im)
        image_text = [clip_image_query().replace(IMAGE, VISION_TOKENS)] * len(rows)
        image_batch = self.processor(text=image_text, images=images, return_tensors="pt", padding=True)
        tok = self.processor.tokenizer
        # Truncate the caption, never the <CLS> that closes it.
        captions = [tok.convert_tokens_to_string(tok.tokenize(r["caption"])[: self.max_caption_tokens]) for r in rows]
        text_batch = tok([clip_text_query(c) for c in captions], return_tensors="pt", padding=True)
        return {"image_inputs": dict(image_batch), "text_inputs": dict(text_batch)}


def cls_states(backbone, inputs: dict, cls_id: int) -> torch.Tensor:
    """L2-normalised last-layer states at each row's last <CLS> token."""
    out = backbone(**inputs, use_cache=False)
    hidden = out.last_hidden_state
    is_cls = inputs["input_ids"] == cls_id
    if not bool(is_cls.any(dim=1).all()):
        raise ValueError("a query lost its <CLS> token (truncated or not tokenised as one token)")
    positions = torch.arange(is_cls.shape[1], device=is_cls.device).expand_as(is_cls)
    last = torch.where(is_cls, positions, torch.full_like(positions, -1)).max(dim=1).values
    states = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    return F.normalize(states.float(), dim=-1)


def clip_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, temperature: float) -> torch.Tensor:
    """CLIP's symmetric cross-entropy over the image-by-text similarity matrix."""
    logits = image_emb @ text_emb.T / temperature
    target = torch.arange(logits.shape[0], device=logits.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def set_trainable(model, parts: list[str]) -> int:
    """Freezes everything, then unfreezes the vision encoder and/or its aligner (the merger)."""
    known = {"vision", "aligner"}
    if not parts or set(parts) - known:
        raise ValueError(f"clip.train: expected a non-empty subset of {sorted(known)}, got {parts}")
    for p in model.parameters():
        p.requires_grad_(False)
    visual = model.model.visual
    count = 0
    for name, p in visual.named_parameters():
        is_aligner = name.startswith(("merger", "deepstack_merger"))
        if ("aligner" in parts and is_aligner) or ("vision" in parts and not is_aligner):
            p.requires_grad_(True)
            count += p.numel()
    return count


def training_arguments(cfg: dict):
    """The Trainer's arguments. Built before the model: with a ZeRO-3 ``deepspeed`` config this
    registers transformers' DeepSpeed config, so ``from_pretrained`` creates the model inside
    ``deepspeed.zero.Init`` and each process loads only its shard (a 72B model never fits whole)."""
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=cfg["output_dir"], learning_rate=float(cfg.get("learning_rate", 1e-5)),
        # transformers 5 reads a float warmup_steps below 1 as a ratio (warmup_ratio is gone)
        warmup_steps=float(cfg.get("warmup_ratio", 0.0)), num_train_epochs=float(cfg.get("num_train_epochs", 1)),
        max_steps=int(cfg.get("max_steps") or -1), lr_scheduler_type=cfg.get("lr_scheduler_type") or "linear",
        per_device_train_batch_size=int(cfg.get("per_device_train_batch_size", 8)),
        gradient_accumulation_steps=int(cfg.get("gradient_accumulation_steps", 1)),
        # The loss reaches the ViT through the frozen LLM, whose activations would otherwise all be kept.
        gradient_checkpointing=bool(cfg.get("gradient_checkpointing", True)),
        gradient_checkpointing_kwargs={"use_reentrant": False},
        weight_decay=float(cfg.get("weight_decay", 0.0)), bf16=bool(cfg.get("bf16", False)),
        deepspeed=cfg.get("deepspeed"), save_steps=int(cfg.get("save_steps", 500)),
        save_total_limit=cfg.get("save_total_limit"), logging_steps=int(cfg.get("logging_steps", 10)),
        dataloader_num_workers=int(cfg.get("dataloader_num_workers", 0)), seed=int(cfg.get("seed", 42)),
        report_to=cfg.get("report_to", "tensorboard"), remove_unused_columns=False, use_cpu=not torch.cuda.is_available(),
    )


def build_trainer(cfg: dict):
    from transformers import AutoModelForImageTextToText, AutoProcessor, Trainer

    family = cfg.get("family")
    if family not in family_names(clip_phase=True):
        raise ValueError(f"clip: the CLIP-style stage supports the families {family_names(clip_phase=True)} "
                         f"(it reads the Qwen-VL vision tower and merger), got {family!r}")
    args = training_arguments(cfg)  # first: see its docstring
    trust = cfg.get("trust_remote_code") is True  # off unless the stage config allows it (recorded)
    processor = AutoProcessor.from_pretrained(cfg["model"], trust_remote_code=trust)
    if CLS_TOKEN not in processor.tokenizer.get_vocab():
        processor.tokenizer.add_special_tokens({"additional_special_tokens": [CLS_TOKEN]})
    cls_id = processor.tokenizer.convert_tokens_to_ids(CLS_TOKEN)
    dtype = getattr(torch, cfg.get("torch_dtype") or ("bfloat16" if args.bf16 else "float32"))
    model = AutoModelForImageTextToText.from_pretrained(cfg["model"], dtype=dtype, trust_remote_code=trust)
    # num_embeddings, not weight.shape: under ZeRO-3 a partitioned weight has shape (0,).
    if cls_id >= model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(len(processor.tokenizer), mean_resizing=True)
    if set_trainable(model, list(cfg.get("train") or ["vision", "aligner"])) == 0:
        raise ValueError("clip.train selects no parameters of this model")
    temperature = float(cfg.get("temperature", 0.07))

    class ClipTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            backbone = model.model  # the multimodal backbone without the LM head
            image_emb = cls_states(backbone, inputs["image_inputs"], cls_id)
            text_emb = cls_states(backbone, inputs["text_inputs"], cls_id)
            loss = clip_loss(image_emb, text_emb, temperature)
            return (loss, {"image_emb": image_emb, "text_emb": text_emb}) if return_outputs else loss

    dataset = PairDataset(read_pairs(cfg["dataset"]))
    collator = PairCollator(processor, int(cfg.get("max_pixels", 50176)), int(cfg.get("max_caption_tokens", 77)))
    decay_schedule(args, len(dataset), float(cfg.get("lr_decay_ratio", 0.1)))
    trainer = ClipTrainer(model=model, args=args, train_dataset=dataset, data_collator=collator)
    return trainer, processor


def decay_schedule(args, rows: int, ratio: float) -> None:
    """warmup_stable_decay (the paper's warm-up / constant / decay) needs its decay length in steps:
    ``ratio`` of the run's steps, as the swift stages compute it (train/commands.py)."""
    if args.lr_scheduler_type != "warmup_stable_decay" or "num_decay_steps" in (args.lr_scheduler_kwargs or {}):
        return
    steps = args.max_steps
    if steps is None or steps <= 0:
        per_step = args.per_device_train_batch_size * args.gradient_accumulation_steps * max(1, args.world_size)
        steps = math.ceil(rows / per_step) * math.ceil(args.num_train_epochs)
    args.lr_scheduler_kwargs = {**(args.lr_scheduler_kwargs or {}), "num_decay_steps": max(1, round(ratio * steps))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="CLIP-style <CLS> alignment of the vision encoder")
    parser.add_argument("--config", required=True, help="JSON written by the stage runner")
    parser.add_argument("--resume_from_checkpoint", default=None)
    args = parser.parse_args(argv)
    cfg = json.loads(Path(args.config).read_text())
    trainer, processor = build_trainer(cfg)
    trainer.train(resume_from_checkpoint=args.resume_from_checkpoint)
    final = Path(cfg["output_dir"]) / "final"
    # Full weights and the processor (with <CLS>), so the pretext SFT can start from them.
    trainer.save_model(str(final))
    if trainer.is_world_process_zero():
        processor.save_pretrained(str(final))
    return 0


if __name__ == "__main__":
    sys.exit(main())
