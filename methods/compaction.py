"""Turn a filter-pruned network into a physically thinner dense one that computes the same function.

For each residual block whose first convolution lost filters: that convolution keeps only its
surviving filters, its BatchNorm the matching channels, and the second convolution the matching
input channels. The block's output width is unchanged, so nothing else moves. Hand-written because
the only structure involved is the block, and a general dependency-graph pruner (torch-pruning)
would be a large dependency for these few lines.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from harness.core.masks import Mask
from methods.structured import residual_blocks


def thinner_conv(conv: nn.Conv2d, out_idx: torch.Tensor | None, in_idx: torch.Tensor | None) -> nn.Conv2d:
    weight = conv.weight.detach()
    if out_idx is not None:
        weight = weight[out_idx]
    if in_idx is not None:
        weight = weight[:, in_idx]
    new = nn.Conv2d(weight.shape[1] * conv.groups, weight.shape[0], conv.kernel_size, conv.stride, conv.padding,
                    conv.dilation, conv.groups, conv.bias is not None, conv.padding_mode,
                    device=weight.device, dtype=weight.dtype)
    new.weight.data.copy_(weight)
    if conv.bias is not None:
        new.bias.data.copy_(conv.bias.detach() if out_idx is None else conv.bias.detach()[out_idx])
    return new


def thinner_bn(bn: nn.BatchNorm2d, idx: torch.Tensor) -> nn.BatchNorm2d:
    new = nn.BatchNorm2d(len(idx), bn.eps, bn.momentum, bn.affine, bn.track_running_stats,
                         device=bn.weight.device, dtype=bn.weight.dtype)
    if bn.affine:
        new.weight.data.copy_(bn.weight.detach()[idx])
        new.bias.data.copy_(bn.bias.detach()[idx])
    if bn.track_running_stats:
        new.running_mean.copy_(bn.running_mean[idx])
        new.running_var.copy_(bn.running_var[idx])
        new.num_batches_tracked.copy_(bn.num_batches_tracked)
    return new


@torch.no_grad()
def compact(model: nn.Module, mask: Mask) -> nn.Module:
    """A copy of ``model`` with every filter the mask removed physically gone."""
    thin = copy.deepcopy(model)
    for block in residual_blocks(model):
        alive = mask[block.conv1].flatten(1).any(1) if block.conv1 in mask else None
        if alive is None or alive.all():
            continue
        idx = alive.nonzero().flatten().to(next(model.parameters()).device)
        module = thin.get_submodule(block.conv1.rsplit(".", 2)[0])
        module.conv1 = thinner_conv(module.conv1, idx, None)
        module.bn1 = thinner_bn(module.bn1, idx)
        module.conv2 = thinner_conv(module.conv2, None, idx)
    return thin
