"""A task whose metric is lower-is-better runs end to end (run, sweep, tune, leaderboard) with its winners
and zones the right way round. The test registers ``mnist1d-error``: MNIST-1D trained exactly as
``mnist1d`` (the same bits), scored by its error rate, 100 minus the accuracy. Every choice made on
validation, every ranking, frontier and zone must then be the accuracy task's, and every score its
complement."""

from __future__ import annotations

import dataclasses
import json

import pytest

from harness.analysis import results_table
from harness.analysis import statistics as st
from harness.cli.app import main
from harness.core.registry import METRICS, TASKS
from harness.data.tensor_data import TensorData
from harness.extend import Metric, identified_as, register_metric, register_task
from tasks import mnist1d
from tasks.spec import get_task
from tests.conftest import QUICK

STUDY = """
task: {task}
epochs_scale: {quick}
methods: [fine-tuning, weight-rewinding, lr-rewinding]
retrain_epochs: [1.5, 3]
densities: [0.5, 0.2]
seeds: 2
"""


class ErrorRate(TensorData):
    """MNIST-1D's data, scored by the share of samples misclassified."""

    def evaluate(self, model, split):
        return 100.0 - super().evaluate(model, split)


@identified_as("tests.mnist1d-error.load")
def load_error(options):
    d = mnist1d.generate()
    return ErrorRate((d["x"], d["y"]), (d["x_test"], d["y_test"]), options.batch_size, device=options.device)


@pytest.fixture(scope="module")
def error_task():
    saved = {r: dict(r._entries) for r in (TASKS, METRICS)}
    if "error" not in METRICS:
        register_metric(Metric("error", "%", higher_is_better=False, low=0.0, high=100.0, label="error rate"))
    register_task("mnist1d-error")(lambda: dataclasses.replace(
        get_task("mnist1d"), name="mnist1d-error", load_data=load_error, metric="error",
        metric_definition="top-1 error, % of the split's samples", documented_unpruned=1.0))
    yield
    for registry, entries in saved.items():
        registry._entries = entries


@pytest.fixture(scope="module")
def stores(error_task, tmp_path_factory):
    """One store per task, each holding the same study, a run and a search."""
    out = {}
    for task in ("mnist1d", "mnist1d-error"):
        root = tmp_path_factory.mktemp(task)
        study = root / "study.yaml"
        study.write_text(STUDY.format(task=task, quick=QUICK))
        assert main(["sweep", str(study), "--store", str(root / "store"), "--jobs", "1", "--no-tracking"]) == 0
        assert main(["tune", "fine-tuning", task, "--epochs-scale", str(QUICK), "--density", "0.2", "--trials", "3",
                     "--seed", "0", "--sampler-seed", "1", "--space", "t=1.5,3", "--store", str(root / "store"),
                     "--no-tracking"]) == 0
        assert main(["leaderboard", "--store", str(root / "store"), "--bootstrap", "0",
                     "--zone-densities", "all"]) == 0
        out[task] = root / "store"
    return out


def test_run_scores_the_same_network_by_its_error(error_task, tmp_path):
    records = {}
    for task in ("mnist1d", "mnist1d-error"):
        assert main(["run", "lr-rewinding", task, "--epochs-scale", str(QUICK), "--density", "0.3", "-t", "1.5",
                     "--store", str(tmp_path / task), "--no-tracking"]) == 0
        [path] = (tmp_path / task / "retrain").glob("*/result.json")
        records[task] = json.loads(path.read_text())
    accuracy, error = records["mnist1d"], records["mnist1d-error"]
    assert error["metric"] == "error" and accuracy["weights_sha256"] == error["weights_sha256"]
    assert error["test_acc"] == pytest.approx(100 - accuracy["test_acc"])


def test_choices_on_validation_rankings_and_frontiers_are_the_accuracy_tasks(stores):
    tables = {task: results_table.read_store(root) for task, root in stores.items()}
    best = {task: st.best_validated(df) for task, df in tables.items()}
    chosen = {task: b.set_index(["method", "density"])["retraining_epochs"].to_dict() for task, b in best.items()}
    assert chosen["mnist1d-error"] == chosen["mnist1d"]
    medians = {task: b.set_index(["method", "density"])["test_median"] for task, b in best.items()}
    assert (medians["mnist1d-error"] + medians["mnist1d"]).round(9).eq(100).all()
    fronts = {task: [(k[3], tuple(f["density"])) for k, f in sorted(st.frontiers(df).items())]
              for task, df in tables.items()}
    assert fronts["mnist1d-error"] == fronts["mnist1d"]
    drops = {task: st.compression_at_drop(df, 1.0)[["compression", "method"]].to_dict("records")
             for task, df in tables.items()}
    assert drops["mnist1d-error"] == drops["mnist1d"]
    profiles = {task: st.performance_profile(b).to_dict("records") for task, b in best.items()}
    assert profiles["mnist1d-error"] == profiles["mnist1d"]


def test_the_safe_zone_and_the_search_come_out_the_same_way_round(stores):
    zones = {task: json.loads((root / "leaderboard" / "safe_zone.json").read_text()) for task, root in stores.items()}
    [acc_zone] = zones["mnist1d"]["networks"].values()
    [err_zone] = zones["mnist1d-error"]["networks"].values()
    for reading in ("descriptive", "conditional", "generalizing"):
        assert err_zone[reading]["span"] == acc_zone[reading]["span"]
        assert err_zone[reading]["verdict"] == acc_zone[reading]["verdict"]
    page = (stores["mnist1d-error"] / "leaderboard" / "summary.md").read_text()
    assert "error" in page
    import optuna

    searches = {task: optuna.load_study(study_name=optuna.get_all_study_names(f"sqlite:///{root / 'optuna.db'}")[0],
                                        storage=f"sqlite:///{root / 'optuna.db'}") for task, root in stores.items()}
    assert searches["mnist1d-error"].direction == optuna.study.StudyDirection.MINIMIZE
    assert searches["mnist1d-error"].best_trial.params == searches["mnist1d"].best_trial.params
    assert searches["mnist1d-error"].best_value == pytest.approx(100 - searches["mnist1d"].best_value)
