"""What makes an engine call cheaper on a CPU, measured at real widths (``bench/infer_bench.py``).

On a CPU every part of a batched call is compute-bound (a one-request call's decoding is
memory-bound instead, which is why batching pays), so the batched loop's speed is the speed of its
matrix products and the work it pads:

* :func:`patch_embed_as_matmul`: the Qwen-VL ViT's patch embedding is a ``Conv3d`` whose kernel
  equals its stride; oneDNN runs it in bfloat16 without the CPU's matrix units, and it was half of
  the vision encoder's time. As the matrix product it is, it costs a few milliseconds.
* :func:`prompt_tokens`: a request's prompt length, so that a call swift cuts into chunks of
  ``max_batch_size`` (the VPTracker config runs 16 sequences 4 by 4) groups prompts of similar
  length: each chunk is padded to its longest prompt, and frame sizes differ between videos.
"""
from __future__ import annotations

from vptracker.models.families import get_family
from vptracker.tasks.lengths import estimate_tokens


def prompt_tokens(request, family: str, max_pixels: int) -> int:
    """A request's prompt length for ordering: its images' tokens at ``max_pixels`` (the family's
    resize rule) plus the estimated tokens of its text."""
    from PIL import Image

    fam = get_family(family)
    total = 0
    for image in request.images:
        if hasattr(image, "size"):
            width, height = image.size
        else:
            try:
                with Image.open(image) as opened:   # reads the header only
                    width, height = opened.size
            except OSError:   # an unreadable image fails in swift's encoding, with its own message
                continue
        total += fam.image_tokens(max(int(width), 1), max(int(height), 1), max_pixels)
    return total + sum(estimate_tokens(m["content"]) for m in request.messages if isinstance(m.get("content"), str))


def patch_embeds(model) -> list:
    """The Qwen-VL patch embeddings: a ``Conv3d`` whose kernel equals its stride, over rows that are
    already one flattened patch each (transformers' ``*PatchEmbed`` modules)."""
    import torch

    found = []
    for module in model.modules():
        proj = getattr(module, "proj", None)
        if (type(module).__name__.endswith("PatchEmbed") and isinstance(proj, torch.nn.Conv3d)
                and proj.kernel_size == proj.stride and proj.padding == (0, 0, 0) and proj.dilation == (1, 1, 1)
                and proj.groups == 1 and hasattr(module, "embed_dim")):
            found.append(module)
    return found


def patch_embed_as_matmul(self, hidden_states):
    """The patch embedding as the matrix product it is: each row of ``hidden_states`` is one patch
    flattened as (channel, time, row, column), the order of the convolution's weight, so the result
    is the convolution's. On a CPU oneDNN runs this ``Conv3d`` in bfloat16 without its matrix units:
    measured here it took 171 of the vision encoder's 321 ms (Qwen2.5-VL-3B widths, 388 patches),
    where the product takes a few ms."""
    import torch.nn.functional as F

    weight = self.proj.weight
    rows = hidden_states.to(weight.dtype).reshape(-1, weight[0].numel())
    return F.linear(rows, weight.reshape(weight.shape[0], -1), self.proj.bias).view(-1, self.embed_dim)
