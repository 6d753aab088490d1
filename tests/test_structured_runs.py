"""Structured masks with every retraining method, one-shot, end to end on fabricated CIFAR files."""

import json

import pytest
import torch
from typer.testing import CliRunner

from harness.cli.app import app
from harness.storage.store import load
from tests.fabricate import cifar10_folder

METHODS = ["fine-tuning", "weight-rewinding", "lr-rewinding", "low-lr-rewinding", "reinit"]


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    root = tmp_path_factory.mktemp("structured")
    return cifar10_folder(root / "data"), root / "store"


def run(cifar, method, *extra):
    data, store = cifar
    return CliRunner().invoke(app, [
        "run", method, "cifar10-resnet56", "--structured", "resnet56-B", "--data-dir", str(data),
        "--epochs-scale", "0.01", "--batch-size", "50", "-t", "1", "--store", str(store), "--no-tracking", *extra])


def stored(cifar, method, name):
    [folder] = (cifar[1] / "retrain").glob(f"cifar10-resnet56-{method}-r1-*")
    return load(folder / name) if name.endswith(".pt") else json.loads((folder / name).read_text())


@pytest.mark.parametrize("method", METHODS)
def test_every_method_retrains_under_a_structured_mask(cifar, method):
    result = run(cifar, method, "--level", "2")
    assert result.exit_code == 0, result.output
    row = stored(cifar, method, "result.json")
    assert row["pruning"] == "resnet56-B" and row["level"] == 2
    assert row["flops"] < row["dense_flops"] and row["compression_ratio"] > 1
    mask, weights = stored(cifar, method, "mask.pt"), stored(cifar, method, "weights.pt")
    assert all((weights[n][~keep] == 0).all() for n, keep in mask.items())


def test_reinit_keeps_the_discovered_structure_with_new_weights(cifar):
    for method in ("fine-tuning", "reinit"):
        assert run(cifar, method, "--level", "2").exit_code == 0
    masks = [stored(cifar, m, "mask.pt") for m in ("fine-tuning", "reinit")]
    assert all(torch.equal(masks[0][n], masks[1][n]) for n in masks[0])
    weights = [stored(cifar, m, "weights.pt") for m in ("fine-tuning", "reinit")]
    assert not torch.equal(weights[0]["conv.weight"], weights[1]["conv.weight"])


def test_measure_speed_reports_compacted_latency(cifar):
    data, store = cifar
    result = CliRunner().invoke(app, [
        "run", "lr-rewinding", "cifar10-resnet56", "--structured", "resnet56-A", "--level", "1", "--data-dir",
        str(data), "--epochs-scale", "0.01", "--batch-size", "50", "-t", "1", "--store", str(store),
        "--no-tracking", "--measure-speed"])
    assert result.exit_code == 0, result.output
    assert "measured latency on cpu" in result.stdout
    [folder] = [p for p in (store / "retrain").glob("cifar10-resnet56-lr-rewinding-r1-*")
                if json.loads((p / "result.json").read_text())["pruning"] == "resnet56-A"]
    speed = json.loads((folder / "speed.json").read_text())
    assert speed["compact_parameters"] < speed["dense_parameters"]
    assert speed["speedup_b1"] > 0 and speed["speedup_b128"] > 0


@pytest.mark.parametrize(("args", "message"), [
    (["--structured", "resnet34-A"],
     "pruning strategy resnet34-A is for imagenet-resnet34, not cifar10-resnet56; "
     "valid for cifar10-resnet56: global-magnitude, global-magnitude-no-attention, layerwise-magnitude, "
     "nm-magnitude, random, resnet56-A, resnet56-B"),
    (["--structured", "resnet57-A"], "unknown pruning strategy 'resnet57-A'; valid: global-magnitude"),
    (["--structured", "resnet56-A", "--level", "6"], "--level must be one of 1, 2, 3, 4, 5 for resnet56-A, got 6"),
    (["--structured", "resnet56-A", "--density", "0.5"], "pruning strategy resnet56-A takes a level k"),
    (["--measure-speed"], "--measure-speed needs filter pruning (--structured)"),
])
def test_bad_structured_input(tmp_path, args, message):
    result = CliRunner().invoke(app, ["run", "lr-rewinding", "cifar10-resnet56", *args, "--store", str(tmp_path)])
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
