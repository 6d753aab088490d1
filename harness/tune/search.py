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
import json
import math
import os
import socket
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, Trial, TrialState

from harness.core import signals
from harness.core.canonical import content_hash
from harness.core.errors import HarnessError
from harness.core.hparams import CPU, BaseHparams, Compute, RetrainHparams
from harness.core.protocol import DEFAULT_PRUNING, paper_retraining_times
from harness.engine.experiment import Reporter, Runner
from harness.storage import store
from harness.storage.paths import HISTORY
from harness.storage.record import CellRecord, history_from_json
from harness.storage.store import give_file_mode
from methods.pruning import PruningStrategy
from methods.spec import Param, Retraining

T_NAME = "t"  # the retraining time, searched next to the method's own parameters
PRUNING_PREFIX = "pruning."  # the pruning strategy's parameters, searched under pruning.NAME
STORAGE_ATTEMPTS = 3
HEARTBEAT_S = 30  # RDB storages: a trial silent for 2x this is failed, and run again by the next process
RDB_DIALECTS = ("sqlite", "postgresql", "mysql", "oracle", "mssql")
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
OPTUNA_PRUNERS = ("median", "hyperband", "none")
OBJECTIVE = "val_acc"  # the record's name for validation accuracy, in Optuna as in MLflow


# -- the search space -------------------------------------------------------------------------------


def distribution(param: Param) -> BaseDistribution:
    if param.choices:
        return CategoricalDistribution(param.choices)
    if param.integer:
        return IntDistribution(int(param.low), int(param.high), log=param.log)
    return FloatDistribution(param.low, param.high, log=param.log)


def retrain_time_param(method: Retraining, T: float) -> Param:
    """t as a search dimension: the paper's ten times over (0, T], each one a stored rewind point.
    The default is the one closest to T/2, `harness run`'s default."""
    times = tuple(paper_retraining_times(T))
    default = min(times, key=lambda t: (abs(t - T / 2), t))
    return Param(default, help="retraining epochs", choices=times)


def declared_space(method: Retraining, T: float, pruning: PruningStrategy | None = None) -> dict[str, Param]:
    """What a search over ``method`` explores unless told otherwise: its searchable parameters, those of
    the pruning strategy (``pruning.NAME``), and t."""
    space = {n: p for n, p in method.params.items() if p.searchable}
    if pruning is not None:
        space |= {PRUNING_PREFIX + n: p for n, p in pruning.params.items() if p.searchable}
    return {**space, T_NAME: retrain_time_param(method, T)}


