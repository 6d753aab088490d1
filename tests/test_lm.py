"""The language-model family: tinylm and hf-causal-lm, perplexity, Wanda and SparseGPT.

Checkpoints are tiny randomly initialized OPT, GPT-2, Pythia (GPT-NeoX) and Llama models saved with
``save_pretrained`` by the tests, and data are files the tests write in WikiText-2 raw and C4 JSON-lines
formats (``tests/lm_files``).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from harness.cli.app import app
from harness.core.errors import HarnessError
from harness.core.hparams import BaseHparams, RetrainHparams
from harness.core.identity import task_fingerprint
from harness.core.masks import full_mask
from harness.core.registry import METHODS
from harness.data.token_data import TokenData
from harness.engine.gate import check_cell
from harness.storage import store
from methods.calibration import Calibration, out_by_in, transposed
from methods.pruning import get_pruning
from methods.sparsegpt import reconstruct
from methods.spec import get_method
from tasks.lm import corpus, models
from tasks.spec import get_task
from tests.lm_files import save_model, write_json_lines, write_wikitext


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("lm")
    return {kind: save_model(root / kind, kind) for kind in ("opt", "gpt2", "pythia", "llama")}


@pytest.fixture(scope="module")
def wikitext(tmp_path_factory):
    return write_wikitext(tmp_path_factory.mktemp("wikitext-2-raw"))


def calibration_of(model, samples=8, seed=0, length=32):
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randint(0, model.config.vocab_size, (samples, length), generator=g)
    return Calibration(inputs, models.feed)


def loaded(path):
    model = models.load_checkpoint(path)
    return model, {k: v.clone() for k, v in model.state_dict().items()}


# -- tinylm ---------------------------------------------------------------------------------------------


def test_tinylm_is_a_transformers_decoder_with_block_linears_prunable():
    from transformers import LlamaForCausalLM

    task = get_task("tinylm")
    torch.manual_seed(0)
    model = task.make_model()
    assert isinstance(model, LlamaForCausalLM)
    assert sum(p.numel() for p in model.parameters()) == 844_928
    prunable = task.prunable(model)
    assert len(prunable) == 4 * 7  # q, k, v, o, gate, up, down of each block
    assert all(".layers." in name for name in prunable)
    assert "lm_head.weight" not in prunable and "model.embed_tokens.weight" not in prunable
    norms = [type(m).__name__ for m in model.modules() if "Norm" in type(m).__name__]
    assert len(norms) == 2 * 4 + 1  # pre-norm: before attention and MLP in each block, and a final one


def test_the_embedded_corpus_is_split_by_document_and_checksummed():
    from pydoc_data.topics import topics

    text = corpus.python_topics()
    splits = [set(text.documents[s]) for s in corpus.SPLITS]
    assert sum(len(s) for s in splits) == len(set(topics.values())) and set().union(*splits) == set(topics.values())
    assert not (splits[0] & splits[1]) and not (splits[0] & splits[2]) and not (splits[1] & splits[2])
    distinct = dict.fromkeys(topics[k] for k in sorted(topics))
    digest = hashlib.sha256("\n\n".join(distinct).encode()).hexdigest()
    assert digest in get_task("tinylm").data_definition
    assert corpus.byte_tokens("é a").tolist() == [195, 169, 32, 97]


def test_the_tinylm_schedule_is_a_transformers_and_every_method_applies():
    task = get_task("tinylm")
    S, T = task.schedule, task.epochs
    assert task.optimizer.name == "adamw"
    assert S(0) == 0.0 and S(S.warmup_epochs) == pytest.approx(3e-3) and S(T) == pytest.approx(3e-4)
    rates = [S(g) for g in torch.linspace(S.warmup_epochs, T, 20).tolist()]
    assert all(a >= b for a, b in itertools.pairwise(rates))
    for method in METHODS.names():
        check_cell(RetrainHparams(BaseHparams("tinylm"), method, T / 2, (0.5,)))  # a real run: T, S, rewind points


def test_perplexity_is_exp_of_the_mean_token_nll_over_non_overlapping_windows(checkpoints):
    model, _ = loaded(checkpoints["llama"])
    g = torch.Generator().manual_seed(1)
    streams = {s: torch.randint(0, model.config.vocab_size, (n,), generator=g)
               for s, n in (("train", 300), ("val", 100), ("test", 77))}
    data = TokenData(streams, 16, 4, models.logits, eval_batch_size=3)
    nll, hits, count = 0.0, 0, 0
    with torch.no_grad():
        for start in range(0, 77 - 16 + 1, 16):  # 4 whole windows; the last 13 tokens are left out
            ids = streams["test"][start : start + 16]
            logp = torch.log_softmax(model(input_ids=ids[None]).logits[0].double(), -1)
            for i in range(15):
                nll -= float(logp[i, ids[i + 1]])
                hits += int(logp[i].argmax() == ids[i + 1])
                count += 1
    assert count == 4 * 15
    assert data.evaluate(model, "test") == pytest.approx(math.exp(nll / count), rel=1e-5)
    assert data.report(model)["test_next_token_accuracy"] == pytest.approx(100 * hits / count)
    assert data.report(model)["seqlen"] == 16


def test_a_score_is_reused_for_the_same_weights_in_any_copy_and_computed_again_for_changed_ones(checkpoints):
    model, _ = loaded(checkpoints["llama"])
    g = torch.Generator().manual_seed(2)
    streams = {s: torch.randint(0, model.config.vocab_size, (n,), generator=g)
               for s, n in (("train", 300), ("val", 100), ("test", 77))}
    calls = []
    data = TokenData(streams, 16, 4, lambda m, ids: calls.append(ids) or models.logits(m, ids), eval_batch_size=8)
    first = data.score(model, "val")
    scored = len(calls)
    copy = type(model)(model.config)
    copy.load_state_dict(model.state_dict())
    with torch.no_grad():  # an in-place change that leaves the values as they are (a mask applied again)
        next(copy.parameters()).mul_(1.0)
    assert data.score(copy, "val") == first and len(calls) == scored
    with torch.no_grad():
        copy.model.norm.weight.mul_(0.5)
    assert data.score(copy, "val") != first and len(calls) == 2 * scored
    assert data.score(model, "val") == first and len(calls) == 3 * scored  # one split's last score is kept


# -- Wanda ----------------------------------------------------------------------------------------------


def brute_force_wanda(model, names, calibration, density, n=0, m=0):
    """Wanda by its definition, layer after layer in forward order, each layer's inputs read by a full
    forward pass of the network as pruned so far, and each row's kept weights chosen by sorting in Python."""
    modules = dict(model.named_modules())
    masks = {}
    for name in names:
        module = modules[name.rpartition(".")[0]]
        seen: list[torch.Tensor] = []
        handle = module.register_forward_pre_hook(
            lambda mod, args, seen=seen: seen.append(args[0].reshape(-1, args[0].shape[-1])))
        with torch.no_grad():
            for batch in calibration.inputs.split(3):
                model(input_ids=batch)
        handle.remove()
        X = torch.cat(seen).double()
        W = out_by_in(module, module.weight).detach().double()
        rows, columns = W.shape
        norms = [math.sqrt(sum(float(X[t, j]) ** 2 for t in range(len(X)))) for j in range(columns)]
        keep = torch.zeros(rows, columns, dtype=torch.bool)
        for r in range(rows):
            score = [abs(float(W[r, j])) * norms[j] for j in range(columns)]
            groups = [range(g, g + m) for g in range(0, columns, m)] if m else [range(columns)]
            for group in groups:
                count = n if m else round(density * columns)
                best = sorted(group, key=lambda j: (-score[j], j))[:count]
                keep[r, best] = True
        with torch.no_grad():
            out_by_in(module, module.weight).masked_fill_(~keep, 0.0)
        masks[name] = keep.t() if transposed(module) else keep
    return masks


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
@pytest.mark.parametrize("params", [{}, {"n": 2, "m": 4}])
def test_wandas_mask_equals_a_brute_force_computation_of_its_definition(checkpoints, kind, params):
    model, weights = loaded(checkpoints[kind])
    names = models.block_linears(model)
    calibration = calibration_of(model)
    got = get_pruning("wanda").prune(weights, full_mask(model, names), 0.5, params, model, 0, calibration)
    reference, _ = loaded(checkpoints[kind])
    expected = brute_force_wanda(reference, names, calibration, 0.5, params.get("n", 0), params.get("m", 0))
    for name in names:
        assert torch.equal(got[name], expected[name]), name


