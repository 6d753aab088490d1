"""Fuzzing with hypothesis: arbitrary study documents (valid YAML of any shape), arbitrary external
results CSVs (any columns, types and values) and arbitrary command lines built from the real options
either run or end in exactly one ``error:`` line with exit 2, never a traceback.

The default profile runs a few hundred examples in all; ``tox -e slow`` runs the ``slow`` profile
(``HYPOTHESIS_PROFILE=slow``, ten times as many). No command here trains: studies run with
``--dry-run``, ``run`` gets a grid too small to keep a weight or an epochs scale below one step."""

from __future__ import annotations

import contextlib
import csv
import io
import os
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.cli.app import main
from harness.sweep.study_file import KEYS

settings.register_profile("default", max_examples=120, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.register_profile("slow", max_examples=1200, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

COUNTS: dict[str, int] = {}


def invoke(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return code, out.getvalue(), err.getvalue()


def assert_clean(name: str, args: list[str]) -> int:
    code, out, err = invoke(args)
    key = f"{name} ({'ran' if code == 0 else 'refused'})"
    COUNTS[key] = COUNTS.get(key, 0) + 1
    assert "Traceback" not in out + err, err[-3000:]
    assert "Warning:" not in err, err[-2000:]  # a library's warning text (the harness's own say "warning:")
    if code != 0:
        lines = [line for line in err.strip().splitlines() if line.strip()]
        assert code == 2, (code, err[-2000:])
        assert len(lines) == 1 and lines[0].startswith("error: "), err[-2000:]
    return code


scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                      max_leaves=8)
study_keys = st.one_of(st.sampled_from(sorted(KEYS)), st.text(min_size=1, max_size=10))
VALID_STUDY = {"task": "mnist1d", "methods": ["fine-tuning", "lr-rewinding"], "retrain_epochs": [1.5, 3],
               "densities": [0.5], "seeds": 1, "epochs_scale": 0.1}
plausible = st.one_of(values, st.sampled_from([
    1, 2, 0.5, [1, 2], "mnist1d", ["fine-tuning"], "iterative", ["one-shot", "iterative"], {"first": 1, "last": 3},
    [0.5, 0.1], [{"structured": "resnet56-A", "levels": [1]}], {"gradual": {"span": 0.5}}, ["global-magnitude"]]))
changed = st.dictionaries(st.sampled_from(sorted(KEYS)), plausible, max_size=2)
documents = st.one_of(values, st.dictionaries(study_keys, values, max_size=6),
                      changed.map(lambda changes: {**VALID_STUDY, **changes}))


@given(document=documents)
def test_any_study_document_runs_or_is_one_line(document, tmp_path_factory):
    folder = tmp_path_factory.mktemp("study")
    path = folder / "study.yaml"
    try:
        text = yaml.safe_dump(document, allow_unicode=True)
    except yaml.YAMLError:
        return
    path.write_text(text)
    assert_clean("study documents", ["sweep", str(path), "--dry-run", "--store", str(folder / "store")])


COLUMNS = ["task", "pruning", "schedule", "method", "density", "retraining_epochs", "seed", "val_acc", "test_acc",
           "metric", "source", "T", "target_density", "unpruned_val_acc", "unpruned_test_acc", "flops"]
cells = st.one_of(st.sampled_from(["", "nan", "inf", "-1", "0", "0.5", "1", "2", "90", "100", "1e9", "fine-tuning",
                                   "lr-rewinding", "weight-rewinding", "one-shot", "iterative", "accuracy", "bleu",
                                   "global-magnitude", "toy"]),
                  st.floats(allow_nan=True, allow_infinity=True).map(repr), st.text(max_size=8))


def published() -> list[list[str]]:
    """A valid table: three methods, two times, two seeds, one density."""
    rows = [COLUMNS[:9]]
    for method in ("fine-tuning", "weight-rewinding", "lr-rewinding"):
        for t in (5, 10):
            for seed in (0, 1):
                rows.append(["toy", "global-magnitude", "one-shot", method, "0.5", str(t), str(seed), "90", "91"])
    return rows


@st.composite
def tables(draw: st.DrawFn) -> list[list[str]]:
    if draw(st.booleans()):  # a valid table with a few cells changed
        table = published()
        for _ in range(draw(st.integers(1, 3))):
            i, j = draw(st.integers(0, len(table) - 1)), draw(st.integers(0, len(table[0]) - 1))
            table[i][j] = draw(cells)
        return table
    header = draw(st.lists(st.one_of(st.sampled_from(COLUMNS), st.text(max_size=6)), min_size=1, max_size=12))
    rows = draw(st.lists(st.lists(cells, min_size=len(header), max_size=len(header)), max_size=6))
    return [header, *rows]


@given(table=tables())
def test_any_results_csv_builds_or_is_one_line(table, tmp_path_factory):
    folder = tmp_path_factory.mktemp("csv")
    path = folder / "published.csv"
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(table)
    assert_clean("results CSVs", ["leaderboard", "--csv", str(path), "--out", str(folder / "site"), "--bootstrap",
                                  "0"])


NUMBERS = ["0", "-1", "0.5", "1", "2", "nan", "inf", "1e300", "abc", ""]
OPTIONS = {
    # command: (positional arguments to choose from, options and the values to try)
    "run": ([["fine-tuning", "mnist1d"], ["LLR", "mnist1D"], ["gradual", "cifar10-resnet20"], ["x"], []],
            {"--density": NUMBERS, "--rounds": NUMBERS, "-t": NUMBERS, "--seed": NUMBERS, "--pruning": ["nm-magnitude",
             "x", "random"], "--pruning-param": ["n=2", "m=x", "=", "n"], "--level": NUMBERS,
             "--batch-size": NUMBERS, "--device": ["cpu", "cuda", "tpu", ""], "--threads": NUMBERS,
             "--structured": ["resnet56-A", "x"]}),
    "sweep": ([["mnist1d-smoke"], ["nowhere.yaml"], ["mnist1d-paper"]],
              {"--jobs": NUMBERS, "--epochs-scale": NUMBERS, "--seed": NUMBERS, "--methods": ["fine-tuning", "x,y", ""],
               "--threads-per-job": NUMBERS, "--retries": NUMBERS, "--executor": ["local", "ray", "x"],
               "--device": ["cpu", "cuda", "x"]}),
    "leaderboard": ([[]], {"--alpha": NUMBERS, "--anchor": NUMBERS, "--bootstrap": NUMBERS, "--margin": NUMBERS,
                           "--zone-densities": ["paper", "all", "0.5,0.2", "x", "2", ""], "--csv": ["nowhere.csv"]}),
    "export": ([["x"], ["mnist1d-x-r1-000000000000"], []], {"--format": ["torch", "safetensors", "onnx"]}),
    "list": ([[], ["tasks"], ["method"], ["variants"]], {"--json": None}),
    "tune": ([["fine-tuning", "mnist1d"], ["x", "mnist1d"]],
             {"--trials": NUMBERS, "--density": NUMBERS, "--space": ["lr_scale=0.1:x", "x=1"], "--storage": ["x.db"],
              "--save-as": ["../x", "a b"], "--epochs-scale": NUMBERS}),
}


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    command = draw(st.sampled_from(sorted(OPTIONS)))
    positional, options = OPTIONS[command]
    args = [command, *draw(st.sampled_from(positional))]
    for name in draw(st.lists(st.sampled_from(sorted(options)), max_size=4)):
        choices = options[name]
        args += [name] if choices is None else [name, draw(st.sampled_from(choices))]
    if command == "sweep":
        args.append("--dry-run")  # a plan, never a training run
    if command in ("run", "tune"):  # whatever else it is given, nothing trains: no step fits in T
        args += ["--epochs-scale", "0.0001"]
    return args


@given(args=command_lines())
def test_any_command_line_runs_or_is_one_line(args, tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    store_free = args[0] in ("list",) and "variants" not in args
    extra = [] if store_free else ["--store", str(folder / "store")]
    if args[0] in ("run", "sweep", "tune"):
        extra.append("--no-tracking")
    old = Path.cwd()
    os.chdir(folder)  # relative outputs (leaderboard-site, exported) land in the example's folder
    try:
        assert_clean("command lines", [*args, *extra])
    finally:
        os.chdir(old)


@pytest.fixture(scope="module", autouse=True)
def report_counts():
    yield
    print("fuzzing examples run: " + ", ".join(f"{k} {v}" for k, v in sorted(COUNTS.items())))
