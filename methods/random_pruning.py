"""Random pruning: the sanity baseline a pruning criterion has to beat (Frankle et al. 2021, and
Le & Hua 2021 for retraining)."""

from __future__ import annotations

import torch

from harness.core.masks import Mask, remaining
from harness.core.seeding import derive_seed
from methods.pruning import Prunes, PruningInput, PruningStrategy, Target, keep_largest_across, register_pruning


def random_scores(p: PruningInput) -> Mask:
    # drawn from the cell's seed and how much is left, so a round (or a gradual update) always draws the same
    generator = torch.Generator().manual_seed(derive_seed(p.seed, "random-pruning", remaining(p.mask)))
    scores = {n: torch.rand(m.shape, generator=generator) for n, m in p.mask.items()}
    return keep_largest_across(scores, p.mask, p.target)


register_pruning(PruningStrategy(
    name="random", summary="weights chosen uniformly at random among those kept (a sanity baseline)",
    prunes=Prunes.WEIGHTS, target=Target.DENSITY, select=random_scores,
    cite="Frankle et al., Pruning neural networks at initialization: why are we missing the mark?, 2021",
))
