"""Study files and presets: defaults, narrowing, hashing, the job plan and its epoch count, bad input."""

import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.core.canonical import content_hash
from harness.sweep.plan import epochs_of, plan
from harness.sweep.study import Study, load_study, parse_study, presets
from methods.spec import METHODS, get_method

PAPER_METHODS = ["fine-tuning", "weight-rewinding", "lr-rewinding", "low-lr-rewinding", "reinit"]


def write(tmp_path, text, name="study.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_the_paper_grid_is_the_default():
    study = parse_study({"task": "mnist1d"}, "x.yaml")
    # every registered method that can run on the task (not those that read a transformer's blocks)
    applicable = [n for n in METHODS.names() if not get_method(n).minimizes.needs_blocks]
    assert study.methods == tuple(applicable) and "block-reconstruction" in METHODS.names()
    assert study.times() == [3.0 * k for k in range(1, 11)]  # ten times evenly over (0, T = 30]
    assert study.target_densities() == pytest.approx([0.8**k for k in range(1, 21)])
    assert study.seeds == (0, 1, 2) and study.schedules == ("one-shot",)
    assert len(study.cells()) == len(applicable) * 10 * 20 * 3


def test_every_dimension_can_be_narrowed(tmp_path):
    study = load_study(write(tmp_path, """
task: mnist1d
methods: [lr-rewinding, fine-tuning]
retrain_epochs: [3, 15]
density_k: {first: 2, last: 6, step: 2}
seeds: [4]
schedules: [iterative]
epochs_scale: 0.5
method_params: {gradual: {span: 0.25}}
"""))
    cells = study.cells()
    assert len(cells) == 2 * 2 * 3
    assert {c.method for c in cells} == {"lr-rewinding", "fine-tuning"}
    assert {c.retrain_epochs for c in cells} == {3.0, 15.0}
    assert {c.base.seed for c in cells} == {4}
    # iterative: the chain of 20% rounds down to 0.8^k
    assert {c.densities for c in cells} == {tuple(0.8**r for r in range(1, k + 1)) for k in (2, 4, 6)}
    # round 1 of every chain runs too, as a dependency, though it is not a reported cell
    jobs = plan(cells)
    assert any(j.cells and j.cells[-1].round == 1 for j in jobs)


def test_reordered_yaml_gives_the_same_cells_and_hash(tmp_path):
    a = load_study(write(tmp_path, "task: mnist1d\nseeds: 2\ndensity_k: [1, 3]\nretrain_points: 3\n", "a.yaml"))
    b = load_study(write(tmp_path, "retrain_points: 3\ndensity_k: [1, 3]\nseeds: 2\ntask: mnist1d\n", "a2.yaml"))
    assert a.hash == b.hash
    assert [content_hash(c) for c in a.cells()] == [content_hash(c) for c in b.cells()]


@pytest.mark.parametrize("change", ["epochs_scale: 0.5", "method_params: {gradual: {every: 5}}", "batch_size: 64"])
def test_a_changed_hyperparameter_changes_the_hashes(tmp_path, change):
    base = "task: mnist1d\nseeds: 1\ndensity_k: [2]\nretrain_points: 2\nmethods: [gradual]\n"
    a = load_study(write(tmp_path, base, "a.yaml"))
    b = load_study(write(tmp_path, base + change + "\n", "b.yaml"))
    assert a.hash != b.hash
    assert not {content_hash(c) for c in a.cells()} & {content_hash(c) for c in b.cells()}


def test_the_paper_one_shot_grid_shares_prefixes():
    """T = 182, ten retraining times, one density, one seed: 6,780 retraining epochs become 3,522."""
    study = parse_study({"task": "cifar10-resnet56", "methods": PAPER_METHODS, "densities": [0.2], "seeds": [0]},
                        "x.yaml")
    cells = study.cells()
    jobs = plan(cells)
    assert sum(epochs_of(c, 182) for c in cells) == pytest.approx(6780)
    assert sum(j.epochs for j in jobs if j.kind == "cells") == pytest.approx(3522)
    assert [j.epochs for j in jobs if j.kind == "base"] == [182]
    shared = [j for j in jobs if len(j.cells) > 1]
    assert sorted(j.cells[0].method for j in shared) == ["fine-tuning", "reinit"]
    assert all(len(j.cells) == 10 for j in shared)


def test_presets_load_and_the_mnist1d_preset_fits_its_budget():
    assert {"mnist1d-paper", "mnist1d-smoke"} <= set(presets())
    for name in presets():
        assert isinstance(load_study(name), Study)
    study = load_study("mnist1d-paper")
    jobs = plan(study.cells())
    assert len(study.cells()) == 720
    # the paper's presets name the paper's methods: a method added later joins no paper preset
    assert study.methods == ("fine-tuning", "gradual", "low-lr-rewinding", "lr-rewinding", "reinit",
                             "weight-rewinding")
    assert study.hash == "07a632d385c2"  # the grid of docs/mnist1d-paper
    assert sum(j.epochs for j in jobs) == pytest.approx(4545)  # about 20 minutes at ~0.22 s/epoch/core


BAD = {
    "unknown key": ("task: mnist1d\ndensitys: [0.5]\n",
                    "study.yaml: key 'densitys' is not valid; valid keys: name, task, methods,"),
    "unknown method": ("task: mnist1d\nmethods: [fine-tuning, rewind]\n",
                       f"study.yaml: methods: unknown method 'rewind'; valid: {', '.join(METHODS.names())}"),
    "density range": ("task: mnist1d\ndensities: [0.5, 1.5]\n", "study.yaml: densities: must be a number in (0, 1]"),
    "missing task": ("seeds: 2\n", "study.yaml: key 'task' is required; valid: cifar10-resnet110,"),
    "bad yaml": ("task: mnist1d\nseeds: [1, 2\n", "study.yaml: not valid YAML at line 3"),
    "t too long": ("task: mnist1d\nretrain_epochs: [45]\nmethods: [lr-rewinding]\n",
                   "study.yaml: retrain_epochs: retraining epochs t = 45 is out of range for lr-rewinding"),
    "method param": ("task: mnist1d\nmethod_params: {gradual: {span: 3}}\n",
                     "study.yaml: method_params: gradual parameter span must be a number in [0.05, 1]"),
    "not a mapping": ("- mnist1d\n", "study.yaml: a study is a mapping of keys"),
    "structured for another task": ("task: mnist1d\npruning: [{structured: resnet56-A}]\n",
                                    "study.yaml: pruning:"),
    "structured gradual": ("task: cifar10-resnet56\nmethods: [gradual]\npruning: [{structured: resnet56-A}]\n",
                           "study.yaml: pruning: gradual prunes during training, which pruning strategy resnet56-A"),
}


@pytest.mark.parametrize("case", BAD)
def test_malformed_study_is_one_line_naming_file_and_key(tmp_path, case):
    text, message = BAD[case]
    result = CliRunner().invoke(app, ["sweep", write(tmp_path, text), "--store", str(tmp_path / "r"), "--dry-run"])
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert message in result.stderr, result.stderr


def test_unknown_preset_lists_the_presets(tmp_path):
    result = CliRunner().invoke(app, ["sweep", "mnist1d-papr", "--dry-run"])
    assert result.exit_code == 2
    assert "no such study file or preset; presets:" in result.stderr and "mnist1d-paper" in result.stderr


def test_dry_run_prints_the_plan(tmp_path):
    result = CliRunner().invoke(app, ["sweep", "mnist1d-paper", "--store", str(tmp_path), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "720 cells in 507 jobs, 4545 training epochs at least" in result.stdout
    assert "0 jobs cached" in result.stdout and "507 to run (4545 epochs)" in result.stdout
    rows = {line.split("│")[1].strip(): line.split("│")[2:-1] for line in result.stdout.splitlines() if "│" in line}
    assert set(rows) == {"base networks", "fine-tuning", "weight-rewinding", "lr-rewinding", "low-lr-rewinding",
                         "reinit", "gradual"}
    assert [cell.strip() for cell in rows["base networks"]] == ["3", "0", "45", "0", "45"]


def test_sweep_options_narrow_a_preset(tmp_path):
    result = CliRunner().invoke(app, ["sweep", "mnist1d-paper", "--store", str(tmp_path), "--dry-run", "--seed", "0",
                                      "--methods", "fine-tuning,lr-rewinding", "--epochs-scale", "0.1"])
    assert result.exit_code == 0, result.output
    assert "80 cells in 45 jobs" in result.stdout and "T = 3" in result.stdout
    result = CliRunner().invoke(app, ["sweep", "mnist1d-paper", "--store", str(tmp_path), "--dry-run",
                                      "--methods", "fine-tuning", "--methods", "no-such-method"])
    assert result.exit_code == 2 and "unknown method 'no-such-method'" in result.stderr
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(("address", "message"), [
    ("127.0.0.1:1", "cannot reach the Ray cluster at 127.0.0.1:1"),
    ("headnode", "Ray address 'headnode' has no host:port"),
])
def test_unreachable_ray_address_is_one_line(tmp_path, address, message):
    result = CliRunner().invoke(app, ["sweep", "mnist1d-smoke", "--store", str(tmp_path), "--no-tracking",
                                      "--executor", "ray", "--address", address])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and message in result.stderr and result.stderr.count("\n") == 1