# -- SparseGPT ------------------------------------------------------------------------------------------


def layer_inputs(model, names, calibration):
    modules = dict(model.named_modules())
    seen = {n: [] for n in names}
    handles = [modules[n.rpartition(".")[0]].register_forward_pre_hook(
        lambda mod, args, n=n: seen[n].append(args[0].reshape(-1, args[0].shape[-1]).float())) for n in names]
    with torch.no_grad():
        calibration.feed(model, calibration.inputs)
    for h in handles:
        h.remove()
    return {n: torch.cat(x) for n, x in seen.items()}


def magnitude_like(W, kept, n=0, m=0):
    """Magnitude pruning of (out, in) W to the density of ``kept`` (per row, or n of every m)."""
    if m:
        groups = W.abs().view(W.shape[0], -1, m)
        top = groups.argsort(dim=-1, descending=True, stable=True)[..., :n]
        return W * torch.zeros_like(groups, dtype=torch.bool).scatter_(-1, top, True).view_as(W)
    count = int(kept.sum())
    keep = torch.zeros(W.numel(), dtype=torch.bool)
    keep[W.abs().flatten().argsort(descending=True, stable=True)[:count]] = True
    return W * keep.view_as(W)


@pytest.fixture(scope="module")
def tinylm_layers():
    """The tiny model's every prunable layer with its inputs on 16 calibration sequences of the real corpus."""
    from tasks.spec import DataOptions

    task = get_task("tinylm")
    torch.manual_seed(0)
    model = task.make_model()
    names = task.prunable(model)
    data = task.load_data(DataOptions(batch_size=16))
    inputs = layer_inputs(model, names, Calibration(data.calibration(16, 0), models.feed))
    modules = dict(model.named_modules())
    return {n: (out_by_in(modules[n.rpartition(".")[0]], modules[n.rpartition(".")[0]].weight).detach().float(),
                inputs[n]) for n in names}


