"""Where a search's trials live (an RDB or a journal file) and the study that holds them: opened,
resumed, counted."""

from __future__ import annotations

import dataclasses
import json
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

from harness.core.canonical import content_hash
from harness.core.errors import HarnessError
from harness.core.hparams import CPU, Compute
from harness.core.protocol import DEFAULT_PRUNING
from harness.storage.store import give_file_mode

STORAGE_ATTEMPTS = 3
HEARTBEAT_S = 30  # RDB storages: a trial silent for 2x this is failed, and run again by the next process
RDB_DIALECTS = ("sqlite", "postgresql", "mysql", "oracle", "mssql")
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
OPTUNA_PRUNERS = ("median", "hyperband", "none")
OBJECTIVE = "val_acc"  # the record's name for validation accuracy, in Optuna as in MLflow


# -- storage -----------------------------------------------------------------------------------------


def open_storage(url: str | None, journal: Path | None, default: Path) -> tuple[optuna.storages.BaseStorage, str]:
    """An Optuna storage and how to name it: ``journal`` (a file shared through a file system), an
    RDB ``url``, or the sqlite file ``default``."""
    if journal is not None and url is not None:
        raise HarnessError("give --storage or --journal, not both")
    if journal is not None:
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
        storage = optuna.storages.RDBStorage(url, heartbeat_interval=HEARTBEAT_S, grace_period=2 * HEARTBEAT_S,
                                             engine_kwargs={"pool_pre_ping": True})
    if url.startswith("sqlite"):
        serialize_sqlite(storage.engine)
    return storage


def serialize_sqlite(engine: Any) -> None:
    """Make every transaction on a SQLite storage take the write lock when it begins (BEGIN IMMEDIATE).

    SQLite ignores SELECT ... FOR UPDATE, so two processes can both read a waiting trial (the enqueued
    defaults, a lost trial queued again) and both take it: one then finishes a trial the other is running,
    and the other fails with "Cannot tell a COMPLETE trial" (seen once in CI). Taken at BEGIN, the lock
    makes Optuna's read-then-claim one step, as a server database's row lock does."""
    from sqlalchemy import event  # start-up: only for a SQLite storage

    @event.listens_for(engine, "connect")
    def no_implicit_transactions(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None  # the driver's own deferred BEGIN off: ours below instead

    @event.listens_for(engine, "begin")
    def begin_immediate(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections opened before the listeners are dropped


def redact(url: str) -> str:
    """A URL fit to print and to store: without its password."""
    head, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{head}{sep}{user}:***@{host}" if ":" in credentials else url


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
