"""The statistics on small hand-made tables whose answers can be worked out on paper."""

import pandas as pd
import pytest

from harness.analysis.results_table import normalize, read_csv, read_mlflow, read_store
from harness.analysis.statistics import (
    best_validated,
    compression_at_drop,
    frontiers,
    pareto_frontier,
    search_cost_curves,
    summarize,
)
from harness.core.errors import HarnessError


def table(rows):
    columns = ["task", "pruning", "schedule", "method", "density", "retraining_epochs", "seed", "val_acc", "test_acc"]
    return normalize(pd.DataFrame([dict(zip(columns, r, strict=True)) for r in rows]))


def cell(method, density, t, seed, val, test, task="toy"):
    return (task, "global-magnitude", "one-shot", method, density, t, seed, val, test)


def test_median_min_max_over_seeds():
    df = table([cell("ft", 0.5, 10, s, v, t) for s, v, t in [(0, 90, 91), (1, 80, 85), (2, 70, 99)]])
    [row] = summarize(df).to_dict("records")
    assert (row["test_median"], row["test_min"], row["test_max"]) == (91, 85, 99)
    assert (row["val_median"], row["val_min"], row["val_max"], row["seeds"]) == (80, 70, 90, 3)


def test_best_validated_picks_the_best_median_validation_and_reports_its_test():
    rows = [cell("ft", 0.5, 10, s, 80 + s, 99) for s in range(3)]       # val median 81, test 99
    rows += [cell("ft", 0.5, 20, s, 82 + s, 90) for s in range(3)]      # val median 83: chosen
    rows += [cell("ft", 0.5, 30, s, 82 + s, 95) for s in range(3)]      # tie on val: the shorter wins
    [best] = best_validated(table(rows)).to_dict("records")
    assert best["retraining_epochs"] == 20 and best["test_median"] == 90


def test_pareto_frontier_drops_dominated_points():
    points = pd.DataFrame({"compression": [1, 2, 3, 4, 5], "test_median": [90, 95, 93, 94, 80]})
    frontier = pareto_frontier(points)
    assert frontier["compression"].tolist() == [2, 4, 5]  # 1 and 3 are beaten by 2 and 4


def test_compression_without_and_within_one_point_of_accuracy_drop():
    rows = []
    for density, test in [(0.5, 95.0), (0.25, 94.2), (0.125, 92.0)]:
        rows += [cell("ft", density, 10, s, 90, test) for s in range(3)]
    df = table(rows)
    df["unpruned_test_acc"] = 95.0
    none = compression_at_drop(df, 0.0).iloc[0]
    one = compression_at_drop(df, 1.0).iloc[0]
    assert none["compression"] == pytest.approx(2.0) and one["compression"] == pytest.approx(4.0)


def test_external_csv_with_the_documented_columns(tmp_path):
    path = tmp_path / "published.csv"
    path.write_text("task,pruning,schedule,method,density,retraining_epochs,seed,val_acc,test_acc\n"
                    "cifar10-resnet56,global-magnitude,one-shot,lr-rewinding,0.2,91,0,93.1,93.4\n"
                    "cifar10-resnet56,global-magnitude,one-shot,lr-rewinding,0.2,182,0,93.3,93.5\n")
    df = read_csv(path)
    assert df["fraction"].tolist() == [0.5, 1.0]  # T inferred as the longest retraining time
    assert df["compression"].tolist() == pytest.approx([5.0, 5.0])
    bad = tmp_path / "bad.csv"
    bad.write_text("task,method,density\nx,ft,0.5\n")
    with pytest.raises(HarnessError, match="missing column\\(s\\) pruning, schedule, retraining_epochs, seed"):
        read_csv(bad)


def test_frontiers_per_method_and_across_methods():
    rows = []
    for method, accs in {"ft": [95, 90, 60], "lrr": [94, 93, 80]}.items():
        for density, acc in zip((0.5, 0.25, 0.125), accs, strict=True):
            rows += [cell(method, density, 10, s, acc, acc) for s in range(3)]
    fronts = frontiers(table(rows))
    across = fronts[("toy", "global-magnitude", "one-shot", "all")]
    assert list(zip(across["method"], across["compression"], strict=True)) == [("ft", 2.0), ("lrr", 4.0), ("lrr", 8.0)]
    assert len(fronts[("toy", "global-magnitude", "one-shot", "ft")]) == 3  # each method's own curve is monotone


def test_search_cost_curve_at_one_density():
    rows = [cell(m, d, t, s, 90, 80 + t / 10 + s) for m in ("ft", "lrr") for d in (0.5, 0.25)
            for t in (10, 20) for s in range(3)]
    curve = search_cost_curves(table(rows), 0.25)
    assert curve[["method", "retraining_epochs"]].values.tolist() == [["ft", 10], ["ft", 20], ["lrr", 10], ["lrr", 20]]
    assert curve["test_median"].tolist() == [82.0, 83.0, 82.0, 83.0]


def test_store_and_mlflow_give_the_same_table(tmp_path):
    from harness.core.hparams import BaseHparams, RetrainHparams
    from harness.engine.runner import Runner
    from harness.storage.store import Store
    from harness.tracking.mirror import Tracker

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    runner = Runner(Store(tmp_path), tracker=Tracker(uri, tmp_path))
    base = BaseHparams("mnist1d", seed=0, epochs_scale=0.1)
    for method in ("fine-tuning", "lr-rewinding"):
        runner.retrain(RetrainHparams(base, method, 1.5, (0.5,)))
    columns = ["task", "method", "density", "retraining_epochs", "seed", "val_acc", "test_acc", "fraction"]
    local = read_store(tmp_path).sort_values("method")[columns].reset_index(drop=True)
    mirrored = read_mlflow(uri, "mnist1d").sort_values("method")[columns].reset_index(drop=True)
    pd.testing.assert_frame_equal(local, mirrored)
    assert local["fraction"].tolist() == [0.5, 0.5]
    assert set(local["task"]) == {"mnist1d (epochs x0.1)"}  # a shortened schedule is its own experiment
    with pytest.raises(HarnessError, match="no MLflow experiment 'cifar10-resnet20'"):
        read_mlflow(uri, "cifar10-resnet20")