@pytest.mark.parametrize("params", [{"density": 0.5}, {"density": 0.3}, {"n": 2, "m": 4}])
def test_sparsegpts_reconstruction_error_is_at_most_magnitudes_on_every_layer(tinylm_layers, params):
    n, m = params.get("n", 0), params.get("m", 0)
    for name, (W, X) in tinylm_layers.items():
        updated, kept = reconstruct(W, X.t() @ X, torch.ones_like(W, dtype=torch.bool), params.get("density", 1.0),
                                    n, m)
        assert torch.all(updated[~kept] == 0)
        assert kept.float().mean() == pytest.approx(params.get("density", 0.5), abs=1e-3)
        ours = ((W - updated) @ X.t()).norm()
        magnitude = ((W - magnitude_like(W, kept, n, m)) @ X.t()).norm()
        assert ours <= magnitude, name


def test_sparsegpt_matches_an_exact_least_squares_reconstruction_of_the_kept_weights():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(400, 32, generator=g) @ torch.randn(32, 32, generator=g) * 0.3 + torch.randn(400, 32, generator=g)
    W = torch.randn(8, 32, generator=g)

    def least_squares(kept):
        out = torch.zeros(W.shape, dtype=torch.float64)
        for r in range(W.shape[0]):
            K = kept[r].nonzero().flatten()
            out[r, K] = torch.linalg.lstsq(X[:, K].double(), X.double() @ W[r].double()).solution
        return out

    # pruned weights all before the kept ones in column order: every kept weight is free to compensate, and
    # the optimal brain surgeon's updates are the least-squares solution itself
    front = torch.zeros_like(W, dtype=torch.bool)
    front[:, 12:] = True
    updated, kept = reconstruct(W, X.t() @ X, front, 20 / 32, damp=1e-8)
    assert torch.equal(kept, front)
    assert torch.allclose(updated.double(), least_squares(kept), rtol=1e-4, atol=1e-5)
    # its own mask: kept weights before a pruned one are not revisited, so it is close to, not at, the optimum
    updated, kept = reconstruct(W, X.t() @ X, torch.ones_like(W, dtype=torch.bool), 0.5)
    optimum = ((W.double() - least_squares(kept)) @ X.double().t()).norm()
    ours = ((W - updated) @ X.t()).norm()
    assert optimum <= ours <= 1.15 * optimum


