"""`harness tune`: give a retraining method its best shot before comparing against it.

An Optuna study searches the parameters a method declares searchable (``Retraining.params``) and its
retraining time t at one density, maximizing validation accuracy on one seed:

- trials are cells of a store of their own, ``STORE/tune/<study>/``, that share the main store's base
  networks and rewind checkpoints, so the results tables never mix trials with studies;
- every trial reports validation accuracy at each epoch's end, so Optuna's pruner stops hopeless
  ones, and is an MLflow run (experiment ``tune <study>``, tags ``optuna.study``/``optuna.trial``);
- the study lives in an RDB (sqlite by default) or a journal file that several processes on several
  machines can share; ``--trials N`` is the study's total, so rerunning a command resumes it, and a
  trial whose process died is run again with the same values (its cell resumes from its last epoch);
- the chosen configuration meets the test set only after the search, over the requested seeds.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, Trial, TrialState

from harness.core import signals
from harness.core.errors import HarnessError
from harness.core.hparams import BaseHparams, RetrainHparams
from harness.core.progress import Progress
from harness.engine.runner import Runner
from harness.storage import store
from harness.storage.paths import HISTORY
from harness.storage.record import CellRecord, EpochRecord, cell_fields, history_from_json
from harness.tune.space import T_NAME, split_values, suggest
from harness.tune.storage import FINISHED, OBJECTIVE
from methods.pruning import PruningStrategy
from methods.spec import Retraining

# -- the search --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchPlan:
    """What a search tells its ``Progress`` before the first trial (``begin``), once the base network
    is trained and lost trials are queued again. Its units are Optuna's trials: ``started`` with the
    running ``Trial``, ``finished`` with the ``FrozenTrial`` and, as the outcome, the study."""

    name: str
    storage_label: str
    trials_so_far: int
    space: str  # the searched ranges and fixed values, as a line
    total: int  # the study's trials, whoever runs them
    study: optuna.Study


class Surplus(Exception):
    """A trial asked for after the study had its trials (two processes asking at the same moment)."""


@dataclass
class Search:
    method: Retraining
    base: BaseHparams
    density: float
    searched: dict[str, BaseDistribution]
    fixed: dict[str, float]
    runner: Runner  # on the trials' store
    study: optuna.Study
    trials: int
    tracker: Any = None
    progress: Progress = field(default_factory=Progress)
    pruning: PruningStrategy | None = None  # None: global magnitude pruning, nothing of it searched
    failures_in_a_row: int = 0
    surplus: bool = False  # this process asked for a trial the study did not need: stop

    @property
    def experiment(self) -> str:
        return f"tune {self.study.study_name}"

    def cell(self, values: Mapping[str, float], seed: int | None = None, variant: str | None = None) -> RetrainHparams:
        """The cell a trial's values stand for (on the search seed, or another for the evaluation)."""
        method_values, pruning_values, t = split_values({**self.fixed, **values})
        base = self.base if seed is None else dataclasses.replace(self.base, seed=seed)
        pruning = {}
        density = self.density
        if self.pruning is not None:
            pruning = {"pruning": self.pruning.name, "pruning_params": self.pruning.overrides(pruning_values)}
            density = self.pruning.density_for(pruning_values, density)
        return RetrainHparams(base, self.method.name, t, densities=(density,),
                              method_params=self.method.overrides(method_values), variant=variant, **pruning)

    # -- counting: --trials is the study's total, whoever runs them --------------------------------

    def taken(self) -> int:
        """Trials finished or being run (by any process)."""
        return len(self.study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.RUNNING)))

    def requeue_lost(self) -> None:
        """Run again, with the same values, trials whose process died: RUNNING trials of a dead process
        on this host, and failed trials that did not fail by an error of their own (interrupted, or
        failed by the RDB heartbeat). A lost trial's cell resumes from its last finished epoch."""
        storage, host = self.study._storage, socket.gethostname()
        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            pid = trial.user_attrs.get("pid")
            if trial.user_attrs.get("host") == host and pid is not None and pid != os.getpid() and not alive(pid):
                storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        trials = self.study.get_trials(deepcopy=False)
        retried = {t.user_attrs.get("retry_of") for t in trials}
        for trial in trials:
            attrs = trial.user_attrs
            if (trial.state == TrialState.FAIL and trial.number not in retried and "error" not in attrs
                    and not attrs.get("surplus") and trial.params):
                self.study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
                self.progress.note(f"trial {trial.number} was lost with its process: queued again")

    # -- one trial -------------------------------------------------------------------------------------

    def objective(self, trial: Trial) -> float:
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
        before = self.study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.RUNNING))
        if sum(t.state in FINISHED or t.number < trial.number for t in before if t.number != trial.number) \
                >= self.trials:
            trial.set_user_attr("surplus", True)
            self.surplus = True
            raise Surplus(f"the study has its {self.trials} trials")
        values = {n: suggest(trial, n, d) for n, d in self.searched.items()}
        hp = self.cell(values)
        trial.set_user_attr("cell", self.runner.store.retrain_dir(hp).name)
        run_id = None
        if self.tracker is not None:
            run_id = self.tracker.start_trial(
                self.experiment, f"trial {trial.number}",
                tags={"harness.kind": "trial", "optuna.study": self.study.study_name,
                      "optuna.trial": str(trial.number), "method": self.method.name, "state": "RUNNING"},
                params=trial_params(hp, {**self.fixed, **values}))
            if run_id is not None:
                trial.set_user_attr("mlflow_run_id", run_id)
        task = self.runner.task(self.base)
        T, spe = task.epochs, self.runner.data(task).steps_per_epoch
        first = round(self.method.start(T, hp.retrain_epochs) * spe)
        total = round(self.method.epochs(T, hp.retrain_epochs) * spe)
        self.progress.started(trial, total)
        reports = TrialReports(trial, self.tracker, run_id, self.progress)
        self.runner.progress = reports
        try:
            with signals.allowed():
                result = self.runner.retrain(hp)
        except optuna.TrialPruned:
            self._end(run_id, "KILLED", "PRUNED", {})
            raise
        except Exception as e:
            trial.set_user_attr("error", f"{type(e).__name__}: {' '.join(str(e).split())[:300]}")
            self._end(run_id, "FAILED", "FAIL", {})
            raise
        except BaseException:  # interrupted: no error of its own, so the next run queues it again
            self._end(run_id, "KILLED", "INTERRUPTED", {})
            raise
        if result.cached:  # computed before (another trial, or a sweep): its epochs still inform the pruner
            reports.replay(self.runner.store.retrain_dir(hp) / HISTORY, first, spe)
        self._end(run_id, "FINISHED", "COMPLETE", {})  # its last val_acc step is the final score
        return float(result.val_acc)

    def evaluate(self, trial: FrozenTrial, seeds: Sequence[int], runner: Runner,
                 variant: str | None = None) -> list[CellRecord]:
        """The trial's configuration on each seed, test accuracy included: after the search only."""
        values = {n: trial.params[n] for n in self.searched}
        return [runner.retrain(self.cell(values, seed, variant)) for seed in seeds]

    def _end(self, run_id: str | None, status: str, state: str, metrics: dict[str, float]) -> None:
        if self.tracker is not None:
            self.tracker.end_trial(run_id, status, {"state": state}, metrics)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        failed = trial.state == TrialState.FAIL and not trial.user_attrs.get("surplus")
        self.failures_in_a_row = self.failures_in_a_row + 1 if failed else 0
        self.progress.finished(trial, study)

    def run(self, plan: SearchPlan, timeout: float | None = None, max_failures: int = 3) -> None:
        """Trials until the study has ``trials`` of them (counting other processes' work)."""
        self.requeue_lost()
        self.progress.begin(plan)
        try:
            self._trials(timeout, max_failures)
        finally:
            self.progress.end()

    def _trials(self, timeout: float | None, max_failures: int) -> None:
        started = time.time()
        while self.taken() < self.trials:
            if timeout is not None and time.time() - started > timeout:
                self.progress.note(f"--timeout {timeout:g}s reached: stopping; rerun the command to go on")
                break
            with signals.deferred():  # a stop in Optuna's bookkeeping would leave the trial in no state
                self.study.optimize(self.objective, n_trials=1, catch=(Exception,), callbacks=[self.after_trial])
            if self.surplus:
                break
            if self.failures_in_a_row >= max_failures:
                failed = self.study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
                errors = [t.user_attrs["error"] for t in failed if "error" in t.user_attrs]
                raise HarnessError(f"{max_failures} trials in a row failed; the last: {errors[-1] if errors else '?'}")


