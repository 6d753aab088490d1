import math

import pytest
import torch

from harness.errors import HarnessError
from harness.masks import compression_ratio, density, full_mask, layer_densities
from methods.pruning import density_chain, global_magnitude
from tests.conftest import tiny_model


def test_prunable_weights_are_conv_and_linear_weights_only():
    from tasks.spec import conv_and_linear_weights

    model = tiny_model()
    assert conv_and_linear_weights(model) == ["0.weight", "4.weight"]


def test_global_magnitude_keeps_the_largest_weights_across_layers():
    torch.manual_seed(0)
    model = tiny_model()
    weights = dict(model.named_parameters())
    mask = global_magnitude(weights, full_mask(model, ["0.weight", "4.weight"]), 0.25)
    kept = torch.cat([weights[n].detach()[m].abs() for n, m in mask.items()])
    pruned = torch.cat([weights[n].detach()[~m].abs() for n, m in mask.items()])
    assert kept.min() >= pruned.max()
    total = sum(m.numel() for m in mask.values())
    assert len(kept) == round(0.25 * total)
    assert density(mask) == pytest.approx(0.25, abs=1 / total)
    assert compression_ratio(mask) == pytest.approx(total / len(kept))
    # global, not per layer: the layers end at different densities
    per_layer = layer_densities(mask)
    assert per_layer["0.weight"] != pytest.approx(per_layer["4.weight"])


def test_pruning_never_revives_a_pruned_weight():
    torch.manual_seed(0)
    model = tiny_model()
    weights = {k: v.detach().clone() for k, v in model.named_parameters()}
    first = global_magnitude(weights, full_mask(model, ["0.weight", "4.weight"]), 0.5)
    # make the pruned weights huge: they must stay pruned
    for n, keep in first.items():
        weights[n][~keep] = 100.0
    second = global_magnitude(weights, first, 0.4)
    for n in first:
        assert not (second[n] & ~first[n]).any()
    assert density(second) == pytest.approx(0.4, abs=0.01)


def test_one_shot_and_iterative_density_chains():
    assert density_chain(0.2) == (0.2,)
    assert density_chain(rounds=3) == pytest.approx((0.512,))
    assert density_chain(rounds=3, iterative=True) == pytest.approx((0.8, 0.64, 0.512))
    chain = density_chain(0.2, iterative=True)
    assert chain[-1] == 0.2
    assert chain[:-1] == pytest.approx(tuple(0.8**k for k in range(1, len(chain))))
    assert len(chain) == math.ceil(math.log(0.2) / math.log(0.8))
    # a power of 0.8 ends exactly on it, with no extra round
    assert density_chain(0.8**4, iterative=True) == pytest.approx((0.8, 0.64, 0.512, 0.4096))
    assert density_chain(1.0, iterative=True) == (1.0,)


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5])
def test_density_outside_unit_interval_is_rejected(bad):
    with pytest.raises(HarnessError, match=r"density must be in \(0, 1\]"):
        density_chain(bad)
