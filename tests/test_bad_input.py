"""A corpus of bad input across every subcommand, through the console script's own entry point.

Each case must end with its documented exit code and exactly one line on stderr (no traceback, no
usage box), and must leave the results store byte for byte as it was.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from harness.cli.app import main
from methods.spec import METHODS
from tests.conftest import QUICK

STUDY_ERRORS = {
    # name: (study file text, or bytes for a binary file; a piece of the message)
    "t infinite": ("task: mnist1d\nretrain_epochs: [.inf]\n", "retrain_epochs: must be a number"),
    "t nan": ("task: mnist1d\nretrain_epochs: [.nan]\n", "retrain_epochs: must be a number"),
    "scale nan": ("task: mnist1d\nepochs_scale: .nan\n", "epochs_scale: must be a number in [0.0001, 1000]"),
    "scale tiny": ("task: mnist1d\nepochs_scale: 1.0e-9\n", "epochs_scale: must be a number in [0.0001, 1000]"),
    "density keeps no weight": ("task: mnist1d\ndensities: [1.0e-9]\n",
                                "study.yaml: densities asks for density 1e-09, which keeps less than one"),
    "scale infinite": ("task: mnist1d\nepochs_scale: .inf\n", "epochs_scale: must be a number"),
    "seeds huge": ("task: mnist1d\nseeds: 100000000000000000000\n", "seeds: must be an integer in [1, 100000]"),
    "seeds text": ("task: mnist1d\nseeds: 1e20\n", "seeds: must be an integer"),
    "seed negative": ("task: mnist1d\nseeds: [0, -1]\n", "seeds: must be an integer in [0, 4294967295]"),
    "retrain points huge": ("task: mnist1d\nretrain_points: 100000000\n", "retrain_points: must be an integer in"),
    "retrain points 1e8": ("task: mnist1d\nretrain_points: 1e8\n", "retrain_points: must be an integer in"),
    "retrain points zero": ("task: mnist1d\nretrain_points: 0\n", "retrain_points: must be an integer in [1, 1000]"),
    "density k huge": ("task: mnist1d\ndensity_k: {first: 1, last: 1000000000000}\n", "density_k: must be an integer"),
    "density nan": ("task: mnist1d\ndensities: [.nan]\n", "densities: must be a number in (0, 1]"),
    "grid of 24M cells": ("task: mnist1d\nseeds: 1000\nretrain_points: 1000\ndensity_k: {first: 0, last: 99}\n"
                          "schedules: [one-shot, iterative]\nmethods: [fine-tuning]\n",
                          "the grid has 200,000,000 cells, more than 100,000; narrow seeds (1000)"),
    "batch size zero": ("task: mnist1d\nbatch_size: 0\n", "batch_size: must be an integer"),
    "binary file": (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "not a text file"),
    "empty file": ("", "a study is a mapping of keys"),
    "method param nan": ("task: mnist1d\nmethod_params: {gradual: {span: .nan}}\n", "span must be a number"),
    "study density as a percentage": ("task: mnist1d\ndensities: [20]\n", "got 20; did you mean 0.20 (20%)?"),
    "study key typo": ("task: mnist1d\nretrain_point: 3\n", "did you mean 'retrain_points'?"),
    "study method typo": ("task: mnist1d\nmethods: [lr-rewind]\n", "did you mean 'lr-rewinding'?"),
    "unknown schedule": ("task: mnist1d\nschedules: [cyclic]\n", "unknown schedule 'cyclic'"),
    "name that is a path": ("name: ../../../trav_escape\ntask: mnist1d\nmethods: [fine-tuning]\n",
                            "name: must be a name of letters, digits"),
    "name with a slash": ("name: a/b\ntask: mnist1d\nmethods: [fine-tuning]\n", "not 'a/b'"),
}

Q = ["--epochs-scale", str(QUICK)]

CASES = {
    # name: (arguments, a piece of the message, exit code)
    # -- run: the parser's own type errors, now one line
    "run density not a number": (["run", "fine-tuning", "mnist1d", "--density", "abc"], "'--density'", 2),
    "run seed not an integer": (["run", "fine-tuning", "mnist1d", "--seed", "1.5"], "'--seed'", 2),
    "run seed negative": (["run", "fine-tuning", "mnist1d", "--seed", "-1"], "'--seed'", 2),
    "run seed too large": (["run", "fine-tuning", "mnist1d", "--seed", "99999999999"], "'--seed'", 2),
    "run missing task": (["run", "fine-tuning"], "Missing argument 'task'", 2),
    "run missing method": (["run"], "Missing argument 'method'", 2),
    "run unknown option": (["run", "fine-tuning", "mnist1d", "--densty", "0.5"], "No such option", 2),
    "run workers negative": (["run", "fine-tuning", "mnist1d", "--workers", "-3"], "'--workers'", 2),
    "run option without value": (["run", "fine-tuning", "mnist1d", "--density"], "requires an argument", 2),
    # -- run: values the parser accepts and the harness refuses
    "run unknown task": (["run", "lr-rewinding", "cifar100"], "unknown task 'cifar100'; valid: cifar10-resnet110", 2),
    "run unknown method": (["run", "rewind", "mnist1d"],
                           f"unknown method 'rewind'; valid: {', '.join(METHODS.names())}", 2),
    "run method typo": (["run", "lr-rewind", "mnist1d"], "; did you mean 'lr-rewinding'?", 2),
    "run task typo": (["run", "lr-rewinding", "mnist-1d"], "; did you mean 'mnist1d'?", 2),
    "run strategy typo": (["run", "lr-rewinding", "mnist1d", "--pruning", "Global-Magnitud"],
                          "; did you mean 'global-magnitude'?", 2),
    "run density as a percentage": (["run", "lr-rewinding", "mnist1d", "--density", "20"],
                                    "density must be in (0, 1], got 20; did you mean 0.20 (20%)?", 2),
    "tune density as a percentage": (["tune", "lr-rewinding", "mnist1d", "--density", "20"],
                                     "did you mean 0.20 (20%)?", 2),
    "list kind typo": (["list", "method"], "; did you mean 'methods'?", 2),
    "sweep preset typo": (["sweep", "mnist1d-papr"], "; did you mean 'mnist1d-paper'?", 2),
    "run density 0": (["run", "lr-rewinding", "mnist1d", "--density", "0"], "density must be in (0, 1]", 2),
    "run density above 1": (["run", "lr-rewinding", "mnist1d", "--density", "1.5"], "density must be in (0, 1]", 2),
    "run density nan": (["run", "lr-rewinding", "mnist1d", "--density", "nan"], "--density must be a finite", 2),
    "run density inf": (["run", "lr-rewinding", "mnist1d", "--density", "inf"], "--density must be a finite", 2),
    "run t negative": (["run", "fine-tuning", "mnist1d", "-t", "-1"], "valid: t >= 0", 2),
    "run t beyond T": (["run", "weight-rewinding", "mnist1d", "-t", "31"], "valid: 0 <= t <= T = 30", 2),
    "run t beyond T, lr": (["run", "lr-rewinding", "mnist1d", "-t", "40"], "valid: 0 <= t <= T = 30", 2),
    "run t infinite": (["run", "lr-rewinding", "mnist1d", "-t", "inf"], "--retrain-epochs must be a finite", 2),
    "run t nan": (["run", "fine-tuning", "mnist1d", "-t", "nan"], "--retrain-epochs must be a finite", 2),
    "run t nan among several": (["run", "fine-tuning", "mnist1d", "-t", "1", "-t", "nan"], "finite number", 2),
    "run epochs scale 0": (["run", "lr-rewinding", "mnist1d", "--epochs-scale", "0"], "[0.0001, 1000], got 0", 2),
    "run epochs scale nan": (["run", "lr-rewinding", "mnist1d", "--epochs-scale", "nan"], "finite number", 2),
    "run epochs scale inf": (["run", "lr-rewinding", "mnist1d", "--epochs-scale", "inf"], "finite number", 2),
    "run epochs scale 1e-9": (["run", "lr-rewinding", "mnist1d", "--epochs-scale", "1e-9"], "got 1e-09", 2),
    "run rounds 0": (["run", "lr-rewinding", "mnist1d", "--rounds", "0"], "rounds must be a positive integer", 2),
    "run rounds 60": (["run", "lr-rewinding", "mnist1d", "--rounds", "60"], "keeps less than one of the", 2),
    "run rounds 60 iterative": (["run", "algorithm1", "mnist1d", "--rounds", "60"], "keeps less than one", 2),
    "run density and rounds": (["run", "lr-rewinding", "mnist1d", "--density", "0.5", "--rounds", "2"],
                               "give --density or --rounds, not both", 2),
    "run algorithm1 one-shot": (["run", "algorithm1", "mnist1d", "--one-shot"],
                                "algorithm1 is iterative by definition; drop --one-shot", 2),
    "run pruning strategy": (["run", "lr-rewinding", "mnist1d", "--pruning", "randomly"],
                             "unknown pruning strategy 'randomly'", 2),
    "run batch size": (["run", "lr-rewinding", "mnist1d", "--batch-size", "0"], "--batch-size must be a positive", 2),
    "run no gpu": (["run", "lr-rewinding", "mnist1d", "--device", "cuda"], "device 'cuda' is not available here", 2),
    "run bad device": (["run", "lr-rewinding", "mnist1d", "--device", "tpu7"], "unknown device 'tpu7'", 2),
    "run structured for another task": (["run", "lr-rewinding", "mnist1d", "--structured", "resnet56-A"],
                                        "resnet56-A", 2),
    "run structured with density": (["run", "lr-rewinding", "cifar10-resnet56", "--structured", "resnet56-A",
                                     "--density", "0.5"], "takes a level k (--level), not a density", 2),
    "run speed without structured": (["run", "lr-rewinding", "mnist1d", "--measure-speed"],
                                     "--measure-speed needs filter pruning (--structured)", 2),
    "run structured level": (["run", "lr-rewinding", "cifar10-resnet56", "--structured", "resnet56-A",
                              "--level", "9"], "--level must be one of 1, 2, 3, 4, 5", 2),
    # -- sweep
    "sweep no such file": (["sweep", "nowhere.yaml"], "no such study file or preset", 2),
    "sweep retries negative": (["sweep", "mnist1d-paper", "--retries", "-1"], "--retries must be >= 0", 2),
    "sweep unknown executor": (["sweep", "mnist1d-paper", "--executor", "slurm"], "unknown executor 'slurm'", 2),
    "sweep jobs 0": (["sweep", "mnist1d-paper", "--jobs", "0"], "--jobs must be a positive integer", 2),
    "sweep threads 0": (["sweep", "mnist1d-paper", "--threads-per-job", "0"], "--threads-per-job must be", 2),
    "sweep cpus nan": (["sweep", "mnist1d-paper", "--cpus-per-job", "nan"], "'--cpus-per-job'", 2),
    "sweep cpus negative": (["sweep", "mnist1d-paper", "--cpus-per-job", "-1"], "'--cpus-per-job'", 2),
    "sweep gpus inf": (["sweep", "mnist1d-paper", "--gpus-per-job", "inf"], "--gpus-per-job must be a finite", 2),
    "sweep ray unreachable": (["sweep", "mnist1d-paper", "--executor", "ray", "--address", "127.0.0.1:1"],
                              "cannot reach the Ray cluster", 2),
    "sweep no gpu": (["sweep", "mnist1d-paper", "--device", "cuda"], "device 'cuda' is not available here", 2),
    "sweep missing study": (["sweep"], "Missing argument 'study'", 2),
    # -- tune
    "tune trials 0": (["tune", "fine-tuning", "mnist1d", "--trials", "0"], "--trials must be a positive", 2),
    "tune density nan": (["tune", "fine-tuning", "mnist1d", "--density", "nan"], "--density must be a finite", 2),
    "tune density 2": (["tune", "fine-tuning", "mnist1d", "--density", "2"], "--density must be in (0, 1]", 2),
    "tune density keeps no weight": (["tune", "fine-tuning", "mnist1d", "--density", "1e-9"],
                                     "--density asks for density 1e-09, which keeps less than one", 2),
    "tune epochs scale inf": (["tune", "fine-tuning", "mnist1d", "--epochs-scale", "inf"], "finite number", 2),
    "tune timeout nan": (["tune", "fine-tuning", "mnist1d", "--timeout", "nan"], "'--timeout'", 2),
    "tune timeout negative": (["tune", "fine-tuning", "mnist1d", "--timeout", "-5"], "'--timeout'", 2),
    "tune search seed negative": (["tune", "fine-tuning", "mnist1d", "--search-seed", "-2"], "'--search-seed'", 2),
    "tune unknown pruner": (["tune", "fine-tuning", "mnist1d", "--pruner", "sometimes"], "--pruner 'sometimes'", 2),
    "tune taken variant name": (["tune", "fine-tuning", "mnist1d", "--save-as", "lr-rewinding"],
                                "is taken by a registered method", 2),
    "tune bad variant name": (["tune", "fine-tuning", "mnist1d", "--save-as", "a b"], "is not valid", 2),
    "tune space outside": (["tune", "fine-tuning", "mnist1d", "--space", "lr_scale=0.01:1"], "lr_scale must be", 2),
    "tune space nan": (["tune", "fine-tuning", "mnist1d", "--space", "lr_scale=nan"], "lr_scale", 2),
    "tune space unknown": (["tune", "fine-tuning", "mnist1d", "--space", "momentum=0.9"], "momentum", 2),
    "tune unknown method": (["tune", "rewind", "mnist1d"], "unknown method 'rewind'", 2),
    "tune no task": (["tune", "fine-tuning"], "give METHOD and TASK", 2),
    "tune storage not a URL": (["tune", "fine-tuning", "mnist1d", "--storage", "x.db"], "not a database URL", 2),
    # -- leaderboard
    "leaderboard alpha nan": (["leaderboard", "--alpha", "nan"], "--alpha must be a finite number", 2),
    "leaderboard alpha 2": (["leaderboard", "--alpha", "2"], "--alpha must lie in (0, 1)", 2),
    "leaderboard anchor 0": (["leaderboard", "--anchor", "0"], "--anchor in (0, 1]", 2),
    "leaderboard bootstrap negative": (["leaderboard", "--bootstrap", "-1"], "--bootstrap be >= 0", 2),
    "leaderboard bootstrap text": (["leaderboard", "--bootstrap", "many"], "'--bootstrap'", 2),
    "leaderboard zone densities word": (["leaderboard", "--zone-densities", "some"],
                                        "--zone-densities must be one of paper, all or densities like 0.2,0.1", 2),
    "leaderboard zone densities range": (["leaderboard", "--zone-densities", "0.5,20"],
                                         "--zone-densities: densities lie in (0, 1]", 2),
    "leaderboard margin negative": (["leaderboard", "--margin", "-1"], "--margin be >= 0", 2),
    "leaderboard csv missing": (["leaderboard", "--csv", "nowhere.csv"], "nowhere.csv: cannot read as CSV", 2),
    # -- ui
    "ui port too large": (["ui", "--port", "99999"], "'--port'", 2),
    "ui port 0": (["ui", "--port", "0"], "'--port'", 2),
    "ui port text": (["ui", "--port", "http"], "'--port'", 2),
    "ui on a server": (["ui", "--tracking-uri", "http://127.0.0.1:1"], "is a tracking server already", 2),
    # -- anywhere
    "unknown command": (["train"], "No such command 'train'", 2),
    "list of an unknown kind": (["list", "extra"], "unknown kind 'extra'; valid: tasks, methods, pruning, presets", 2),
}


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """A store holding a finished cell, an MLflow database and a leaderboard's input."""
    root = tmp_path_factory.mktemp("corpus-store")
    assert main(["run", "lr-rewinding", "mnist1d", *Q, "-t", "1.5", "--density", "0.5", "--store", str(root)]) == 0
    return root


