"""The recovery methods of the LLM era as retraining methods: what each trains and minimizes, that pruned weights
stay exactly zero under each, that an adapter's merge keeps the mask (plain LoRA's is reported to densify), and
the cost every cell records (samples and tokens, trainable parameters, peak memory, counted FLOPs)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from harness.core.errors import HarnessError
from harness.core.hparams import BaseHparams, RetrainHparams
from harness.engine.gate import check_cell
from harness.engine.runner import Runner
from harness.storage import paths, store
from harness.storage.store import Store
from methods import lora
from methods.spec import Budget, get_method
from methods.trainable import Adapters, EveryWeight, Prepared, Subset, is_normalization, trainable_count
from tasks.spec import get_task
from tests.conftest import QUICK
from tests.test_lm import checkpoints, run, wikitext  # noqa: F401  (fixtures)

NEW = ["biases-norms", "masklora", "scalelora", "lora", "distillation", "reconstruction"]  # and, on a transformer,
# block-reconstruction


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    return Runner(Store(tmp_path_factory.mktemp("recovery")))


def cell(method: str, t: float = 1.0, **params: float) -> RetrainHparams:
    return RetrainHparams(BaseHparams("mnist1d", seed=0, epochs_scale=QUICK), method, t, (0.5,),
                          method_params=tuple(sorted(params.items())))


def stored(runner: Runner, hp: RetrainHparams) -> tuple[dict, dict]:
    folder = runner.store.retrain_dir(hp)
    return store.load(folder / paths.WEIGHTS), store.load(folder / paths.MASK)


@pytest.mark.parametrize("method", NEW)
def test_pruned_weights_stay_exactly_zero_under_each_method(runner, method):
    record = runner.retrain(cell(method))
    weights, mask = stored(runner, cell(method))
    pruned = torch.cat([weights[n][~keep] for n, keep in mask.items()])
    if get_method(method).trains.densifies:
        assert pruned.count_nonzero() > 0  # plain LoRA fills them in, and says so
        nonzero = sum(int(weights[n].count_nonzero()) for n in mask) / sum(k.numel() for k in mask.values())
        assert record.merged_density == pytest.approx(nonzero) and record.merged_density > record.density + 0.4
    else:
        assert torch.all(pruned == 0) and not torch.signbit(pruned).any()  # +0.0, bit for bit
        assert record.merged_density is None
    assert record.density == pytest.approx(0.5, abs=0.01)


def test_what_each_method_trains_is_counted(runner):
    model = get_task("mnist1d").make_model()
    params = dict(model.named_parameters())
    biases_norms = sum(p.numel() for n, p in params.items() if n.endswith("bias")) + sum(
        p.numel() for m in model.modules() if is_normalization(m) for n, p in m.named_parameters() if n != "bias")
    assert runner.retrain(cell("biases-norms")).trainable_parameters == biases_norms
    full = runner.retrain(cell("fine-tuning"))
    assert full.trainable_parameters == full.parameters  # every weight but the pruned ones
    mask = stored(runner, cell("fine-tuning"))[1]
    rank = get_method("masklora").params["rank"].default
    adapters = sum(rank * (keep.shape[0] + keep[0].numel()) for keep in mask.values())
    assert runner.retrain(cell("masklora")).trainable_parameters == adapters
    assert runner.retrain(cell("masklora", rank=2)).trainable_parameters == adapters // 4


def test_the_cost_of_retraining_is_counted(runner):
    one, two = runner.retrain(cell("fine-tuning", 1.0)), runner.retrain(cell("fine-tuning", 2.0))
    task = get_task("mnist1d").resolved(cell("fine-tuning").base)
    data = runner.data(task)
    assert one.retraining_samples == data.steps_per_epoch * task.batch_size and one.retraining_tokens is None
    assert two.retraining_samples == 2 * one.retraining_samples and two.retraining_flops == 2 * one.retraining_flops
    # a step is a forward and a backward pass: about three times the forward FLOPs of the batch's samples
    per_step = one.retraining_flops / data.steps_per_epoch
    assert 2.0 < per_step / (one.dense_flops * task.batch_size) <= 3.01
    assert one.retraining_peak_bytes > 4 * one.parameters  # weights, gradients, optimizer state, activations
    lean = runner.retrain(cell("biases-norms", 1.0))
    assert lean.retraining_flops < one.retraining_flops and lean.retraining_peak_bytes < one.retraining_peak_bytes
    for method in ("fine-tuning", "masklora", "reconstruction"):  # t = 0: nothing retrained, nothing spent
        nothing = runner.retrain(cell(method, 0.0))
        assert (nothing.retraining_samples, nothing.trainable_parameters, nothing.retraining_peak_bytes,
                nothing.retraining_flops) == (0, 0, 0, 0), method
    again = Runner(Store(runner.store.root.parent / "again")).retrain(cell("fine-tuning", 1.0))
    assert (again.retraining_flops, again.retraining_peak_bytes) == (one.retraining_flops, one.retraining_peak_bytes)


def test_masklora_and_scalelora_merge_as_defined_and_keep_the_density():
    torch.manual_seed(0)
    for merge in ("mask", "scale", "dense"):
        model = nn.Sequential(nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 4))
        original = {k: v.clone() for k, v in model.state_dict().items()}
        mask = {"0.weight": torch.rand(8, 12) < 0.5, "2.weight": torch.rand(4, 8) < 0.5}
        with torch.no_grad():
            for name, keep in mask.items():
                model.get_parameter(name).mul_(keep)
        pruned = {k: v.clone() for k, v in model.state_dict().items()}
        prepared = Adapters(merge).prepare(model, mask, {"rank": 2, "alpha": 4})
        x = torch.randn(5, 12)
        reference = nn.Sequential(nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 4))
        reference.load_state_dict(pruned)
        # B = 0 (mask, dense) or BA = 1 (scale): the network starts as it was pruned
        assert torch.allclose(prepared.module(x), reference(x), atol=1e-6)
        with torch.no_grad():
            for layer in lora.layers(prepared.module).values():
                layer.lora_B[lora.ADAPTER].weight.normal_()
                layer.lora_A[lora.ADAPTER].weight.normal_()
        out = prepared.module(x)
        fresh = nn.Sequential(nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 4))
        merged = Adapters(merge).merged(prepared, fresh)
        assert torch.allclose(merged(x), out, atol=1e-5)
        for name, keep in mask.items():
            layer = lora.layers(prepared.module)[name.rsplit(".", 1)[0]]
            BA = layer.lora_B[lora.ADAPTER].weight @ layer.lora_A[lora.ADAPTER].weight
            W = pruned[name]
            expected = {"mask": W + 2.0 * BA * keep, "scale": W * BA, "dense": W + 2.0 * BA}[merge]
            assert torch.allclose(merged.get_parameter(name), expected, atol=1e-6)
            if merge != "dense":
                assert torch.all(merged.get_parameter(name)[~keep] == 0)
        assert set(merged.state_dict()) == set(original)


def test_each_declaration_says_what_it_trains_minimizes_and_counts():
    assert isinstance(get_method("fine-tuning").trains, EveryWeight)
    assert isinstance(get_method("biases-norms").trains, Subset)
    assert get_method("masklora").trains.merge == "mask" and not get_method("masklora").trains.densifies
    assert get_method("lora").trains.densifies
    assert get_method("distillation").minimizes.needs_teacher and get_method("distillation").budget is Budget.EPOCHS
    reconstruction = get_method("reconstruction")
    assert reconstruction.budget is Budget.CALIBRATION and not reconstruction.shares_prefix(30.0)
    assert {"rank", "alpha"} <= set(get_method("masklora").params)
    assert {"temperature", "mix"} <= set(get_method("distillation").params)
    assert {"lr", "samples", "calibration_seed"} <= set(reconstruction.params)
    for name in NEW:  # each cites its paper and starts from W_T: it applies to a pretrained checkpoint
        assert get_method(name).cite and not get_method(name).needs_training_run


def test_distillation_and_block_reconstruction_are_refused_where_a_task_lacks_what_they_read():
    with pytest.raises(HarnessError, match="does not declare"):
        check_cell(RetrainHparams(BaseHparams("wmt16-gnmt-tiny"), "distillation", 1.0, (0.5,)))
    with pytest.raises(HarnessError, match=r"declares none .*valid: .*reconstruction"):
        check_cell(RetrainHparams(BaseHparams("mnist1d"), "block-reconstruction", 1.0, (0.5,)))
    for method in ("distillation", "block-reconstruction"):
        check_cell(RetrainHparams(BaseHparams("tinylm"), method, 1.0, (0.5,)))


@pytest.mark.parametrize("method", ["masklora", "reconstruction", "block-reconstruction", "distillation"])
def test_a_checkpoint_is_recovered_with_the_llm_methods(tmp_path, checkpoints, wikitext, method):  # noqa: F811
    result, cells = run(method, "hf-causal-lm", "--model", str(checkpoints["llama"]), "--data-dir", str(wikitext),
                        "--pruning", "wanda", "--pruning-param", "samples=8", "--density", "0.5", "-t", "0.5",
                        "--store", str(tmp_path))
    assert result.exit_code == 0, result.output
    record = cells[0]
    assert record["retraining_tokens"] == record["retraining_samples"] * record["seqlen"] > 0
    assert record["retraining_flops"] > 0 and record["retraining_peak_bytes"] > 0
    assert 0 < record["trainable_parameters"] <= record["parameters"]
    assert math.isfinite(record["test_acc"])
    weights = store.load(tmp_path / "retrain" / record["run"] / "weights.pt")
    mask = store.load(tmp_path / "retrain" / record["run"] / "mask.pt")
    assert all(torch.all(weights[n][~keep] == 0) for n, keep in mask.items())


def test_trainable_parameters_leave_out_the_pruned_and_the_frozen():
    layer = nn.Linear(3, 2)
    assert trainable_count(Prepared(layer, {"weight": torch.tensor([[1, 0, 1], [0, 0, 1]], dtype=torch.bool)})) == 5
    layer.weight.requires_grad_(False)
    assert trainable_count(Prepared(layer, {"weight": torch.ones(2, 3, dtype=torch.bool)})) == 2


def test_new_scopes_and_objectives_share_a_prefix_bit_for_bit_where_derived(tmp_path, monkeypatch):
    """Declared with a constant rate (fine-tuning's), adapters, a subset and distillation are prefix-sharing by
    derivation; one run to the longest t gives each shorter t exactly what it gives run alone."""
    from harness.core.registry import METHODS
    from harness.sweep.plan import plan
    from methods.objective import Distillation
    from methods.spec import Length, Retraining, Start, Weights

    specs = {"constant-masklora": Adapters("mask"), "constant-scalelora": Adapters("scale"),
             "constant-biases": Subset(("biases", "norms")), "constant-distillation": Distillation()}
    for name, part in specs.items():
        declared = {"minimizes": part} if isinstance(part, Distillation) else {"trains": part}
        spec = Retraining(name, "x", Weights.TRAINED, Start.T, Length.t, **declared)
        assert spec.shares_prefix(3.0)
        monkeypatch.setitem(METHODS._entries, name, spec)
    base = BaseHparams("mnist1d", seed=0, epochs_scale=QUICK)
    cells = [RetrainHparams(base, name, t, (0.5,)) for name in specs for t in (1.0, 2.0)]
    grouped = [j for j in plan(cells) if len(j.cells) > 1]
    assert {j.cells[0].method for j in grouped} == set(specs)
    shared, alone = Runner(Store(tmp_path / "shared")), Runner(Store(tmp_path / "alone"))
    for job in grouped:
        shared.retrain_group(list(job.cells))
        short = job.cells[0]
        a, b = alone.retrain(short), shared.store.cell_record(short)
        assert (a.weights_sha256, a.val_acc, a.retraining_flops) == (b.weights_sha256, b.val_acc, b.retraining_flops)


def test_a_study_adds_each_pruned_network_as_it_is_with_no_retraining():
    from harness.sweep.study import StudyError, parse_study

    study = parse_study({"task": "mnist1d", "methods": ["masklora", "llr"], "retrain_epochs": [1.5],
                         "densities": [0.5, 0.3], "seeds": 2, "no_retraining": True}, "s.yaml")
    cells = study.cells()
    assert len(cells) == study.count() == 2 * 2 * 3
    plain = [c for c in cells if c.variant == "no-retraining"]
    assert len(plain) == 4 and {(c.method, c.retrain_epochs) for c in plain} == {("fine-tuning", 0.0)}
    without = parse_study({"task": "mnist1d", "methods": ["llr"], "retrain_epochs": [1.5]}, "s.yaml")
    assert all(c.variant is None for c in without.cells())
    with pytest.raises(StudyError, match=r"no_retraining.*must be true or false, got 'yes'"):
        parse_study({"task": "mnist1d", "no_retraining": "yes"}, "s.yaml")


@pytest.mark.parametrize("dense_inputs", [False, True])
def test_layerwise_reconstruction_brings_each_layer_closer_to_the_dense_one_with_its_mask_fixed(dense_inputs):
    from methods import layerwise

    torch.manual_seed(0)
    dense = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 8))
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 8))
    model.load_state_dict(dense.state_dict())
    mask = {"0.weight": torch.rand(32, 16) < 0.5, "2.weight": torch.rand(8, 32) < 0.5}
    with torch.no_grad():
        for name, keep in mask.items():
            model.get_parameter(name).mul_(keep)
    mixing = torch.randn(4, 16)  # correlated inputs: the kept ones can stand in for the pruned ones
    batches = [torch.randn(64, 4) @ mixing for _ in range(4)]
    feed = lambda m, x: m(x)  # noqa: E731

    def error(name: str) -> float:
        layer, teacher = model.get_submodule(name), dense.get_submodule(name)
        seen = layerwise.layer_inputs(dense, teacher, batches, feed)
        given = seen if dense_inputs else layerwise.layer_inputs(model, layer, batches, feed)
        with torch.no_grad():
            return sum(float(nn.functional.mse_loss(layer(x), teacher(d))) for x, d in zip(given, seen, strict=True))

    before = {n: error(n) for n in ("0", "2")}
    layerwise.reconstruct(model, dense, mask, batches, feed, steps=200, lr=1e-2, dense_inputs=dense_inputs)
    after = {n: error(n) for n in ("0", "2")}
    assert all(after[n] < 0.5 * before[n] for n in before), (before, after)
    assert all(torch.all(model.get_parameter(n)[~keep] == 0) for n, keep in mask.items())
