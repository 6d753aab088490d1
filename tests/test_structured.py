"""Li et al. filter pruning configurations, and FLOPs counting only non-zero weights."""

import itertools
import math

import pytest
import torch
from torch import nn

from harness.core.errors import HarnessError
from harness.core.flops import flops
from harness.core.masks import density, full_mask
from methods.pruning import get_pruning
from methods.structured import LEVELS, residual_blocks
from tasks.spec import get_task

# Li et al. (2017), written out: (stage sizes in blocks, prune fraction per stage, skipped layers)
LI = {
    "resnet56-A": ([9, 9, 9], [0.1, 0.1, 0.1], {16, 20, 38, 54}),
    "resnet56-B": ([9, 9, 9], [0.6, 0.3, 0.1], {16, 18, 20, 34, 38, 54}),
    "resnet110-A": ([18, 18, 18], [0.5, 0.0, 0.0], {36}),
    "resnet110-B": ([18, 18, 18], [0.5, 0.4, 0.3], {36, 38, 74}),
    "resnet34-A": ([3, 4, 6, 3], [0.3, 0.3, 0.3, 0.0], {2, 8, 14, 16, 26, 28, 30, 32}),
    "resnet34-B": ([3, 4, 6, 3], [0.5, 0.6, 0.4, 0.0], {2, 8, 14, 16, 26, 28, 30, 32}),
}


@pytest.fixture(scope="module", params=sorted(LI))
def configured(request):
    config = get_pruning(request.param)
    torch.manual_seed(0)
    model = get_task(config.task).make_model()
    weights = {k: v.detach() for k, v in model.named_parameters()}
    prunable = get_task(config.task).prunable(model)
    masks = {k: config.prune(weights, full_mask(model, prunable), k, {}, model, 0) for k in LEVELS}
    return request.param, config, model, weights, masks


def test_filter_counts_follow_the_configuration(configured):
    name, _, model, _, masks = configured
    sizes, prune, skip = LI[name]
    stage_of = [s for s, n in enumerate(sizes) for _ in range(n)]
    blocks = residual_blocks(model)
    assert len(blocks) == sum(sizes)
    for k in LEVELS:
        for b, block in enumerate(blocks):
            layer = 2 + 2 * b
            filters = masks[k][block.conv1].flatten(1).any(1)
            channels = masks[k][block.conv2].transpose(0, 1).flatten(1).any(1)
            kept = max(1, math.floor(block.filters * (1 - prune[stage_of[b]]) ** k))
            expected = block.filters if layer in skip else kept
            assert int(filters.sum()) == expected, (name, k, layer)
            assert torch.equal(filters, channels), "the next convolution loses the matching input channels"
            # whole filters go: a filter is either fully kept or fully zero
            assert torch.equal(masks[k][block.conv1].flatten(1).all(1), filters)


def test_densities_are_monotone_in_k_and_skipped_layers_untouched(configured):
    name, _, model, _, masks = configured
    _, _, skip = LI[name]
    densities = [density(masks[k]) for k in LEVELS]
    assert all(a >= b for a, b in itertools.pairwise(densities))
    if any(p > 0 for p in LI[name][1]):
        assert densities[0] > densities[-1]
    for b, block in enumerate(residual_blocks(model)):
        if 2 + 2 * b in skip:
            assert all(masks[k][block.conv1].all() and masks[k][block.conv2].all() for k in LEVELS)
    stem = [n for n in masks[1] if n not in {x for blk in residual_blocks(model) for x in (blk.conv1, blk.conv2)}]
    assert all(masks[k][n].all() for n in stem for k in LEVELS), "stem, shortcuts and classifier are never pruned"


def test_filters_with_the_largest_l1_norm_survive(configured):
    _, _, model, weights, masks = configured
    for block in residual_blocks(model):
        norms = weights[block.conv1].abs().flatten(1).sum(1)
        kept = masks[3][block.conv1].flatten(1).all(1)
        if kept.all():
            continue
        assert norms[kept].min() >= norms[~kept].max()


def test_a_configuration_for_another_network_is_refused():
    model = get_task("cifar10-resnet20").make_model()
    weights = dict(model.named_parameters())
    mask = full_mask(model, get_task("cifar10-resnet20").prunable(model))
    with pytest.raises(HarnessError, match=r"does not fit this network .* it is for cifar10-resnet110"):
        get_pruning("resnet110-B").prune(weights, mask, 1, {}, model, 0)
    with pytest.raises(HarnessError, match=r"level k must be one of 1, 2, 3, 4, 5"):
        get_pruning("resnet56-A").prune(weights, mask, 6, {}, model, 0)


def test_flops_of_a_small_network_by_hand():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 10))
    conv = 2 * (4 * 8 * 8) * (3 * 3 * 3)  # 2 FLOPs per multiply-add, per output element
    linear = 2 * 256 * 10
    assert flops(net, (3, 8, 8)) == (conv + linear, conv + linear)
    mask = full_mask(net, ["0.weight", "3.weight"])
    mask["0.weight"][:2] = False  # half the conv filters
    mask["3.weight"][:, :64] = False  # a quarter of the linear weights
    sparse, dense = flops(net, (3, 8, 8), mask)
    assert dense == conv + linear
    assert sparse == conv // 2 + linear * 3 // 4


def test_flops_of_the_unpruned_cifar_resnets():
    # the standard CIFAR ResNet-56 count: about 125M multiply-adds
    _, dense = flops(get_task("cifar10-resnet56").make_model(), (3, 32, 32))
    assert dense / 2 == pytest.approx(125.5e6, rel=0.01)
