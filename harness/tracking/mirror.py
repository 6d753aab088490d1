"""MLflow mirrors the local store for the UI; a tracking failure never costs a result.

Each store folder remembers, per tracking URI, the MLflow run it was mirrored to, so a rerun
mirrors only what is missing. Retraining runs are nested under their base run and share param
names, so the compare view lines methods up side by side.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.core.canonical import flatten
from harness.core.errors import DamagedFile
from harness.core.hparams import BaseHparams, RetrainHparams
from harness.engine.export import export
from harness.storage import paths, store
from harness.storage.record import BaseRecord, history_from_json
from methods.spec import get_method

# MLflow 3 opens an experiment without this tag on its GenAI pages; model training opens on the runs list
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
MODEL_ARTIFACTS = "model"  # a retraining run's pruned network, as `harness export` writes it


def default_uri(store_root: Path) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{paths.mlflow_db(store_root)}"


def tracker_for(store_root: Path, tracking: bool, tracking_uri: str | None, warn: Any = print) -> Tracker | None:
    """The MLflow mirror of the store at ``store_root`` (sqlite in the store unless ``tracking_uri`` or
    ``$MLFLOW_TRACKING_URI`` says otherwise), or None without tracking."""
    return Tracker(tracking_uri or default_uri(store_root), store_root, warn=warn) if tracking else None


def task_params(task: Any) -> dict[str, Any]:
    return {
        "task.epochs": task.epochs, "task.batch_size": task.batch_size, "task.metric": task.metric_definition,
        "task.optimizer": task.optimizer.describe(), "task.schedule": task.schedule.describe(),
    }


def run_name(label: str, epochs_scale: float, batch_size: int | None) -> str:
    """A run's name: its label, and the schedule and batch size where they are not the task's."""
    if epochs_scale != 1.0:
        label += f" epochs_scale={epochs_scale:g}"
    if batch_size is not None:
        label += f" batch_size={batch_size}"
    return label


def span(result_path: Path, seconds: float, finished_at: float) -> tuple[float, float]:
    """(start, end) of the work a result records, in seconds since the epoch; results stored before
    their end was kept end when their file was written."""
    end = finished_at or result_path.stat().st_mtime
    return end - seconds, end


class Tracker:
    def __init__(self, uri: str, artifact_root: Path, warn: Any = print) -> None:
        self.uri = uri
        self.artifact_root = artifact_root
        self.warn = warn
        self.failure: str | None = None
        self._client: Any = None
        self._experiments: dict[str, str] = {}

    def client(self) -> Any:
        if self._client is None:
            if self.uri.startswith(("http://", "https://")):
                # Fail in seconds, not after minutes of retries, when the server is down.
                os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
                os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
                # MLflow prints "View run ..." links on stdout at each run's end; a sweep's stdout is its tables.
                os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
            # start-up: MLflow only when something is tracked (about a second)
            from mlflow.tracking import MlflowClient

            logging.getLogger("mlflow").setLevel(logging.WARNING)
            logging.getLogger("alembic").setLevel(logging.WARNING)

            client = MlflowClient(tracking_uri=self.uri)
            if self.uri.startswith("sqlite:///"):
                # Processes opening a new database at once would each create its tables: one does,
                # under a lock next to the database, and the others find them made.
                db = Path(self.uri[len("sqlite:///"):])
                with store.exclusive(db.parent, name=paths.mlflow_db_lock(db)):
                    client.search_experiments(max_results=1)
                    store.give_file_mode(db)
            self._client = client
        return self._client

    def experiment_id(self, name: str) -> str:
        if name not in self._experiments:
            client = self.client()
            exp = client.get_experiment_by_name(name)
            if exp is None:
                local = not self.uri.startswith(("http://", "https://", "databricks"))
                location = paths.mlartifacts(self.artifact_root, name).as_uri() if local else None
                self._experiments[name] = client.create_experiment(name, artifact_location=location,
                                                                   tags=EXPERIMENT_KIND)
            else:
                self._experiments[name] = exp.experiment_id
                for key, value in EXPERIMENT_KIND.items():  # an experiment made before the kind was set
                    if exp.tags.get(key) != value:
                        client.set_experiment_tag(exp.experiment_id, key, value)
        return self._experiments[name]

    def _markers(self, folder: Path) -> dict[str, str]:
        """The runs a folder was mirrored to; a damaged marker is set aside, and the run is found
        again by its tags."""
        marker = folder / paths.MLFLOW_MARKER
        try:
            known = store.read_json(marker)
        except FileNotFoundError:
            return {}
        except DamagedFile as e:
            store.set_aside(marker)
            self.warn(f"{e}: moved aside; its MLflow run is looked up by its tags")
            return {}
        return known if isinstance(known, dict) else {}

    def run_id(self, folder: Path, key: str | None = None) -> str | None:
        return self._markers(folder).get(key or self.uri)

    def _remember(self, folder: Path, run_id: str, key: str | None = None) -> None:
        store.atomic_write_json(folder / paths.MLFLOW_MARKER, {**self._markers(folder), (key or self.uri): run_id})

    def _find(self, experiment_id: str, folder: Path, key: str, reopen: bool) -> str | None:
        """The run already made for ``folder`` and ``key`` (its marker lost). A run left RUNNING by a
        process that died while logging it is closed as FAILED and not reused, unless ``reopen``
        (a study's own run)."""
        client = self.client()
        runs = client.search_runs([experiment_id], f"tags.`harness.folder` = '{folder}' and "
                                                   f"tags.`harness.key` = '{key}'", max_results=100)
        for run in runs:
            if run.info.status == "FINISHED" or reopen:
                return run.info.run_id
            if run.info.status == "RUNNING":
                client.set_terminated(run.info.run_id, status="FAILED")
        return None

    def _log(self, folder: Path, experiment: str, name: str, params: dict[str, Any], tags: dict[str, str],
             metrics: dict[str, float], artifacts: dict[str, Any], key: str | None = None, terminate: bool = True,
             span: tuple[float, float] | None = None, files: Callable[[Path], None] | None = None) -> str | None:
        """One MLflow run for ``folder`` and ``key``: made once, found again after. ``span`` is the (start,
        end) of the work it mirrors, in seconds since the epoch; ``files`` writes the files to log as
        ``MODEL_ARTIFACTS`` into the folder it is given."""
        def log() -> str | None:
            with store.exclusive(folder, name=paths.MLFLOW_LOCK):  # one process at a time: one run per folder and key
                return self._log_once(folder, experiment, name, params, tags, metrics, artifacts,
                                      key or self.uri, terminate, span, files)

        return self._guard(log)

    def _log_once(self, folder: Path, experiment: str, name: str, params: dict[str, Any], tags: dict[str, str],
                  metrics: dict[str, float], artifacts: dict[str, Any], key: str, terminate: bool,
                  span: tuple[float, float] | None, files: Callable[[Path], None] | None) -> str | None:
        if (known := self.run_id(folder, key)) is not None:
            return known
        experiment_id = self.experiment_id(experiment)
        if (found := self._find(experiment_id, folder, key, reopen=not terminate)) is not None:
            self._remember(folder, found, key)
            return found
        # start-up: MLflow only when something is tracked
        from mlflow.entities import Metric, Param

        client = self.client()
        start_ms = int(span[0] * 1000) if span else None
        run = client.create_run(experiment_id, start_time=start_ms, run_name=name, tags={**tags, "harness.key": key})
        rid = run.info.run_id
        now = int((span[1] if span else time.time()) * 1000)
        path = folder / paths.HISTORY
        history = history_from_json(store.read_json(path)) if path.exists() else []
        # the scores over epochs under the record's names, so that the last step is the final score
        # (evaluations at fractional epochs share a rounded step with their neighbour: the later one wins)
        by_step = {(metric, round(rec.epoch)): float(getattr(rec, metric)) for rec in history
                   for metric in ("val_acc", "test_acc", "train_loss", "lr") if not math.isnan(getattr(rec, metric))}
        series = [Metric(metric, value, now, step) for (metric, step), value in by_step.items()]
        logged = {m.key for m in series}
        last = max((m.step for m in series), default=0)
        finals = [Metric(k, float(v), now, last) for k, v in metrics.items() if k not in logged]
        client.log_batch(rid, params=[Param(k, str(v)) for k, v in params.items()])
        for i in range(0, len(series) + len(finals), 1000):
            client.log_batch(rid, metrics=(series + finals)[i : i + 1000])
        for path, obj in artifacts.items():
            client.log_dict(rid, obj, path)
        if files is not None:
            with tempfile.TemporaryDirectory() as tmp:
                files(Path(tmp))
                client.log_artifacts(rid, tmp, MODEL_ARTIFACTS)
        if terminate:
            client.set_terminated(rid, end_time=now if span else None)
        self._remember(folder, rid, key)
        return rid

    def mirror_base(self, folder: Path, task: Any, hp: BaseHparams) -> str | None:
        return self._guard(lambda: self._mirror_base(folder, task, hp))

    def _mirror_base(self, folder: Path, task: Any, hp: BaseHparams) -> str | None:
        path = folder / paths.RESULT
        result = BaseRecord.from_json(store.read_result(path) or {})
        return self._log(
            folder, task.name, run_name(f"base s{hp.seed}", hp.epochs_scale, hp.batch_size),
            params=flatten(hp) | task_params(task),
            tags={"harness.kind": "base", "harness.folder": str(folder), "seed": str(hp.seed)},
            metrics={"val_acc": result.val_acc, "test_acc": result.test_acc, "seconds": result.seconds,
                     **({"parameters": result.parameters} if result.parameters else {})},
            artifacts={}, span=span(path, result.seconds, result.finished_at),
        )

    def start_study(self, folder: Path, task: Any, name: str, params: dict[str, Any]) -> str | None:
        """The study's parent run (one per study and tracking URI; a rerun reopens it)."""
        title = run_name(f"study {name}", params["epochs_scale"], params.get("batch_size"))
        rid = self._log(folder, task.name, title, params=params,
                        tags={"harness.kind": "study", "study": name, "harness.folder": str(folder)},
                        metrics={}, artifacts={}, terminate=False)
        if rid is not None:
            self._guard(lambda: self.client().update_run(rid, status="RUNNING"))
        return rid

    def end_study(self, run_id: str, metrics: dict[str, float], failed: bool) -> None:
        def end() -> None:
            # start-up: MLflow only when something is tracked
            from mlflow.entities import Metric

            now = int(time.time() * 1000)
            self.client().log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()])
            self.client().set_terminated(run_id, status="FAILED" if failed else "FINISHED")

        self._guard(end)

    def _guard(self, action: Any) -> Any:
        """``action()``, unless tracking has failed already; a failure of the mirror, on any file or
        any answer of MLflow, costs the run nothing: it is said once and tracking stops."""
        if self.failure is not None:
            return None
        try:
            return action()
        except Exception as e:
            self._failed(e)
            return None

    def _failed(self, e: Exception) -> None:
        reason = " ".join(str(e).split())[:200] or type(e).__name__
        self.failure = f"{type(e).__name__}: {reason}"
        self.warn(f"tracking failed: could not log to MLflow at {self.uri} ({self.failure}); "
                  f"results are kept in the local store")

    def mirror_retrain(self, folder: Path, task: Any, hp: RetrainHparams, base_folder: Path,
                       study: tuple[str, str] | None = None) -> str | None:
        """A retraining round as a child of its base run, or with ``study`` = (parent run id, study
        name) as a child of the study's run, tagged so the UI can filter the study's cells."""
        return self._guard(lambda: self._mirror_retrain(folder, task, hp, base_folder, study))

    def _mirror_retrain(self, folder: Path, task: Any, hp: RetrainHparams, base_folder: Path,
                        study: tuple[str, str] | None) -> str | None:

        path = folder / paths.RESULT
        record = store.read_record(path)
        parent = self.mirror_base(base_folder, task, hp.base)
        # the record's names; the target density as it was asked for, the realized one as reached
        tags = {"harness.kind": "retrain", "harness.folder": str(folder), "method": hp.method_label,
                "density": f"{record.density:.4g}", "retraining_epochs": f"{record.retraining_epochs:g}",
                "seed": str(record.seed), "schedule": record.schedule, "pruning": record.pruning}
        if record.target_density is not None:
            tags["target_density"] = f"{record.target_density:g}"
        if record.level is not None:
            tags["level"] = str(record.level)
        if parent is not None:
            tags |= {"mlflow.parentRunId": parent, "base_run_id": parent}
        key = None
        if study is not None:
            tags |= {"mlflow.parentRunId": study[0], "study": study[1]}
            key = f"{self.uri}#study:{study[0]}"
        return self._log(
            folder, task.name, run_name(f"{hp.method_label} {hp.label} t={hp.retrain_epochs:g} s{hp.base.seed}",
                                        hp.base.epochs_scale, hp.base.batch_size),
            params=record.run_params() | task_params(task) | {"formula": get_method(hp.method).formula},
            tags=tags,
            metrics=record.outcome(),
            artifacts={paths.MASK_DENSITIES: store.read_json(folder / paths.MASK_DENSITIES)},
            key=key, span=span(path, record.seconds, record.finished_at),
            files=lambda into: export(folder, into, "safetensors"),
        )

    # -- searches (`harness tune`): one run per trial, the best one tagged ------------------------

    def start_trial(self, experiment: str, name: str, tags: dict[str, str], params: dict[str, Any]) -> str | None:
        def start() -> str:
            # start-up: MLflow only when something is tracked
            from mlflow.entities import Param

            client = self.client()
            run = client.create_run(self.experiment_id(experiment), run_name=name, tags=tags)
            client.log_batch(run.info.run_id, params=[Param(k, str(v)) for k, v in params.items()])
            return run.info.run_id

        return self._guard(start)

    def log_metric(self, run_id: str | None, key: str, value: float, step: int) -> None:
        if run_id is not None:
            self._guard(lambda: self.client().log_metric(run_id, key, float(value), step=step))

    def end_trial(self, run_id: str | None, status: str, tags: dict[str, str], metrics: dict[str, float]) -> None:
        def end() -> None:
            client = self.client()
            for k, v in tags.items():
                client.set_tag(run_id, k, v)
            for k, v in metrics.items():
                client.log_metric(run_id, k, float(v))
            client.set_terminated(run_id, status=status)

        if run_id is not None:
            self._guard(end)

    def mark_best(self, experiment: str, study: str, number: int, metrics: dict[str, float]) -> None:
        """Tag the study's best trial ``best=true`` (and only it: an earlier best loses the tag) and log
        ``metrics`` (its evaluation over seeds) on its run."""
        def mark() -> None:
            client = self.client()
            exp = self.experiment_id(experiment)
            runs = client.search_runs([exp], f"tags.`optuna.study` = '{study}'", max_results=50000)
            for run in runs:
                best = run.data.tags.get("optuna.trial") == str(number)
                if best or run.data.tags.get("best") == "true":
                    client.set_tag(run.info.run_id, "best", "true" if best else "false")
                if best:
                    for k, v in metrics.items():
                        client.log_metric(run.info.run_id, k, float(v))
            client.set_experiment_tag(exp, "best_trial", str(number))

        self._guard(mark)
