"""A compacted network computes what the masked network computes, with fewer channels."""

import pytest
import torch

from harness.core.masks import apply_mask, full_mask
from methods.compaction import compact
from methods.pruning import get_pruning
from methods.structured import residual_blocks
from tasks.spec import get_task


def randomize_batchnorm(model):
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


@pytest.mark.parametrize(("config", "k", "size"), [
    ("resnet56-A", 1, 32), ("resnet56-B", 3, 32), ("resnet110-B", 5, 32), ("resnet34-A", 2, 64), ("resnet34-B", 5, 64),
])
def test_compacted_network_equals_the_masked_one(config, k, size):
    strategy = get_pruning(config)
    task = get_task(strategy.task)
    torch.manual_seed(0)
    model = task.make_model().eval()
    randomize_batchnorm(model)
    mask = strategy.prune(dict(model.named_parameters()), full_mask(model, task.prunable(model)), k, {}, model, 0)
    apply_mask(model, mask)
    thin = compact(model, mask).eval()
    x = torch.randn(4, 3, size, size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected, got = model(x), thin(x)
    assert torch.allclose(expected, got, rtol=1e-4, atol=1e-4), (expected - got).abs().max()
    # every weight the mask keeps, and no other, is in the compacted network
    thin_params = dict(thin.named_parameters())
    assert all(thin_params[name].numel() == int(keep.sum()) for name, keep in mask.items())
    assert sum(p.numel() for p in thin.parameters()) < sum(p.numel() for p in model.parameters())
    for block in residual_blocks(model):
        conv1 = thin.get_submodule(block.conv1.rsplit(".", 1)[0])
        assert conv1.out_channels == int(mask[block.conv1].flatten(1).any(1).sum())
