"""Pruning strategies: given the trained weights and the current mask, the next mask."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from harness.errors import HarnessError
from harness.masks import Mask
from harness.registry import Registry

ITERATIVE_RATE = 0.2  # each iterative round prunes 20% of the remaining weights

Pruner = Callable[[dict[str, torch.Tensor], Mask, float], Mask]
PRUNERS: Registry[Pruner] = Registry("pruning strategy")


def largest(scores: torch.Tensor, k: int) -> torch.Tensor:
    """A mask of the k largest ``scores`` (|w| >= 0, or -1 for a weight already pruned), ties going to
    the lower index: the first k of a stable descending sort, found by selection instead.

    The scores' float bits, read as integers, are ordered like the scores; a histogram of their high
    16 bits finds the bucket holding the k-th largest, and only that bucket is searched for it.
    """
    if k <= 0:
        return torch.zeros(scores.numel(), dtype=torch.bool)
    if torch.isnan(scores).any():  # NaN ranks above everything in the sort; keep its exact order
        keep = torch.zeros(scores.numel(), dtype=torch.bool)
        keep[torch.sort(scores, descending=True, stable=True).indices[:k]] = True
        return keep
    alive = scores >= 0
    bucket = torch.where(alive, (scores.contiguous().view(torch.int32) >> 16) + 1, 0)
    at_or_above = torch.bincount(bucket, minlength=1 << 16).flip(0).cumsum(0).flip(0)
    b = int((at_or_above >= k).nonzero().max())
    above = int(at_or_above[b + 1]) if b + 1 < at_or_above.numel() else 0
    candidates = scores[bucket == b]
    kth = candidates.kthvalue(candidates.numel() - (k - above) + 1).values
    keep = scores > kth
    ties = k - int(keep.sum())
    keep[(scores == kth).nonzero().flatten()[:ties]] = True
    return keep


@PRUNERS.register("global-magnitude")
def global_magnitude(weights: dict[str, torch.Tensor], mask: Mask, density: float) -> Mask:
    """Keep the ``density`` fraction of all prunable weights with the largest |w|, across layers."""
    names = list(mask)
    scores = torch.cat([
        torch.where(mask[n], weights[n].abs().float(), torch.full_like(weights[n], -1.0, dtype=torch.float))
        .flatten() for n in names
    ])
    keep_count = round(density * scores.numel())
    alive = int(sum(mask[n].sum().item() for n in names))
    if keep_count > alive:
        raise HarnessError(f"cannot prune to density {density:g}: only {alive / scores.numel():g} remains")
    keep = largest(scores, keep_count)
    out, offset = {}, 0
    for n in names:
        size = mask[n].numel()
        out[n] = keep[offset : offset + size].view_as(mask[n])
        offset += size
    return out


def density_chain(
    density: float | None = None, rounds: int | None = None, iterative: bool = False
) -> tuple[float, ...]:
    """Target density after each round: one round for one-shot, 0.8, 0.64, ... for iterative.

    Iterative to a density that is not a power of 0.8 ends with a last round that prunes to it.
    """
    if density is not None and not 0.0 < density <= 1.0:
        raise HarnessError(f"density must be in (0, 1], got {density:g}")
    if rounds is not None and rounds < 1:
        raise HarnessError(f"rounds must be a positive integer, got {rounds}")
    keep = 1.0 - ITERATIVE_RATE
    if rounds is not None:
        if density is not None:
            raise HarnessError("give --density or --rounds, not both")
        return tuple(keep**r for r in range(1, rounds + 1)) if iterative else (keep**rounds,)
    density = 0.2 if density is None else density
    if not iterative:
        return (density,)
    n = max(1, math.ceil(math.log(density) / math.log(keep) - 1e-9))
    return (*tuple(keep ** r for r in range(1, n)), density)


def keeping_dense(is_dense: Callable[[str], bool]) -> Pruner:
    """Global magnitude pruning that leaves the tensors ``is_dense`` names whole; the others are pruned
    harder so that ``density`` stays the kept fraction of all prunable weights."""

    def prune(weights: dict[str, torch.Tensor], mask: Mask, density: float) -> Mask:
        dense = [n for n in mask if is_dense(n)]
        rest = {n: m for n, m in mask.items() if not is_dense(n)}
        total = sum(m.numel() for m in mask.values())
        kept = sum(int(mask[n].sum().item()) for n in dense)
        rest_total = sum(m.numel() for m in rest.values())
        target = (density * total - kept) / max(rest_total, 1)
        if not rest or target <= 0:
            raise HarnessError(f"cannot prune to density {density:g} with {', '.join(dense)} kept dense: "
                               f"they alone hold {kept / total:.3g} of the prunable weights")
        pruned = global_magnitude(weights, rest, min(target, 1.0))
        return {n: mask[n] if n in mask and is_dense(n) else pruned[n] for n in mask}

    return prune


# Zhu & Gupta (2018) kept GNMT's attention dense; the paper pruned every weight matrix globally.
PRUNERS.register("global-magnitude-no-attention")(keeping_dense(lambda name: ".attention." in name))
