"""L1-norm filter pruning (Li et al. 2017, "Pruning Filters for Efficient ConvNets").

In each residual block only the first convolution loses filters, those of smallest L1 norm; the
second convolution's matching input channels go with them, so the masked network computes what a
physically thinner one would. Layers are numbered as Li et al. number them: the stem is layer 1 and
residual block b (from 0) has its first convolution at layer 2 + 2b (1x1 shortcuts are not counted).
Each configuration prunes a fraction per stage and skips the layers found sensitive; level k raises
every layer's density d_i to d_i^k, as Renda et al. do for higher sparsities.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from harness.core.errors import HarnessError
from harness.core.masks import Mask
from methods.pruning import Prunes, PruningInput, PruningStrategy, Target, register_pruning

LEVELS = (1, 2, 3, 4, 5)
LI_ET_AL = "Li et al., Pruning filters for efficient ConvNets, 2017"


@dataclass(frozen=True)
class FilterConfig:
    name: str
    task: str
    prune_per_stage: tuple[float, ...]  # fraction of filters removed in each stage at k = 1
    skip: tuple[int, ...]  # Li et al.'s layer numbers left untouched

    def density(self, stage: int, k: int) -> float:
        return (1.0 - self.prune_per_stage[stage]) ** k


def register_config(config: FilterConfig) -> PruningStrategy:
    """A configuration is a pruning strategy of its own, made for its task, its target the level k."""
    share = " / ".join(f"{p:.0%}" for p in config.prune_per_stage)
    return register_pruning(PruningStrategy(
        name=config.name, summary=f"L1 filter pruning of {config.task}: {share} of the filters per stage at k=1, "
                                  f"layers {', '.join(map(str, config.skip))} kept",
        prunes=Prunes.FILTERS, target=Target.LEVEL, select=lambda p: select_filters(p, config),
        iterative=False, gradual=False, levels=LEVELS, task=config.task, cite=LI_ET_AL,
    ))


register_config(FilterConfig("resnet56-A", "cifar10-resnet56", (0.1, 0.1, 0.1), (16, 20, 38, 54)))
register_config(FilterConfig("resnet56-B", "cifar10-resnet56", (0.6, 0.3, 0.1), (16, 18, 20, 34, 38, 54)))
register_config(FilterConfig("resnet110-A", "cifar10-resnet110", (0.5, 0.0, 0.0), (36,)))
register_config(FilterConfig("resnet110-B", "cifar10-resnet110", (0.5, 0.4, 0.3), (36, 38, 74)))
register_config(FilterConfig("resnet34-A", "imagenet-resnet34", (0.3, 0.3, 0.3, 0.0), (2, 8, 14, 16, 26, 28, 30, 32)))
register_config(FilterConfig("resnet34-B", "imagenet-resnet34", (0.5, 0.6, 0.4, 0.0), (2, 8, 14, 16, 26, 28, 30, 32)))


def select_filters(p: PruningInput, config: FilterConfig) -> Mask:
    return l1_filter_mask(p.model, p.weights, p.mask, config, int(p.target))


@dataclass(frozen=True)
class Block:
    """A residual block as filter pruning sees it."""

    layer: int  # Li et al.'s number of its first convolution
    stage: int
    conv1: str  # parameter names of the two convolutions' weights
    conv2: str
    filters: int


def residual_blocks(model: nn.Module) -> list[Block]:
    """Basic residual blocks in order, for the CIFAR ResNets here and timm's ResNets alike."""
    found = [(name, m) for name, m in model.named_modules()
             if isinstance(getattr(m, "conv1", None), nn.Conv2d) and isinstance(getattr(m, "conv2", None), nn.Conv2d)]
    blocks, widths = [], []
    for b, (name, m) in enumerate(found):
        if m.conv2.out_channels not in widths:
            widths.append(m.conv2.out_channels)
        blocks.append(Block(2 + 2 * b, len(widths) - 1, f"{name}.conv1.weight", f"{name}.conv2.weight",
                            m.conv1.out_channels))
    return blocks


def kept_filters(config: FilterConfig, block: Block, k: int) -> int:
    if block.layer in config.skip:
        return block.filters
    return max(1, int(block.filters * config.density(block.stage, k)))


def l1_filter_mask(
    model: nn.Module, weights: dict[str, torch.Tensor], mask: Mask, config: FilterConfig, k: int
) -> Mask:
    """The mask of configuration ``config`` at level ``k``, filters chosen by the L1 norm of ``weights``."""
    if k not in LEVELS:
        raise HarnessError(f"structured level k must be one of {', '.join(map(str, LEVELS))}, got {k}")
    blocks = residual_blocks(model)
    fits = blocks and blocks[-1].stage + 1 == len(config.prune_per_stage) and max(config.skip) <= blocks[-1].layer
    if not fits:
        raise HarnessError(f"configuration {config.name} does not fit this network "
                           f"({len(blocks)} residual blocks); it is for {config.task}")
    out = {name: keep.clone() for name, keep in mask.items()}
    for block in blocks:
        keep = kept_filters(config, block, k)
        if keep == block.filters:
            continue
        norms = weights[block.conv1].abs().flatten(1).sum(1)
        chosen = torch.sort(norms, descending=True, stable=True).indices[:keep]
        alive = torch.zeros(block.filters, dtype=torch.bool)
        alive[chosen] = True
        out[block.conv1] &= alive.view(-1, 1, 1, 1)
        out[block.conv2] &= alive.view(1, -1, 1, 1)
    return out
