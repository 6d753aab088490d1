"""Fingerprints of tensors: equal fingerprints, bit-identical tensors of the same names, dtypes and shapes."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import torch
from torch import nn


def digest(tensors: Mapping[str, torch.Tensor]) -> str:
    """A fingerprint of weights or a mask (a cell's ``weights_sha256``, ``mask_sha256``)."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        h.update(name.encode())
        h.update(tensors[name].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def module_digest(module: nn.Module) -> str:
    """A fingerprint of what a module computes with: its class, and every parameter and buffer by name,
    dtype, shape and value. Two modules of one class with equal fingerprints give the same outputs."""
    h = hashlib.sha256(f"{type(module).__module__}.{type(module).__qualname__}".encode())
    for name, tensor in sorted(module.state_dict(keep_vars=False).items()):
        h.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()