# -- both ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
@pytest.mark.parametrize("strategy", ["wanda", "sparsegpt", "nm-magnitude"])
@pytest.mark.parametrize("n,m", [(2, 4), (1, 4), (4, 8)])
def test_nm_holds_in_every_group_along_each_layers_inputs(checkpoints, kind, strategy, n, m):
    model, weights = loaded(checkpoints[kind])
    names = models.block_linears(model)
    modules = dict(model.named_modules())
    spec = get_pruning(strategy)
    calibration = calibration_of(model) if spec.calibrated else None
    mask = spec.prune(weights, full_mask(model, names), n / m, {"n": n, "m": m}, model, 0, calibration)
    for name in names:
        rows = out_by_in(modules[name.rpartition(".")[0]], mask[name])
        assert torch.all(rows.reshape(rows.shape[0], -1, m).sum(-1) == n), name


@pytest.mark.parametrize("strategy", ["wanda", "sparsegpt"])
def test_calibrated_pruning_is_deterministic_for_a_calibration_seed(strategy):
    from tasks.tinylm import load

    task = get_task("tinylm")
    data = load(__import__("tasks.spec", fromlist=["DataOptions"]).DataOptions(batch_size=16))
    assert torch.equal(data.calibration(8, 3), data.calibration(8, 3))
    assert not torch.equal(data.calibration(8, 3), data.calibration(8, 4))
    assert data.calibration(8, 3).shape == (8, 128)
    spec = get_pruning(strategy)
    outcomes = []
    for seed in (3, 3, 4):
        torch.manual_seed(0)
        model = task.make_model()
        weights = {k: v.clone() for k, v in model.state_dict().items()}
        pruned = spec.pruned(weights, full_mask(model, task.prunable(model)), 0.5, {}, model, 0,
                             Calibration(data.calibration(8, seed), models.feed))
        outcomes.append(pruned)
    for name in outcomes[0].mask:
        assert torch.equal(outcomes[0].mask[name], outcomes[1].mask[name])
    assert all(torch.equal(outcomes[0].weights[k], outcomes[1].weights[k]) for k in outcomes[0].weights)
    assert any(not torch.equal(outcomes[0].mask[k], outcomes[2].mask[k]) for k in outcomes[0].mask)


# -- through the CLI -------------------------------------------------------------------------------------


def run(*args):
    result = CliRunner().invoke(app, ["run", *args, "--no-tracking", "--json"])
    return result, (json.loads(result.stdout)["cells"] if result.exit_code == 0 else None)


