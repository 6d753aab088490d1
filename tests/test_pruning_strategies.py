"""Every registered pruning strategy: what it keeps, what it may be combined with (refused at plan time),
and how its parameters enter a cell's identity."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from harness.cli.app import app
from harness.core.canonical import content_hash
from harness.core.errors import HarnessError
from harness.core.hparams import BaseHparams, RetrainHparams
from harness.core.masks import full_mask
from harness.engine.runner import Runner
from harness.storage.store import Store
from harness.sweep.plan import plan
from harness.tune.space import declared_space, split_values
from methods.pruning import PRUNING, Prunes, Target, get_pruning
from methods.semi_structured import groups_of
from methods.spec import get_method
from tasks.spec import get_task

QUICK = BaseHparams("mnist1d", seed=0, epochs_scale=0.1)


@pytest.fixture(scope="module")
def network():
    task = get_task("mnist1d")
    torch.manual_seed(0)
    model = task.make_model()
    weights = {k: v.detach() for k, v in model.named_parameters()}
    return model, weights, full_mask(model, task.prunable(model))


def kept(mask) -> int:
    return sum(int(m.sum()) for m in mask.values())


@pytest.mark.parametrize("density", [0.8, 0.2, 0.05])
def test_global_and_random_reach_the_exact_density(network, density):
    model, weights, mask = network
    total = sum(m.numel() for m in mask.values())
    for name in ("global-magnitude", "random"):
        out = get_pruning(name).prune(weights, mask, density, {}, model, seed=0)
        assert kept(out) == round(density * total), name


@pytest.mark.parametrize("density", [0.5, 0.2, 0.05])
def test_layerwise_prunes_every_layer_to_the_density(network, density):
    model, weights, mask = network
    out = get_pruning("layerwise-magnitude").prune(weights, mask, density, {}, model, seed=0)
    for name, keep in out.items():
        assert int(keep.sum()) == round(density * keep.numel()), name
        # within the layer, the kept weights are the largest
        if 0 < int(keep.sum()) < keep.numel():
            assert weights[name].abs()[keep].min() >= weights[name].abs()[~keep].max()


def test_random_is_seeded_and_keeps_within_the_mask(network):
    model, weights, mask = network
    random = get_pruning("random")
    first = random.prune(weights, mask, 0.5, {}, model, seed=0)
    assert all(torch.equal(first[n], random.prune(weights, mask, 0.5, {}, model, seed=0)[n]) for n in mask)
    other = random.prune(weights, mask, 0.5, {}, model, seed=1)
    assert any(not torch.equal(first[n], other[n]) for n in mask)
    second = random.prune(weights, first, 0.2, {}, model, seed=0)  # an iterative round
    assert all(not (second[n] & ~first[n]).any() for n in mask)
    # random does not look at magnitudes: about as many small weights survive as large ones
    flat_w = torch.cat([weights[n].abs().flatten() for n in mask])
    flat_keep = torch.cat([first[n].flatten() for n in mask])
    small = flat_w < flat_w.median()
    assert abs(flat_keep[small].float().mean() - flat_keep[~small].float().mean()) < 0.05


@pytest.mark.parametrize(("n", "m"), [(2, 4), (1, 4), (1, 16), (3, 8)])
def test_nm_keeps_n_of_every_group_of_m(network, n, m):
    model, weights, mask = network
    nm = get_pruning("nm-magnitude")
    out = nm.prune(weights, mask, n / m, {"n": n, "m": m}, model, seed=0)
    grouped = 0
    for name, keep in out.items():
        groups = groups_of(keep, m)
        if groups is None:  # rows that do not split into groups of m stay dense
            assert keep.all(), name
            continue
        grouped += 1
        assert (groups.sum(-1) == n).all(), name
        scores = groups_of(weights[name].abs(), m)
        assert (scores.masked_fill(~groups, float("inf")).min(-1).values
                >= scores.masked_fill(groups, -1.0).max(-1).values).all(), "the kept are the largest of each group"
    assert grouped >= 6  # all but the first convolution (3 weights a row) of the MNIST-1D network


def test_the_nm_density_follows_its_parameters():
    nm = get_pruning("nm-magnitude")
    assert nm.density_for({}, None) == 0.5 and nm.density_for({"n": 1, "m": 8}, 0.3) == 0.125
    with pytest.raises(HarnessError, match="n <= m"):
        nm.density_for({"n": 5, "m": 4}, None)
    with pytest.raises(HarnessError, match="pruning strategy nm-magnitude parameter m must be an integer in"):
        nm.resolve_params({"m": 64})


def cell(method="lr-rewinding", **kw):
    return RetrainHparams(QUICK, method, 1.0, **kw)


@pytest.mark.parametrize(("hp", "message"), [
    (cell("gradual", densities=(0.5,), pruning="nm-magnitude"),
     "gradual prunes during training, which pruning strategy nm-magnitude (N of every M weights) cannot"),
    (cell(densities=(0.5, 0.25), pruning="nm-magnitude"), "pruning strategy nm-magnitude prunes one-shot only"),
    (cell(densities=(0.3,), pruning="nm-magnitude"), "keeps density 0.5, not 0.3"),
    (cell(pruning="resnet56-A"), "pruning strategy resnet56-A is for cifar10-resnet56, not mnist1d"),
    (RetrainHparams(BaseHparams("cifar10-resnet56"), "gradual", 1.0, pruning="resnet56-A"),
     "gradual prunes during training, which pruning strategy resnet56-A (whole filters) cannot"),
    (RetrainHparams(BaseHparams("cifar10-resnet56"), "lr-rewinding", 1.0, pruning="resnet56-A", level=7),
     "--level must be one of 1, 2, 3, 4, 5 for resnet56-A, got 7"),
    (cell(), "pruning strategy global-magnitude needs a target density"),
    (cell(level=2), "pruning strategy global-magnitude needs a target density; the cell has a level"),
    (cell(densities=(0.5,), level=2), "a cell prunes to a density chain or to a level, not both"),
    (RetrainHparams(BaseHparams("cifar10-resnet56"), "lr-rewinding", 1.0, pruning="resnet56-A"),
     "pruning strategy resnet56-A is pruned at a level k; the cell has none; valid: level 1, 2, 3, 4, 5"),
    (RetrainHparams(BaseHparams("cifar10-resnet56"), "lr-rewinding", 1.0, (0.5,), pruning="resnet56-A"),
     "pruning strategy resnet56-A is pruned at a level k, not to a density"),
    (cell(densities=(0.5,), pruning="nm-magnitude", iterative=True),
     "pruning strategy nm-magnitude prunes one-shot only"),
    (cell(densities=(0.5,), pruning_params=(("n", 1.0),)), "pruning strategy global-magnitude has no parameter 'n'"),
])
def test_incompatible_cells_are_refused_when_planned(hp, message, tmp_path):
    with pytest.raises(HarnessError, match=message.replace("(", r"\(").replace(")", r"\)")):
        plan([hp])
    runner = Runner(Store(tmp_path))
    with pytest.raises(HarnessError):
        runner.retrain(hp)
    assert not (tmp_path / "base").exists(), "refused before anything was trained"


def test_strategy_parameters_name_the_cell_and_defaults_do_not():
    nm = get_pruning("nm-magnitude")
    default = cell(densities=(0.5,), pruning="nm-magnitude", pruning_params=nm.overrides({"n": 2, "m": 4}))
    assert content_hash(default) == content_hash(cell(densities=(0.5,), pruning="nm-magnitude"))
    other = cell(densities=(0.125,), pruning="nm-magnitude", pruning_params=nm.overrides({"n": 1, "m": 8}))
    assert content_hash(other) != content_hash(default)


def test_every_strategy_declares_what_it_is():
    for name in PRUNING.names():
        s = get_pruning(name)
        assert s.summary and isinstance(s.prunes, Prunes) and isinstance(s.target, Target), name
        assert (s.target is Target.LEVEL) == bool(s.levels), name
        if s.target is Target.FIXED:  # a density strategy's parameters may fix one too (Wanda's n and m)
            assert s.fixed_density is not None, name
        if s.target is Target.LEVEL:
            assert s.fixed_density is None, name
        if s.prunes is not Prunes.WEIGHTS:
            assert not s.gradual and not s.iterative, name


def test_strategy_parameters_are_searchable_by_tune():
    space = declared_space(get_method("lr-rewinding"), 3.0, get_pruning("nm-magnitude"))
    assert {"pruning.n", "pruning.m", "t"} <= set(space)
    assert split_values({"pruning.n": 1, "pruning.m": 8, "lr_scale": 1.0, "t": 1.5}) == (
        {"lr_scale": 1.0}, {"n": 1, "m": 8}, 1.5)


def test_the_cli_names_strategies_and_takes_their_parameters(tmp_path):
    listed = CliRunner().invoke(app, ["list"], env={"COLUMNS": "300"})
    assert listed.exit_code == 0
    for name in ("global-magnitude", "layerwise-magnitude", "random", "nm-magnitude", "resnet56-A"):
        assert name in listed.stdout
    assert "nm-magnitude" in listed.stdout and "weights kept in each group" in listed.stdout
    store = tmp_path / "store"
    done = CliRunner().invoke(app, ["run", "lr-rewinding", "mnist1d", "--pruning", "nm-magnitude",
                                    "--pruning-param", "n=1", "--pruning-param", "m=8", "--epochs-scale", "0.1",
                                    "-t", "1", "--store", str(store), "--no-tracking"])
    assert done.exit_code == 0, done.output
    [result] = [json.loads(p.read_text()) for p in store.glob("retrain/*/result.json")]
    assert result["pruning"] == "nm-magnitude" and result["pruning_params"] == {"m": 8.0, "n": 1.0}
    assert result["target_density"] == 0.125 and 0.125 <= result["density"] < 0.13
    refused = CliRunner().invoke(app, ["run", "gradual", "mnist1d", "--pruning", "nm-magnitude",
                                       "--store", str(store), "--no-tracking"])
    assert refused.exit_code == 2 and "cannot" in refused.stderr