def split_values(values: Mapping[str, float]) -> tuple[dict[str, float], dict[str, float], float]:
    """A trial's values as (the method's parameters, the strategy's parameters, t)."""
    method = {k: v for k, v in values.items() if k != T_NAME and not k.startswith(PRUNING_PREFIX)}
    pruning = {k[len(PRUNING_PREFIX):]: v for k, v in values.items() if k.startswith(PRUNING_PREFIX)}
    return method, pruning, float(values[T_NAME])


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise HarnessError(f"--space {what}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise HarnessError(f"--space {what}: {text!r} is not a finite number")
    return value


def _within(method: Retraining, T: float, name: str, param: Param, entry: str, value: float) -> float:
    """A value of a --space entry, inside what the method declares valid for it."""
    if name == T_NAME:
        if value <= 0:
            raise HarnessError(f"--space {entry!r}: t must be > 0")
        method.validate(T, value)
        return value
    try:
        return Param(param.default, param.low, param.high, param.log, param.integer).check(method.name, name, value)
    except HarnessError as e:
        raise HarnessError(f"--space {entry!r}: {e}") from None


def parse_space(
    method: Retraining, T: float, entries: Sequence[str], pruning: PruningStrategy | None = None
) -> tuple[dict[str, BaseDistribution], dict[str, float]]:
    """The declared space narrowed by ``--space`` entries: NAME=LOW:HIGH (a range inside the declared
    one), NAME=A,B,C (choices) or NAME=VALUE (fixed). Returns (searched dimensions, fixed values)."""
    declared = declared_space(method, T, pruning)
    searched: dict[str, BaseDistribution] = {n: distribution(p) for n, p in declared.items()}
    fixed: dict[str, float] = {}
    valid = ", ".join(declared)
    for entry in entries:
        name, sep, text = entry.partition("=")
        name = name.strip()
        if not sep or not text.strip():
            raise HarnessError(f"--space {entry!r}: expected NAME=LOW:HIGH, NAME=A,B,C or NAME=VALUE; "
                               f"searchable: {valid}")
        if name not in declared:
            raise HarnessError(f"--space {entry!r}: {method.name} has no searchable parameter {name!r}; "
                               f"searchable: {valid}")
        param = declared[name]

        def check(x: str, entry: str = entry, name: str = name, param: Param = param) -> float:
            return _within(method, T, name, param, entry, _number(x, entry))

        if ":" in text:
            low, high = (check(x) for x in text.split(":", 1))
            if not low < high:
                raise HarnessError(f"--space {entry!r}: low must be below high")
            if name == T_NAME:
                searched[name] = FloatDistribution(low, high)
            elif param.integer:
                searched[name] = IntDistribution(int(low), int(high), log=param.log)
            else:
                searched[name] = FloatDistribution(low, high, log=param.log)
        elif "," in text:
            choices = tuple(dict.fromkeys(check(x) for x in text.split(",")))
            searched[name] = CategoricalDistribution(choices)
        else:
            fixed[name] = check(text)
            searched.pop(name)
    if not searched:
        raise HarnessError(f"--space fixes every dimension of {method.name}; nothing is left to search "
                           f"(searchable: {valid})")
    return searched, fixed


def describe_space(searched: Mapping[str, BaseDistribution]) -> dict[str, str]:
    def one(d: BaseDistribution) -> str:
        if isinstance(d, CategoricalDistribution):
            return "one of " + ", ".join(f"{c:g}" for c in d.choices)
        kind = "integer" if isinstance(d, IntDistribution) else "real"
        return f"{kind} in [{d.low:g}, {d.high:g}]" + (", log scale" if d.log else "")

    return {n: one(d) for n, d in searched.items()}


def holds(d: BaseDistribution, value: float) -> bool:
    if isinstance(d, CategoricalDistribution):
        return value in d.choices
    return d.low <= value <= d.high


def suggest(trial: Trial, name: str, d: BaseDistribution) -> float:
    if isinstance(d, CategoricalDistribution):
        return trial.suggest_categorical(name, d.choices)
    if isinstance(d, IntDistribution):
        return trial.suggest_int(name, d.low, d.high, log=d.log)
    return trial.suggest_float(name, d.low, d.high, log=d.log)


# -- storage -----------------------------------------------------------------------------------------


def open_storage(url: str | None, journal: Path | None, default: Path) -> tuple[optuna.storages.BaseStorage, str]:
    """An Optuna storage and how to name it: ``journal`` (a file shared through a file system), an
    RDB ``url``, or the sqlite file ``default``."""
    if journal is not None and url is not None:
        raise HarnessError("give --storage or --journal, not both")
    if journal is not None:
        from optuna.storages.journal import JournalFileBackend

        try:
            journal.parent.mkdir(parents=True, exist_ok=True)
            return optuna.storages.JournalStorage(JournalFileBackend(str(journal))), f"journal {journal}"
        except OSError as e:
            raise HarnessError(f"cannot open the journal file {journal}: {e.strerror or e}") from None
    if url is None:
        default.parent.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{default}"
    dialect = url.split("://", 1)[0].split("+", 1)[0] if "://" in url else ""
    valid = ("valid: sqlite:///PATH, postgresql://USER:PASSWORD@HOST/DATABASE, mysql://..., "
             "or --journal FILE")
    if dialect not in RDB_DIALECTS:
        raise HarnessError(f"--storage {url!r} is not a database URL; {valid}")
    # Processes that open a new database at once race to create its schema; the loser finds it made a
    # moment later. Anything else fails every attempt and is named on one line.
    error: Exception | None = None
    for attempt in range(STORAGE_ATTEMPTS):
        time.sleep(1.0 if attempt else 0.0)
        try:
            storage = rdb_storage(url)
            if url == f"sqlite:///{default}":
                give_file_mode(default)
            return storage, redact(url)
        except Exception as e:
            error = e
    cause = error.__cause__ or error
    reason = " ".join(str(cause).split())[:200] or type(cause).__name__
    raise HarnessError(f"cannot open Optuna storage {redact(url)} ({type(cause).__name__}: {reason}); {valid}")


def rdb_storage(url: str) -> optuna.storages.RDBStorage:
    with warnings.catch_warnings():  # the heartbeat is "experimental" since optuna 2.9
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(url, heartbeat_interval=HEARTBEAT_S, grace_period=2 * HEARTBEAT_S,
                                          engine_kwargs={"pool_pre_ping": True})


def redact(url: str) -> str:
    """A URL fit to print and to store: without its password."""
    head, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{head}{sep}{user}:***@{host}" if ":" in credentials else url


# -- the search --------------------------------------------------------------------------------------


class Listener:
    """What a search tells its caller; the CLI draws progress bars from it."""

    def trial_started(self, number: int, values: Mapping[str, float], total_steps: int) -> None:
        pass

    def trial_step(self, done: int, record: Mapping[str, float]) -> None:
        pass

    def trial_finished(self, trial: FrozenTrial | None, study: optuna.Study) -> None:
        pass

    def note(self, message: str) -> None:
        pass

    def search_started(self, name: str, storage_label: str, trials_so_far: int, space: str, total: int) -> None:
        """After the base network is trained and the study is open, before the first trial."""

    def search_ended(self) -> None:
        """After the last trial, or on a stop or an error."""


@dataclass(frozen=True)
class Config:
    """What makes a study: rerunning a command with the same config resumes the same study."""

    method: str
    task: str
    density: float
    seed: int
    epochs_scale: float
    batch_size: int | None
    space: tuple[tuple[str, str], ...]
    fixed: tuple[tuple[str, float], ...]
    pruning: str = DEFAULT_PRUNING
    compute: Compute = CPU

    def default_name(self) -> str:
        return f"{self.method}-{self.task}-d{self.density:g}-{content_hash(self)[:8]}"

    def as_json(self) -> str:
        defaults = {"pruning": DEFAULT_PRUNING, "compute": CPU}
        fields = {k: v for k, v in self.__dict__.items() if not (k in defaults and v == defaults[k])}
        if "compute" in fields:
            fields["compute"] = dataclasses.asdict(self.compute)
        return json.dumps({**fields, "space": dict(self.space), "fixed": dict(self.fixed)}, sort_keys=True)


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
    listener: Listener = field(default_factory=Listener)
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
                self.listener.note(f"trial {trial.number} was lost with its process: queued again")

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
        self.listener.trial_started(trial.number, values, total)
        reports = TrialReports(trial, self.tracker, run_id, self.listener)
        self.runner.reporter = reports
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
        self.listener.trial_finished(trial, study)

    def run(self, timeout: float | None = None, max_failures: int = 3) -> None:
        """Trials until the study has ``trials`` of them (counting other processes' work)."""
        self.requeue_lost()
        self.listener.trial_finished(None, self.study)
        started = time.time()
        while self.taken() < self.trials:
            if timeout is not None and time.time() - started > timeout:
                self.listener.note(f"--timeout {timeout:g}s reached: stopping; rerun the command to go on")
                break
            with signals.deferred():  # a stop in Optuna's bookkeeping would leave the trial in no state
                self.study.optimize(self.objective, n_trials=1, catch=(Exception,), callbacks=[self.after_trial])
            if self.surplus:
                break
            if self.failures_in_a_row >= max_failures:
                failed = self.study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
                errors = [t.user_attrs["error"] for t in failed if "error" in t.user_attrs]
                raise HarnessError(f"{max_failures} trials in a row failed; the last: {errors[-1] if errors else '?'}")


class TrialReports(Reporter):
    """Validation accuracy at each epoch's end -> the trial (for the pruner), MLflow and the display."""

    def __init__(self, trial: Trial, tracker: Any, run_id: str | None, listener: Listener) -> None:
        self.trial, self.tracker, self.run_id, self.listener = trial, tracker, run_id, listener

    @contextmanager
    def track(self, description: str, total_steps: int) -> Iterator[Callable[[int, dict[str, float]], None]]:
        def advance(done: int, record: dict[str, float]) -> None:
            self.listener.trial_step(done, record)
            if record:
                self.report(done, record.val_acc)
                if self.trial.should_prune():
                    raise optuna.TrialPruned(f"validation {record.val_acc:.2f} after {done} steps")

        yield advance

    def report(self, step: int, val: float) -> None:
        self.trial.report(val, step)
        if self.tracker is not None:
            self.tracker.log_metric(self.run_id, OBJECTIVE, val, step)

    def replay(self, history_path: Path, first_step: int, spe: int) -> None:
        """A cached cell's epochs, reported as steps since its first step."""

        for record in history_from_json(store.read_json(history_path)):
            self.report(round(record.epoch * spe) - first_step, record.val_acc)

    def note(self, message: str) -> None:
        pass  # "reusing base network": the search prepared it before the first trial


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
    return {"task": hp.base.task, "seed": hp.base.seed, "epochs_scale": hp.base.epochs_scale,
            "batch_size": hp.base.batch_size, "method": hp.method, "pruning": hp.pruning,
            "target_density": hp.density, "retraining_epochs": hp.retrain_epochs,
            **{k: v for k, v in values.items() if k != T_NAME}}


def make_pruner(name: str, steps_per_epoch: int) -> optuna.pruners.BasePruner:
    """``median``: stop a trial whose validation accuracy after k steps is below the median of earlier
    trials' after k steps (from the fourth trial on, after the first epoch). Steps count from a trial's
    start, which lines up fine-tuning runs of any t but not rewinding runs of different t (a long t
    starts at a higher rate): fix t or use ``none`` for those."""
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=steps_per_epoch)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=steps_per_epoch)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise HarnessError(f"--pruner {name!r} is not valid; valid: {', '.join(OPTUNA_PRUNERS)}")


