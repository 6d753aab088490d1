"""Reuse of the base network, determinism, resuming killed runs, replaying rewind points."""

import contextlib

import pytest
import torch

from harness.core.hparams import BaseHparams, RetrainHparams
from harness.core.progress import Progress
from harness.engine.runner import Runner
from harness.storage.store import Store, load
from tests.conftest import QUICK

BASE = BaseHparams("mnist1d", seed=0, epochs_scale=QUICK)


def same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_second_method_reuses_base_network_and_rewind_checkpoints(tmp_path):
    runner = Runner(Store(tmp_path))
    first = runner.retrain(RetrainHparams(BASE, "weight-rewinding", 1.5, (0.3,)))
    checkpoints = sorted((runner.store.base_dir(BASE) / "checkpoints").glob("*.pt"))
    stamps = {p: p.stat().st_mtime_ns for p in checkpoints}
    assert len(checkpoints) == 11  # ten paper retraining times over (0, T] and W_T

    again = Runner(Store(tmp_path))
    base = again.base(BASE, [1.5])
    assert not base.trained_now
    second = again.retrain(RetrainHparams(BASE, "lr-rewinding", 1.5, (0.3,)), base)
    assert {p: p.stat().st_mtime_ns for p in checkpoints} == stamps
    assert first.unpruned_test_acc == second.unpruned_test_acc
    assert not second.cached
    # the very same cell again is not recomputed
    assert again.retrain(RetrainHparams(BASE, "lr-rewinding", 1.5, (0.3,))).cached


def test_methods_on_one_pruned_network_prune_it_once_per_process_and_get_what_a_fresh_process_gets(
        tmp_path, monkeypatch):
    pruned = []
    original = Runner._prune
    monkeypatch.setattr(Runner, "_prune", lambda self, *a: pruned.append(a[3]) or original(self, *a))
    runner = Runner(Store(tmp_path / "one"))
    cells = [RetrainHparams(BASE, method, 1.0, (0.2,)) for method in ("fine-tuning", "lr-rewinding", "llr")]
    records = [runner.retrain(hp) for hp in cells]
    assert pruned == [0.2]
    other = runner.retrain(RetrainHparams(BASE, "fine-tuning", 1.0, (0.5,)))  # another target: pruned anew
    assert pruned == [0.2, 0.5]
    for hp, record in zip(cells[1:], records[1:], strict=True):  # each alone in its own process and store
        alone = Runner(Store(tmp_path / hp.method)).retrain(hp)
        assert (alone.mask_sha256, alone.weights_sha256, alone.test_acc) == (
            record.mask_sha256, record.weights_sha256, record.test_acc)
    assert len({r.mask_sha256 for r in records}) == 1 and other.mask_sha256 != records[0].mask_sha256


def test_same_seed_same_numbers_and_other_seed_other_numbers(tmp_path):
    hp = RetrainHparams(BASE, "lr-rewinding", 1.0, (0.2,))
    a = Runner(Store(tmp_path / "a")).retrain(hp)
    b = Runner(Store(tmp_path / "b")).retrain(hp)
    assert (a.val_acc, a.test_acc, a.unpruned_test_acc) == (b.val_acc, b.test_acc, b.unpruned_test_acc)
    wa = load(Store(tmp_path / "a").retrain_dir(hp) / "weights.pt")
    wb = load(Store(tmp_path / "b").retrain_dir(hp) / "weights.pt")
    assert same_weights(wa, wb)
    other = RetrainHparams(BaseHparams("mnist1d", seed=1, epochs_scale=QUICK), "lr-rewinding", 1.0, (0.2,))
    wc = Runner(Store(tmp_path / "c")).retrain(other)
    wc = load(Store(tmp_path / "c").retrain_dir(other) / "weights.pt")
    assert not same_weights(wa, wc)


class Notes(Progress):
    """What a run says."""

    def __init__(self) -> None:
        self.said: list[str] = []

    def note(self, message: str) -> None:
        self.said.append(message)


class Killer(Progress):
    """Stops a run part-way, as a crash would."""

    def __init__(self, label: str, at_step: int) -> None:
        self.label, self.at_step = label, at_step

    @contextlib.contextmanager
    def track(self, description, total_steps):
        def progress(done, record):
            if description.startswith(self.label) and done == self.at_step:
                raise KeyboardInterrupt

        yield progress


@pytest.mark.parametrize(("label", "step"), [("train", 50), ("reinit", 70)])
def test_killed_run_resumes_to_identical_results(tmp_path, label, step):
    hp = RetrainHparams(BASE, "reinit", 1.0, (0.3,))
    with pytest.raises(KeyboardInterrupt):
        Runner(Store(tmp_path / "killed"), progress=Killer(label, step)).retrain(hp)
    killed = Store(tmp_path / "killed")
    folder = killed.base_dir(BASE) if label == "train" else killed.retrain_dir(hp)
    assert (folder / "resume.pt").exists(), "the last finished epoch was saved"
    notes = Notes()
    resumed = Runner(Store(tmp_path / "killed"), progress=notes).retrain(hp)
    assert f"{folder}: resumed from epoch {(step // 32) * 32 / 32:g}" in notes.said  # 32 steps an epoch
    clean = Runner(Store(tmp_path / "clean")).retrain(hp)
    assert (resumed.val_acc, resumed.test_acc) == (clean.val_acc, clean.test_acc)
    assert same_weights(load(Store(tmp_path / "killed").retrain_dir(hp) / "weights.pt"),
                        load(Store(tmp_path / "clean").retrain_dir(hp) / "weights.pt"))


def test_an_unforeseen_rewind_point_is_replayed_exactly(tmp_path):
    late = Runner(Store(tmp_path / "late"))
    late.base(BASE)
    off_grid = 1.25  # not among the ten paper retraining times
    base = late.base(BASE, [off_grid])
    assert base.trained_now
    early = Runner(Store(tmp_path / "early")).base(BASE, [off_grid])
    assert same_weights(base.weights_at_epoch(off_grid), early.weights_at_epoch(off_grid))
    assert same_weights(base.weights_at_epoch(3), early.weights_at_epoch(3))


def test_results_table_lists_every_finished_round(shared_store):
    runner = Runner(Store(shared_store))
    runner.retrain(RetrainHparams(BASE, "fine-tuning", 1.0, (0.8, 0.64)))
    rows = [r for r in runner.store.results() if r.method == "fine-tuning" and r.retraining_epochs == 1.0]
    assert {r.round for r in rows} >= {1, 2}
    assert all(0 < r.density <= 1 and r.compression_ratio >= 1 for r in rows)