def check(capsys, args: list[str], message: str, code: int, store: Path) -> None:
    before = tree_digest(store)
    capsys.readouterr()
    command = args if args[0] in ("train", "list") else [args[0], "--store", str(store), *args[1:]]
    assert main(command) == code
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ") and message in lines[0], lines[0]
    assert "Traceback" not in captured.err + captured.out
    assert tree_digest(store) == before, "bad input changed the store"


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_command_line(case, store, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args, message, code = CASES[case]
    check(capsys, args, message, code, store)


@pytest.mark.parametrize("dry_run", [False, True], ids=["sweep", "dry-run"])
@pytest.mark.parametrize("case", STUDY_ERRORS, ids=list(STUDY_ERRORS))
def test_bad_study_file(case, dry_run, store, capsys, tmp_path):
    text, message = STUDY_ERRORS[case]
    path = tmp_path / "study.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    check(capsys, ["sweep", str(path), *(["--dry-run"] if dry_run else [])], message, 2, store)


def test_the_corpus_is_large():
    assert len(CASES) + 2 * len(STUDY_ERRORS) >= 60


VARIANTS = {
    # what variants/mine.json holds: the one line it gets
    "a missing method": ('{"name": "mine", "method": "no-such", "params": {}}',
                         "mine.json: not a valid variant (method 'no-such' is not registered; valid: allr"),
    "an unknown parameter": ('{"name": "mine", "method": "fine-tuning", "params": {"nope": 1}}',
                             "has no parameter 'nope'; valid: lr_scale"),
    "a wrong type": ('{"name": "mine", "method": "fine-tuning", "params": {"lr_scale": "x"}}',
                     "lr_scale must be a number"),
    "not JSON": ("{not json", "mine.json: not a valid variant (not JSON"),
    "not an object": ("[1, 2]", "a JSON object with name, method and params, not list"),
    "another name": ('{"name": "other", "method": "fine-tuning", "params": {}}', "its name must be the file's"),
}


@pytest.mark.parametrize("case", VARIANTS, ids=list(VARIANTS))
def test_a_damaged_variant_file_is_one_line_naming_it(case, capsys, tmp_path):
    text, message = VARIANTS[case]
    (tmp_path / "variants").mkdir()
    (tmp_path / "variants" / "mine.json").write_text(text)
    for command in (["run", "mine", "mnist1d"], ["sweep", "mnist1d-smoke", "--dry-run"]):
        capsys.readouterr()
        assert main([*command, "--store", str(tmp_path), "--no-tracking"]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