def test_tinylm_runs_wanda_then_lr_rewinding_with_perplexity_recorded(tmp_path):
    result, cells = run("lr-rewinding", "tinylm", "--pruning", "wanda", "--density", "0.5", "--epochs-scale", "0.02",
                        "-t", "0.08", "--pruning-param", "samples=16", "--store", str(tmp_path))
    assert result.exit_code == 0, result.output
    cell = cells[0]
    assert cell["metric"] == "perplexity" and cell["seqlen"] == 128
    assert 1.0 < cell["test_acc"] < 256 and 1.0 < cell["unpruned_test_acc"] < 256
    assert 0 < cell["test_next_token_accuracy"] < 100
    assert cell["calibration_tokens"] == 16 * 128 and cell["pruning_seconds"] > 0 and cell["pruning_peak_bytes"] >= 0
    assert cell["density"] == pytest.approx(0.5, abs=1e-3)
    base = json.loads(next((tmp_path / "base").rglob("result.json")).read_text())
    assert base["seqlen"] == 128 and base["metric"] == "perplexity"


@pytest.mark.parametrize("kind", ["opt", "gpt2", "pythia"])
def test_hf_causal_lm_prunes_a_saved_checkpoint_with_sparsegpt_2_4(tmp_path, checkpoints, wikitext, kind):
    args = ("--model", str(checkpoints[kind]), "--data-dir", str(wikitext), "--pruning", "sparsegpt",
            "--pruning-param", "n=2", "--pruning-param", "m=4", "--pruning-param", "samples=8",
            "--store", str(tmp_path))
    result, cells = run("fine-tuning", "hf-causal-lm", *args, "-t", "0", "-t", "0.5")
    assert result.exit_code == 0, result.output
    assert [c["retraining_epochs"] for c in cells] == [0.0, 0.5]
    assert cells[0]["seqlen"] == 32 and cells[0]["calibration_tokens"] == 8 * 32 and cells[0]["T"] == 0.0
    assert cells[0]["density"] == pytest.approx(0.5)
    checkpoint, _ = loaded(checkpoints[kind])
    stored = store.load(tmp_path / "retrain" / cells[0]["run"] / "weights.pt")
    mask = store.load(tmp_path / "retrain" / cells[0]["run"] / "mask.pt")
    modules = dict(checkpoint.named_modules())
    for name, keep in mask.items():
        rows = out_by_in(modules[name.rpartition(".")[0]], keep)
        assert torch.all(rows.reshape(rows.shape[0], -1, 4).sum(-1) == 2), name
        assert torch.all(stored[name][~keep] == 0)
    # SparseGPT updated the weights it kept: t = 0 holds them, not the checkpoint's
    assert any(not torch.equal(stored[n], checkpoint.state_dict()[n] * mask[n]) for n in mask)


def test_hf_causal_lm_reads_json_lines_gzipped_or_not(tmp_path, checkpoints):
    for gzipped in (True, False):
        data = write_json_lines(tmp_path / f"c4-{gzipped}", gzipped=gzipped)
        text = corpus.from_folder(data)
        assert len(text.documents["train"]) == 120 and len(text.documents["val"]) == 20
        assert len(text.documents["test"]) == 20  # no test file: validation split alternately
        result, cells = run("llr", "hf-causal-lm", "--model", str(checkpoints["llama"]), "--data-dir", str(data),
                            "--pruning", "wanda", "--density", "0.3", "--pruning-param", "samples=4", "-t", "0.25",
                            "--store", str(tmp_path / "store"))
        assert result.exit_code == 0, result.output
        assert cells[0]["pruning"] == "wanda" and cells[0]["density"] == pytest.approx(0.3, abs=0.02)


def test_a_checkpoints_base_network_is_named_by_its_files(tmp_path, wikitext):
    from tasks.hf_causal_lm import checkpoint_digest

    folder = tmp_path / "model"

    def fingerprint():
        checkpoint_digest.cache_clear()
        hp = BaseHparams("hf-causal-lm", checkpoint=str(folder), data_dir=str(wikitext))
        return task_fingerprint(get_task("hf-causal-lm").resolved(hp))

    save_model(folder, "opt", seed=0)
    first = fingerprint()
    save_model(folder, "opt", seed=0)
    assert fingerprint() == first  # the same files again
    save_model(folder, "opt", seed=1)  # other weights in the same folder: another base network
    assert fingerprint() != first


