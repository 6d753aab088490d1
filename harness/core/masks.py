"""Pruning masks m: a boolean tensor per prunable weight, True where the weight survives."""

from __future__ import annotations

import torch
from torch import nn

Mask = dict[str, torch.Tensor]


def full_mask(model: nn.Module, prunable: list[str]) -> Mask:
    params = dict(model.named_parameters())
    return {name: torch.ones_like(params[name], dtype=torch.bool) for name in prunable}


class BoundMask:
    """A mask bound to a model's parameters once, for TRAIN to apply at every step without looking
    parameters up or inverting the mask again."""

    def __init__(self, model: nn.Module, mask: Mask) -> None:
        params = dict(model.named_parameters())
        self.pruned = [(params[name], ~keep) for name, keep in mask.items()]

    @torch.no_grad()
    def apply(self) -> None:
        """W <- W ⊙ m, leaving pruned weights at exactly +0.0."""
        for weight, pruned in self.pruned:
            weight.masked_fill_(pruned, 0.0)

    def mask_gradients(self) -> None:
        for weight, pruned in self.pruned:
            if weight.grad is not None:
                weight.grad.masked_fill_(pruned, 0.0)


def apply_mask(model: nn.Module, mask: Mask) -> None:
    """W <- W ⊙ m, leaving pruned weights at exactly +0.0."""
    BoundMask(model, mask).apply()


def mask_gradients(model: nn.Module, mask: Mask) -> None:
    BoundMask(model, mask).mask_gradients()


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
