"""The magnitude strategies: the largest |w| across all layers (the paper's, the default), within each
layer, and across layers with some tensors left dense (GNMT's attention, as Zhu & Gupta kept it)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from harness.core.errors import HarnessError
from harness.core.masks import Mask
from harness.core.protocol import DEFAULT_PRUNING
from methods.pruning import (
    Prunes,
    PruningInput,
    PruningStrategy,
    Target,
    keep_largest_across,
    keep_largest_per_layer,
    register_pruning,
)


def magnitudes(weights: dict[str, torch.Tensor], mask: Mask) -> dict[str, torch.Tensor]:
    return {n: weights[n].detach().abs() for n in mask}


def global_magnitude(weights: dict[str, torch.Tensor], mask: Mask, density: float) -> Mask:
    """Keep the ``density`` fraction of all prunable weights with the largest |w|, across layers."""
    return keep_largest_across(magnitudes(weights, mask), mask, density)


register_pruning(PruningStrategy(
    name=DEFAULT_PRUNING, summary="the largest |w| across all layers (the paper's)",
    prunes=Prunes.WEIGHTS, target=Target.DENSITY,
    select=lambda p: global_magnitude(p.weights, p.mask, p.target),
    cite="Han et al., Learning both weights and connections for efficient neural networks, 2015",
))

register_pruning(PruningStrategy(
    name="layerwise-magnitude", summary="the largest |w| of each layer, every layer to the same density",
    prunes=Prunes.WEIGHTS, target=Target.DENSITY,
    select=lambda p: keep_largest_per_layer(magnitudes(p.weights, p.mask), p.mask, p.target),
    cite="Zhu & Gupta, To prune, or not to prune, 2018",
))


def keeping_dense(is_dense: Callable[[str], bool]) -> Callable[[PruningInput], Mask]:
    """Global magnitude pruning that leaves the tensors ``is_dense`` names whole; the others are pruned
    harder so that the density stays the kept fraction of all prunable weights."""

    def select(p: PruningInput) -> Mask:
        mask, density = p.mask, p.target
        dense = [n for n in mask if is_dense(n)]
        rest = {n: m for n, m in mask.items() if not is_dense(n)}
        total = sum(m.numel() for m in mask.values())
        kept = sum(int(mask[n].sum().item()) for n in dense)
        rest_total = sum(m.numel() for m in rest.values())
        target = (density * total - kept) / max(rest_total, 1)
        if not rest or target <= 0:
            raise HarnessError(f"cannot prune to density {density:g} with {', '.join(dense)} kept dense: "
                               f"they alone hold {kept / total:.3g} of the prunable weights")
        pruned = global_magnitude(p.weights, rest, min(target, 1.0))
        return {n: mask[n] if is_dense(n) else pruned[n] for n in mask}

    return select


# Zhu & Gupta (2018) kept GNMT's attention dense; the paper pruned every weight matrix globally.
register_pruning(PruningStrategy(
    name="global-magnitude-no-attention", summary="global magnitude, attention left dense (Zhu & Gupta's GNMT)",
    prunes=Prunes.WEIGHTS, target=Target.DENSITY, select=keeping_dense(lambda name: ".attention." in name),
))
