"""Which attention implementation a run can use here: flash-attn is an opt-in build, not a wheel.

Stage configs ask for ``attn_impl: flash_attn`` (ms-swift's name). flash-attn has no prebuilt wheels
for torch >= 2.10 and is not part of the ``gpu`` extra (README, "GPU install"), so where it is not
importable the run falls back to PyTorch's ``sdpa`` kernels, with a warning that says so.
"""
from __future__ import annotations

import importlib.util
import warnings

FLASH_NAMES = ("flash_attn", "flash_attention_2", "flash_attention_3")


def usable_attn_impl(requested: str | None) -> str | None:
    """``requested``, or ``sdpa`` when it names flash attention and ``flash_attn`` is not installed."""
    if requested not in FLASH_NAMES or importlib.util.find_spec("flash_attn") is not None:
        return requested
    warnings.warn(f"attn_impl {requested!r}: the flash_attn package is not installed (it is built by hand, see the "
                  f"README's GPU install); using 'sdpa' instead", stacklevel=2)
    return "sdpa"