class TrialReports(Progress):
    """Validation accuracy at each epoch's end -> the trial (for the pruner), MLflow and the search's
    own progress."""

    def __init__(self, trial: Trial, tracker: Any, run_id: str | None, outer: Progress) -> None:
        self.trial, self.tracker, self.run_id, self.outer = trial, tracker, run_id, outer

    @contextmanager
    def track(self, description: str, total_steps: int) -> Iterator[Callable[[int, EpochRecord | None], None]]:
        with self.outer.track(description, total_steps) as shown:
            yield lambda done, record: self.advance(done, record, shown)

    def advance(self, done: int, record: EpochRecord | None, shown: Callable[..., None] | None) -> None:
        if shown is not None:
            shown(done, record)
        if record:
            self.report(done, record.val_acc)
            with signals.deferred():
                prune = self.trial.should_prune()
            if prune:
                raise optuna.TrialPruned(f"validation {record.val_acc:.2f} after {done} steps")

    def report(self, step: int, val: float) -> None:
        with signals.deferred():  # mid-epoch a stop may cut training, never a write to the storages
            self.trial.report(val, step)
            if self.tracker is not None:
                self.tracker.log_metric(self.run_id, OBJECTIVE, val, step)

    def replay(self, history_path: Path, first_step: int, spe: int) -> None:
        """A cached cell's epochs, reported as steps since its first step."""

        for record in history_from_json(store.read_json(history_path)):
            self.report(round(record.epoch * spe) - first_step, record.val_acc)

    def note(self, message: str) -> None:
        pass  # "reusing base network": the search prepared it before the first trial

    def warn(self, message: str) -> None:
        self.outer.warn(message)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def trial_params(hp: RetrainHparams, values: Mapping[str, float]) -> dict[str, Any]:
    """A trial's MLflow params: its cell under the record's names (t is ``retraining_epochs``), and the
    values of the searched and fixed parameters under theirs."""
    names = cell_fields(hp)
    return {**{k: names[k] for k in ("task", "seed", "epochs_scale", "batch_size", "method", "pruning",
                                      "target_density", "retraining_epochs")},
            **{k: v for k, v in values.items() if k != T_NAME}}