@pytest.mark.parametrize("args,message", [
    (["lr-rewinding", "hf-causal-lm", "--model", "{opt}", "--data-dir", "{wikitext}"],
     "hf-causal-lm starts from a pretrained checkpoint, with no training run of ours (no T, no schedule S, no "
     "rewind points), which lr-rewinding needs; valid: " + ", ".join(
         n for n in METHODS.names() if not get_method(n).needs_training_run)),
    (["weight-rewinding", "hf-causal-lm", "--model", "{opt}", "--data-dir", "{wikitext}"],
     "which weight-rewinding needs"),
    (["reinit", "hf-causal-lm", "--model", "{opt}", "--data-dir", "{wikitext}"], "which reinit needs"),
    (["fine-tuning", "hf-causal-lm", "--data-dir", "{wikitext}"], "hf-causal-lm needs --model PATH"),
    (["fine-tuning", "hf-causal-lm", "--model", "{opt}"], "hf-causal-lm needs --model PATH"),
    (["fine-tuning", "hf-causal-lm", "--model", "{missing}", "--data-dir", "{wikitext}"],
     "is neither a folder nor a hub model that could be downloaded"),
    (["fine-tuning", "hf-causal-lm", "--model", "{wikitext}", "--data-dir", "{wikitext}"],
     "is not a model folder transformers can read"),
    (["fine-tuning", "hf-causal-lm", "--model", "{opt}", "--data-dir", "{opt}"], "holds neither WikiText-2 raw"),
    (["fine-tuning", "hf-causal-lm", "--model", "{opt}", "--data-dir", "{badjson}"],
     "c4-train.json:2 is not a JSON line"),
    (["fine-tuning", "mnist1d", "--model", "{opt}"], "--model is for the tasks that load a checkpoint (hf-causal-lm)"),
    (["fine-tuning", "mnist1d", "--pruning", "wanda", "--density", "0.5"],
     "pruning strategy wanda reads calibration data, which mnist1d has none of; valid for mnist1d: global-magnitude"),
    (["fine-tuning", "tinylm", "--pruning", "wanda", "--pruning-param", "n=2"], "N:M pruning takes both n and m"),
    (["fine-tuning", "tinylm", "--pruning", "sparsegpt", "--density", "0.3", "--pruning-param", "n=2",
      "--pruning-param", "m=4"], "keeps density 0.5, not 0.3"),
    (["fine-tuning", "tinylm", "--pruning", "wanda", "--pruning-param", "samples=0", "--density", "0.5"],
     "parameter samples must be an integer in [1, 4096]"),
])
def test_bad_language_model_input_is_one_line_and_writes_nothing(tmp_path, checkpoints, wikitext, args, message):
    bad = tmp_path / "badjson"
    bad.mkdir()
    (bad / "c4-train.json").write_text('{"text": "fine"}\n{"text": \n')
    (bad / "c4-validation.json").write_text('{"text": "fine"}\n')
    places = {"opt": checkpoints["opt"], "wikitext": wikitext, "missing": tmp_path / "nothere", "badjson": bad}
    result = CliRunner().invoke(app, ["run", *(a.format(**places) for a in args), "--store", str(tmp_path / "store"),
                                      "--no-tracking"])
    assert result.exit_code != 0
    assert message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert not (tmp_path / "store" / "base").exists()


def test_a_calibrated_strategy_without_calibration_data_is_refused():
    model = models.tiny_llama()
    names = models.block_linears(model)
    with pytest.raises(HarnessError, match="reads calibration data, and none was given"):
        get_pruning("wanda").prune(model.state_dict(), full_mask(model, names), 0.5, {}, model, 0)


