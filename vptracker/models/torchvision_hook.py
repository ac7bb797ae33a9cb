"""Makes the registry's CUDA-linked torchvision importable on a CPU-only torch.

torchvision registers fake kernels for `torchvision::nms` at import; when its `_C` extension cannot
load (CPU torch), those op schemas do not exist and `import torchvision` fails. The hook, installed
as a `.pth` file, declares the schemas just before torchvision is imported. It is only installed
when torch has no CUDA, and it checks again at run time so it never acts on a CUDA build.
"""
from __future__ import annotations

import sys
import sysconfig
from pathlib import Path

PTH_NAME = "vptracker_torchvision_hook.pth"
MODULE_NAME = "_vptracker_torchvision_hook"

HOOK_SOURCE = '''
import importlib.abc, sys

_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}

def _declare_ops():
    import torch
    if torch.version.cuda is not None or torch.version.hip is not None:
        return
    for name, schema in _SCHEMAS.items():
        try:
            torch._C._dispatch_find_schema_or_throw("torchvision::" + name, "")
        except RuntimeError:
            lib = torch.library.Library("torchvision", "FRAGMENT")
            lib.define(schema)
            _LIBS.append(lib)

_LIBS = []

class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torchvision":
            sys.meta_path.remove(self)
            try:
                _declare_ops()
            except Exception:
                pass
        return None

sys.meta_path.insert(0, _Finder())
'''


def _site_packages() -> Path:
    return Path(sysconfig.get_paths()["purelib"])


def install() -> str:
    import torch

    site = _site_packages()
    pth, module = site / PTH_NAME, site / f"{MODULE_NAME}.py"
    if torch.version.cuda is not None or torch.version.hip is not None:
        for path in (pth, module):
            path.unlink(missing_ok=True)
        return f"torch {torch.__version__} has CUDA: torchvision hook not needed"
    module.write_text(HOOK_SOURCE)
    pth.write_text(f"import {MODULE_NAME}\n")
    return f"torchvision CPU hook installed in {site}"


if __name__ == "__main__":
    if sys.argv[1:] != ["install"]:
        sys.exit("usage: python -m vptracker.models.torchvision_hook install")
    print(install())
