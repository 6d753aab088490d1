import math

import pytest
import torch

from harness.core.errors import HarnessError
from harness.core.masks import compression_ratio, density, full_mask, layer_densities
from harness.core.protocol import density_chain
from methods.magnitude import global_magnitude
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


def stable_sort_mask(scores: torch.Tensor, k: int) -> torch.Tensor:
    """What global magnitude pruning kept before selection replaced sorting."""
    keep = torch.zeros(scores.numel(), dtype=torch.bool)
    keep[torch.sort(scores, descending=True, stable=True).indices[:k]] = True
    return keep


@pytest.mark.parametrize("values", ["continuous", "ties", "zeros"])
def test_selection_keeps_exactly_what_the_stable_sort_kept(values):
    from methods.pruning import largest

    g = torch.Generator().manual_seed(1)
    n = 50_000
    scores = {"continuous": torch.randn(n, generator=g).abs(),
              "ties": torch.randint(0, 4, (n,), generator=g).float() * 0.125,
              "zeros": torch.zeros(n)}[values]
    scores[torch.rand(n, generator=g) < 0.3] = -1.0  # already pruned
    alive = int((scores >= 0).sum())
    for k in (0, 1, 7, alive // 3, alive // 2, alive - 1, alive):
        assert torch.equal(largest(scores.clone(), k), stable_sort_mask(scores, k)), (values, k)


def test_global_magnitude_equals_torch_global_unstructured():
    import torch.nn.utils.prune as prune

    from tasks.mnist1d import mnist1d_cnn
    from tasks.spec import conv_and_linear_weights

    torch.manual_seed(3)
    model = mnist1d_cnn()
    names = conv_and_linear_weights(model)
    weights = {n: p.detach().clone() for n, p in model.named_parameters()}
    ours = global_magnitude(weights, full_mask(model, names), 0.2)
    modules = dict(model.named_modules())
    targets = [(modules[n.rsplit(".", 1)[0]], "weight") for n in names]
    total = sum(weights[n].numel() for n in names)
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=total - round(0.2 * total))
    for n in names:
        assert torch.equal(ours[n], modules[n.rsplit(".", 1)[0]].weight_mask.bool()), n