def defaults(method: Retraining, T: float, searched: Mapping[str, BaseDistribution],
             pruning: PruningStrategy | None = None) -> dict[str, float]:
    """The method's defaults, where the searched space holds them (the sampler picks the rest)."""
    declared = declared_space(method, T, pruning)
    return {n: declared[n].default for n, d in searched.items() if holds(d, declared[n].default)}


def open_study(storage: optuna.storages.BaseStorage, name: str, config: Config, pruner: optuna.pruners.BasePruner,
               sampler_seed: int | None, first_trial: Mapping[str, float], maximize: bool = True) -> optuna.Study:
    """Create the study, or load it; a study of that name made for another search is an error.

    The process that creates the study queues ``first_trial`` (the method's defaults), so the search
    never reports worse than them; only it does, so processes starting together queue it once.
    ``maximize``: whether the task's metric is higher-is-better (``harness.core.metrics``)."""
    sampler = optuna.samplers.TPESampler(seed=sampler_seed)
    try:
        study = optuna.create_study(storage=storage, study_name=name, direction="maximize" if maximize else "minimize",
                                    pruner=pruner,
                                    sampler=sampler)
        study.enqueue_trial(dict(first_trial), user_attrs={"defaults": True})
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=name, storage=storage, pruner=pruner, sampler=sampler)
    with warnings.catch_warnings():  # experimental since Optuna 3.2, and what optuna-dashboard reads
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([OBJECTIVE])  # dashboards name the objective, not "Objective 0"
    made_for = study.user_attrs.get("harness.config")
    if made_for is None:
        study.set_user_attr("harness.config", config.as_json())
    elif made_for != config.as_json():
        raise HarnessError(f"study {name!r} in this storage was made for another search ({made_for}); "
                           "give another --study-name, or the options it was made with")
    return study


def trial_counts(study: optuna.Study) -> dict[str, int]:
    counts = {"complete": 0, "pruned": 0, "failed": 0, "running": 0}
    for t in study.get_trials(deepcopy=False):
        if t.state == TrialState.COMPLETE:
            counts["complete"] += 1
        elif t.state == TrialState.PRUNED:
            counts["pruned"] += 1
        elif t.state == TrialState.RUNNING:
            counts["running"] += 1
        elif t.state == TrialState.FAIL and not t.user_attrs.get("surplus"):
            counts["failed"] += 1
    return counts


def best_trial(study: optuna.Study) -> FrozenTrial:
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        raise HarnessError(f"study {study.study_name!r} has no completed trial yet; run more --trials")
    return study.best_trial


def default_trial(study: optuna.Study) -> FrozenTrial | None:
    return next((t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                 if t.user_attrs.get("defaults")), None)
