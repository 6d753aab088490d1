"""Pruning masks m: a boolean tensor per prunable weight, True where the weight survives."""

from __future__ import annotations

import torch
from torch import nn

Mask = dict[str, torch.Tensor]


def full_mask(model: nn.Module, prunable: list[str]) -> Mask:
    params = dict(model.named_parameters())
    return {name: torch.ones_like(params[name], dtype=torch.bool) for name in prunable}


@torch.no_grad()
def apply_mask(model: nn.Module, mask: Mask) -> None:
    """W <- W ⊙ m, leaving pruned weights at exactly +0.0."""
    params = dict(model.named_parameters())
    for name, keep in mask.items():
        params[name].masked_fill_(~keep, 0.0)


def mask_gradients(model: nn.Module, mask: Mask) -> None:
    params = dict(model.named_parameters())
    for name, keep in mask.items():
        grad = params[name].grad
        if grad is not None:
            grad.masked_fill_(~keep, 0.0)


def layer_densities(mask: Mask) -> dict[str, float]:
    return {name: keep.float().mean().item() for name, keep in mask.items()}


def remaining(mask: Mask) -> int:
    return int(sum(keep.sum().item() for keep in mask.values()))


def total(mask: Mask) -> int:
    return sum(keep.numel() for keep in mask.values())


def density(mask: Mask) -> float:
    return remaining(mask) / total(mask)


def compression_ratio(mask: Mask) -> float:
    """Prunable weights / remaining weights (the paper's parameter-efficiency)."""
    kept = remaining(mask)
    return float("inf") if kept == 0 else total(mask) / kept
