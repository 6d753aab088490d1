"""Make ``import torchvision`` (and so ``import timm``) work with the CPU build of torch.

The only torchvision wheel that accepts torch 2.13.0 is a CUDA build whose ``_C`` extension does not
load next to a CPU torch; its import then fails registering fake kernels for ``torchvision::nms``
and ``torchvision::qnms``. Declaring those two schemas first lets models, transforms and datasets
work (nms itself stays unavailable, and image decoding goes through PIL). Done only when the
extension really fails to load, and at package import so that every process gets it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

_library: torch.library.Library | None = None


def extension_loads() -> bool:
    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.origin is None:
        return True  # not installed: nothing to patch
    candidates = list(Path(spec.origin).parent.glob("_C*.so"))
    if not candidates:
        return False
    try:
        torch.ops.load_library(str(candidates[0]))
    except (OSError, RuntimeError):
        return False
    return True


def install() -> None:
    global _library
    if _library is not None or extension_loads():
        return
    _library = torch.library.Library("torchvision", "DEF")
    _library.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _library.define("qnms(Tensor qdets, Tensor scores, float iou_threshold) -> Tensor")
