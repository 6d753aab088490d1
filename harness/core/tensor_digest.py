"""Fingerprints of tensors: equal fingerprints, bit-identical tensors."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import torch
from torch import nn


def _hashed(tensors: Mapping[str, torch.Tensor], h: hashlib._Hash, layout: bool = False) -> hashlib._Hash:
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        h.update(name.encode())
        if layout:
            h.update(f":{tensor.dtype}:{tuple(tensor.shape)}".encode())
        h.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())  # as bytes: any dtype, bf16 too
    return h


def digest(tensors: Mapping[str, torch.Tensor]) -> str:
    """A fingerprint of weights or a mask (a cell's ``weights_sha256``, ``mask_sha256``)."""
    return _hashed(tensors, hashlib.sha256()).hexdigest()[:16]


def module_digest(module: nn.Module) -> str:
    """A fingerprint of what a module computes with: its class, and every parameter and buffer by name,
    dtype, shape and value. Two modules of one class with equal fingerprints give the same outputs."""
    kind = f"{type(module).__module__}.{type(module).__qualname__}"
    return _hashed(module.state_dict(), hashlib.sha256(kind.encode()), layout=True).hexdigest()