def test_checkpoint_digest_covers_the_weights(tmp_path):
    from tasks.hf_causal_lm import checkpoint_digest

    folder = save_model(tmp_path / "m", "gpt2")
    before = checkpoint_digest(str(folder))
    checkpoint_digest.cache_clear()
    weights = next(Path(folder).glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-1] + b"\0")
    assert checkpoint_digest(str(folder)) != before


def test_a_study_sweeps_a_checkpoint_over_calibration_seeds_and_ranks_by_perplexity(tmp_path, checkpoints, wikitext):
    study = tmp_path / "study.yaml"
    study.write_text("task: hf-causal-lm\nmethods: [fine-tuning]\nretrain_epochs: [0, 0.5]\ndensities: [0.5]\n"
                     "seeds: 1\ncalibration_seeds: 2\npruning: [global-magnitude, {strategy: wanda, params: "
                     "{samples: 4}}]\n")
    store_dir = tmp_path / "store"
    common = ["--store", str(store_dir), "--no-tracking"]
    refused = CliRunner().invoke(app, ["sweep", str(study), *common, "--dry-run"])
    assert refused.exit_code != 0 and "hf-causal-lm needs --model PATH" in refused.output
    done = CliRunner().invoke(app, ["sweep", str(study), "--model", str(checkpoints["opt"]), "--data-dir",
                                    str(wikitext), "--jobs", "1", *common])
    assert done.exit_code == 0, done.output
    assert "perplexity against compression" in done.output
    [results] = (store_dir / "studies").glob("*/results.csv")
    import pandas as pd

    rows = pd.read_csv(results)
    # magnitude once, Wanda once per calibration seed (the seed a parameter, so part of the cell's name)
    assert sorted(rows["pruning_params"].fillna("").unique()) == ["", "calibration_seed=1;samples=4", "samples=4"]
    assert len(rows) == 3 * 2 and set(rows["metric"]) == {"perplexity"}
    # t = 0 is the pruned checkpoint as it is; t is picked on validation perplexity, the lowest best
    from harness.analysis import statistics as st
    from harness.analysis.results_table import normalize

    table = normalize(rows)
    best = st.best_validated(table)
    assert set(best["pruning"]) == {"global-magnitude", "wanda"}
    for _, chosen in best.iterrows():
        per_t = table[table["pruning"] == chosen["pruning"]].groupby("retraining_epochs")["val_acc"].median()
        assert chosen["val_median"] == per_t.min() and chosen["retraining_epochs"] == per_t.idxmin()


@pytest.mark.parametrize("kind,head", [("opt", "model.decoder.embed_tokens.weight"), ("llama", "lm_head.weight")])
def test_the_lm_head_stays_dense_unless_the_strategy_is_told_to_prune_it(tmp_path, checkpoints, wikitext, kind, head):
    masks = {}
    for told in ("0", "1"):
        result, cells = run("fine-tuning", "hf-causal-lm", "--model", str(checkpoints[kind]), "--data-dir",
                            str(wikitext), "--pruning", "wanda", "--density", "0.5", "--pruning-param", "samples=4",
                            "--pruning-param", f"head={told}", "-t", "0", "--store", str(tmp_path))
        assert result.exit_code == 0, result.output
        masks[told] = store.load(tmp_path / "retrain" / cells[0]["run"] / "mask.pt")
    assert head not in masks["0"]  # dense by default, as in Wanda and SparseGPT
    assert masks["1"][head].float().mean() == pytest.approx(0.5, abs=0.01)  # OPT's head is its input embedding
    assert set(masks["1"]) - set(masks["0"]) == {head}


def test_the_peak_memory_of_pruning_is_what_it_added():
    from harness.core.peak_memory import measured

    with measured(torch.device("cpu")) as cost:
        held = torch.ones(25_000_000)  # 100 MB, touched
        held += 1
    assert cost.resettable and 95e6 <= cost.peak_bytes <= 140e6 and cost.seconds > 0
    del held
