from harness.analysis.selection import best_validated
from harness.storage.record import CellRecord


def row(t, seed, val, test):
    return CellRecord(run="", task="mnist1d", seed=seed, method="fine-tuning", pruning="global-magnitude",
                      schedule="one-shot", round=1, density=0.2, retraining_epochs=t, val_acc=val, test_acc=test, T=3)


def test_picks_the_time_with_best_median_validation_and_reports_its_test():
    rows = [
        row(1, 0, 90, 99), row(1, 1, 91, 99), row(1, 2, 70, 99),  # median val 90; test would flatter it
        row(2, 0, 92, 80), row(2, 1, 93, 81), row(2, 2, 60, 85),  # median val 92: chosen
    ]
    best = best_validated(rows)
    assert best["retraining_epochs"] == 2
    assert (best["test_median"], best["test_min"], best["test_max"]) == (81, 80, 85)
    assert best["seeds"] == 3


def test_ties_go_to_the_shorter_retraining_time():
    assert best_validated([row(3, 0, 90, 1), row(1, 0, 90, 2)])["retraining_epochs"] == 1
