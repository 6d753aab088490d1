"""The harness from Python (a notebook): run a method, run a study, read results, load a pruned model.

    from harness import api

    records = api.run("lr-rewinding", "mnist1d", density=0.2, epochs_scale=0.5, store="results")
    found = api.tune("lr-rewinding", "mnist1d", trials=10, epochs_scale=0.5)   # found.values, found.rows
    api.results("results")                  # every finished cell of the store, a pandas DataFrame
    model = api.load_model("results", records[0])   # the pruned nn.Module (compacted if structured)

The command line calls the same functions; arguments carry the names of its options.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError
from harness.core.hparams import CPU, BaseHparams, Compute, RetrainHparams
from harness.core.metrics import metric_of
from harness.core.progress import Progress
from harness.core.protocol import DEFAULT_PRUNING, as_fraction, density_chain
from harness.core.registry import METHODS, PRUNING, TASKS
from harness.engine.checks import check_batch_size, check_device, check_epochs_scale
from harness.engine.export import export as write
from harness.engine.export import pruned_model
from harness.engine.gate import check_cell, checkpoint_tasks
from harness.engine.runner import Runner
from harness.storage import paths
from harness.storage.record import CellRecord, SpeedRecord
from harness.storage.store import Store
from harness.sweep import variants
from harness.tracking.mirror import Tracker, default_uri, tracker_for
from harness.tracking.ui_server import MlflowUI, check_servable
from methods.pruning import Prunes, Target, get_pruning
from methods.spec import get_method
from tasks.spec import DataOptions, get_task

PathLike = str | os.PathLike


@dataclass(frozen=True)
class RunPlan:
    cells: list[RetrainHparams]  # in the order they run: seed, then t, then the rounds of the chain
    task: Any  # the task resolved with the run's schedule and batch size
    measures_filters: bool  # whether the pruning removes whole filters (a compactable network)


def plan_run(method: str, task: str, *, density: float | None = None, rounds: int | None = None,
             iterative: bool | None = None, pruning: str = DEFAULT_PRUNING,
             pruning_params: dict[str, float] | None = None, level: Sequence[int] = (),
             retrain_epochs: Sequence[float] = (), seeds: Sequence[int] = (0,), epochs_scale: float = 1.0,
             batch_size: int | None = None, store: PathLike = "results", compute: Compute = CPU,
             model: PathLike | None = None, data_dir: PathLike | None = None) -> RunPlan:
    """The cells ``harness run`` computes, checked: METHOD (a method, recipe or saved variant) on TASK,
    each name as registered whatever the case it was typed in. ``model`` is a checkpoint task's folder
    (with ``data_dir``, its data: both are part of its base networks' identity)."""
    task, pruning = TASKS.canonical(task), PRUNING.canonical(pruning)
    choice = variants.resolve(method, Store(store).root)
    if choice.iterative is not None and iterative is not None and iterative != choice.iterative:
        kind, flag = ("iterative", "--one-shot") if choice.iterative else ("one-shot", "--iterative")
        raise HarnessError(f"{method} is {kind} by definition; drop {flag}")
    iterative = bool(choice.iterative if choice.iterative is not None else iterative)
    check_epochs_scale(epochs_scale)
    check_batch_size(batch_size)
    source = checkpoint_source(task, model, data_dir)
    resolved = get_task(task).resolved(BaseHparams(task, epochs_scale=epochs_scale, batch_size=batch_size, **source))
    T = resolved.epochs
    # a checkpoint (T = 0) retrains for one epoch of its data unless told otherwise
    times = list(retrain_epochs) or [choice.retrain_epochs(T) if choice.retrain_epochs else T / 2 if T else 1.0]
    spec = get_method(choice.method)
    strategy = get_pruning(pruning)
    given = dict(pruning_params or {})
    # what no cell shows: a density given to a level strategy, levels to a density one, one-shot asked of
    # an iterative-only combination (check_cell then refuses every cell that cannot run)
    strategy.check(task, iterative=iterative, during_training=choice.method if spec.during is not None else None,
                   density=density, levels=tuple(level), params=given)
    params = strategy.overrides(given)
    if strategy.target is Target.LEVEL:
        if rounds is not None:
            raise HarnessError(f"{pruning} prunes one-shot at --level k; it takes no --rounds")
        shapes = [{"level": k} for k in (level or [1])]
    else:
        chain = density_chain(strategy.density_for(given, density), rounds, iterative)
        shapes = [{"densities": chain[:r], "iterative": iterative} for r in range(1, len(chain) + 1)]
    cells = [RetrainHparams(BaseHparams(task, seed=s, epochs_scale=epochs_scale, batch_size=batch_size,
                                        compute=compute, **source),
                            choice.method, t, **shape, pruning=pruning, pruning_params=params,
                            method_params=choice.params, variant=choice.variant)
             for s in seeds for t in times for shape in shapes]
    for hp in cells:
        check_cell(hp, "--rounds" if rounds is not None else "--density")
    return RunPlan(cells, resolved, strategy.prunes is Prunes.FILTERS)


def checkpoint_source(task: str, model: PathLike | None, data_dir: PathLike | None) -> dict[str, str]:
    """A checkpoint task's folders as its base hyperparameters hold them (absolute); nothing for other tasks."""
    if get_task(task).bind is None:
        if model is not None:
            raise HarnessError(f"--model is for the tasks that load a checkpoint ({', '.join(checkpoint_tasks())}), "
                               f"not {task}")
        return {}
    locate = get_task(task).locate or (lambda m: str(Path(m).resolve()))
    source = {"checkpoint": locate(str(model))} if model is not None else {}
    return source | ({"data_dir": str(Path(data_dir).resolve())} if data_dir is not None else {})


@dataclass
class RunResult:
    """What ``run_planned`` computed: a record per cell, speeds when measured, where they were tracked."""

    rows: list[CellRecord]
    speeds: list[SpeedRecord]
    tracker: Tracker | None
    seconds: float


def run_planned(planned: RunPlan, *, store: PathLike = "results", device: str = "cpu",
                data_dir: PathLike | None = None, download: bool = False, workers: int = 0, bf16: bool = False,
                threads: int = 1, tracking: bool = True, tracking_uri: str | None = None, measure_speed: bool = False,
                progress: Progress | None = None) -> RunResult:
    """The cells of ``plan_run``, computed (or read back) in order; with ``measure_speed``, each compacted
    network timed against the unpruned one."""
    if measure_speed and not planned.measures_filters:
        raise HarnessError("--measure-speed needs filter pruning (--structured): only it yields a smaller "
                           "dense network")
    progress = progress or Progress()
    results = Store(store)
    results.check_writable()
    tracker = tracker_for(results.root, tracking, tracking_uri, progress.warn)
    options = DataOptions(data_dir=Path(data_dir) if data_dir else None, device=device, download=download,
                          workers=workers)
    runner = Runner(results, options, tracker, progress, bf16=bf16, threads=threads)
    started = time.time()
    rows = [runner.retrain(hp) for hp in planned.cells]
    speeds = [runner.measure_speed(hp) for hp in planned.cells] if measure_speed else []
    return RunResult(rows, speeds, tracker, time.time() - started)


def run(method: str, task: str, *, store: PathLike = "results", device: str = "cpu", data_dir: PathLike | None = None,
        download: bool = False, workers: int = 0, bf16: bool = False, threads: int = 1, tracking: bool = True,
        tracking_uri: str | None = None, progress: Progress | None = None, **cells: Any) -> list[CellRecord]:
    """Train the base network (once per seed, reused thereafter), prune, retrain with ``method``; one
    record per cell. ``cells`` are ``plan_run``'s: density, rounds, iterative, pruning, pruning_params,
    level, retrain_epochs, seeds, epochs_scale, batch_size. ``progress`` (``harness.core.progress``) hears
    each training's steps."""
    check_device(device)
    planned = plan_run(method, task, store=store, compute=Compute.of(device, bf16, threads), data_dir=data_dir,
                       **cells)
    return run_planned(planned, store=store, device=device, data_dir=data_dir, download=download, workers=workers,
                       bf16=bf16, threads=threads, tracking=tracking, tracking_uri=tracking_uri,
                       progress=progress).rows


def load_study(study: PathLike, *, store: PathLike = "results", epochs_scale: float | None = None,
               seeds: Sequence[int] | None = None, methods: Sequence[str] | None = None, device: str = "cpu",
               bf16: bool = False, threads: int = 1, model: PathLike | None = None,
               data_dir: PathLike | None = None) -> Any:
    """A study (a YAML file or a preset's name) narrowed by ``epochs_scale``, ``seeds`` and ``methods``
    where given, its methods free to name the store's saved variants, computed as asked."""
    # start-up: pydantic and yaml only when a study is read
    from harness.sweep.study import load_study as read

    spec = read(str(study), variants.load_all(Store(store).root),
                narrow(epochs_scale=epochs_scale, seeds=seeds, methods=methods, model=model, data_dir=data_dir))
    check_device(device)
    return dataclasses.replace(spec, compute=Compute.of(device, bf16, threads))


def run_study(spec: Any, *, store: PathLike = "results", executor: str = "local", jobs: int | None = None,
              address: str | None = None, retries: int = 0, cpus_per_job: float = 1.0, gpus_per_job: float = 0.0,
              data_dir: PathLike | None = None, download: bool = False, workers: int = 4,
              tracking: bool = True, tracking_uri: str | None = None, progress: Progress | None = None) -> Any:
    """Run a study (``load_study``) on an executor (local processes or Ray): what the store lacks is
    trained, the rest read back; a ``StudyReport`` (a failed job is in its ``failures``, not raised)."""
    # start-up: the executors (and Ray's client, when asked for) only when a study runs
    from harness.sweep.driver import run_study as drive
    from harness.sweep.executors import WorkerContext, make_executor

    if retries < 0:
        raise HarnessError(f"--retries must be >= 0, got {retries}")
    progress = progress or Progress()
    results = Store(store)
    results.check_writable()
    tracker = tracker_for(results.root, tracking, tracking_uri, progress.warn)
    compute = spec.compute
    context = WorkerContext(str(results.root), DataOptions(data_dir=Path(data_dir) if data_dir else None,
                                                           device=compute.device, download=download,
                                                           workers=workers), compute.bf16, compute.threads)
    with make_executor(executor, context, jobs, address, retries, cpus_per_job, gpus_per_job, progress) as running:
        return drive(spec, results, running, progress, retries=retries, tracker=tracker)


def sweep(study: PathLike, *, store: PathLike = "results", jobs: int | None = None, epochs_scale: float | None = None,
          seeds: Sequence[int] | None = None, methods: Sequence[str] | None = None, device: str = "cpu",
          data_dir: PathLike | None = None, tracking: bool = True, tracking_uri: str | None = None) -> list[CellRecord]:
    """Run a study (a YAML file or a preset's name), narrowed by ``epochs_scale``, ``seeds`` and
    ``methods`` where given, on ``jobs`` local worker processes; the records of its cells. A failed job
    is raised (after the others ran), so a notebook does not read a partial table unawares."""
    spec = load_study(study, store=store, epochs_scale=epochs_scale, seeds=seeds, methods=methods, device=device)
    report = run_study(spec, store=store, jobs=jobs, data_dir=data_dir, tracking=tracking, tracking_uri=tracking_uri)
    if report.failures:
        label, error = report.failures[0]
        raise HarnessError(f"{len(report.failures)} job(s) of study {spec.name} failed, first {label}: {error}; "
                           "rerun to retry them (finished cells are kept)")
    return report.rows


def narrow(epochs_scale: float | None = None, seeds: Sequence[int] | None = None,
           methods: Sequence[str] | None = None, model: PathLike | None = None,
           data_dir: PathLike | None = None) -> dict[str, Any]:
    """Study keys that replace a study file's own: what ``sweep --epochs-scale/--seed/--methods`` set, and a
    checkpoint task's ``--model`` (with ``--data-dir``, which is then part of its base networks' identity)."""
    keys: dict[str, Any] = {}
    if model is not None:
        keys["model"] = str(model)
        if data_dir is not None:
            keys["data_dir"] = str(data_dir)
    if epochs_scale is not None:
        keys["epochs_scale"] = epochs_scale
    if seeds:
        keys["seeds"] = list(seeds)
    if methods:
        keys["methods"] = list(methods)
    return keys


def results(store: PathLike = "results") -> Any:
    """Every finished cell of the store as a pandas DataFrame, one row per record, columns named as
    ``results.csv``'s, and ``method_label``: the variant's name for a variant's rows, else the method."""
    # start-up: pandas only when a table is asked for
    import pandas as pd

    rows = [record.row() for record in Store(store).results()]
    if not rows:
        raise HarnessError(f"no results in {Store(store).root}: run `harness run` or `harness sweep` with --store")
    table = pd.DataFrame(rows)
    # what tables and plots call the method: a variant by its own name (group by this, not by `method`)
    table.insert(table.columns.get_loc("method") + 1, "method_label", table["variant"].fillna(table["method"]))
    return table


def cells(store: PathLike = "results", *, task: str | None = None, method: str | None = None,
          density: float | None = None, seed: int | None = None) -> list[CellRecord]:
    """The store's finished cells, those matching every filter given: ``task`` and ``method`` are names or
    globs (``*rewind*``; a method matches by its variant's name too), ``density`` the target density."""
    found = []
    for record in Store(store).results():
        names = {record.method, record.variant} - {None}
        target = record.target_density if record.target_density is not None else record.density
        if ((task is None or fnmatch.fnmatch(record.task.casefold(), task.casefold()))
                and (method is None or any(fnmatch.fnmatch(n.casefold(), method.casefold()) for n in names))
                and (density is None or math.isclose(target, density, rel_tol=1e-3))
                and (seed is None or record.seed == seed)):
            found.append(record)
    return sorted(found, key=lambda r: (r.task, r.variant or r.method, -(r.target_density or r.density), r.round,
                                        r.retraining_epochs, r.seed))


def cell_folder(store: PathLike, cell: CellRecord | str) -> Path:
    """The folder of a finished cell: a record, or what ``harness export`` takes (its run name, a unique
    beginning of it, or its folder)."""
    return Store(store).cell_dir(cell.run if isinstance(cell, CellRecord) else cell)


def load_model(store: PathLike, cell: CellRecord | str) -> Any:
    """The pruned ``nn.Module`` of a finished cell (a record, or its ``run`` name): in eval mode on the
    CPU, its pruned weights zero; a network whose filters were removed comes compacted."""

    return pruned_model(cell_folder(store, cell)).model


def export(store: PathLike, cell: CellRecord | str, out: PathLike, fmt: str = "safetensors") -> Path:
    """``harness export``: write a cell's pruned network (weights, mask, model.json) to the folder ``out``."""

    write(cell_folder(store, cell), Path(out), fmt)
    return Path(out)


@dataclass
class TuneResult:
    """A finished search: the best trial, its test evaluation over seeds, and where things went."""

    search: Any  # harness.tune.search.Search: the method, base, density, searched space, fixed values, study
    best: Any  # the best trial (optuna FrozenTrial)
    rows: list[CellRecord]  # the best configuration's cells on the evaluation seeds
    study_name: str
    storage_label: str
    variant_path: Path | None  # where ``save_as`` saved the variant
    tracker: Any  # the MLflow mirror, or None
    seconds: float

    @property
    def values(self) -> dict[str, float]:
        """The best configuration: the fixed values and the best trial's searched ones."""
        return {**self.search.fixed, **{k: self.best.params[k] for k in self.search.searched}}


def tune(method: str, task: str, *, trials: int = 20, density: float = 0.2, pruning: str = DEFAULT_PRUNING,
         space: Sequence[str] = (), storage: str | None = None, journal: PathLike | None = None,
         study_name: str | None = None, search_seed: int = 0, seeds: Sequence[int] = (0, 1, 2),
         save_as: str | None = None, pruner: str = "median", sampler_seed: int | None = None,
         timeout: float | None = None, epochs_scale: float = 1.0, batch_size: int | None = None,
         store: PathLike = "results", data_dir: PathLike | None = None, download: bool = False,
         device: str = "cpu", bf16: bool = False, threads: int = 1, workers: int = 0, tracking: bool = True,
         tracking_uri: str | None = None, progress: Progress | None = None) -> TuneResult:
    """Search ``method``'s declared parameters and retraining time on ``task`` at one density (Optuna),
    maximizing validation accuracy on seed ``search_seed``; then evaluate the best configuration on the
    test set over ``seeds``. Calling it again with the same arguments resumes the same study; several
    processes on one ``storage`` or ``journal`` share it. ``save_as`` saves the best configuration as a
    variant that ``run`` and studies accept; ``progress`` (``harness.core.progress``) hears the base
    network's training, each trial and the evaluation."""

    # start-up: Optuna, pandas and the search only when a search runs
    import optuna

    from harness.analysis.statistics import spread
    from harness.tune import search
    from harness.tune import space as tune_space
    from harness.tune import storage as tune_storage

    method, task, pruning = METHODS.canonical(method), TASKS.canonical(task), PRUNING.canonical(pruning)
    spec = get_method(method)
    if trials < 1:
        raise HarnessError(f"--trials must be a positive integer, got {trials}")
    if not 0.0 < density <= 1.0:
        raise HarnessError(f"--density must be in (0, 1], got {density:g}{as_fraction(density)}")
    check_epochs_scale(epochs_scale)
    check_batch_size(batch_size)
    if save_as is not None:
        variants.check_name(save_as)
    check_device(device)
    base = BaseHparams(task, seed=search_seed, epochs_scale=epochs_scale, batch_size=batch_size,
                       compute=Compute.of(device, bf16, threads))
    resolved = get_task(task).resolved(base)
    strategy = get_pruning(pruning)
    if strategy.target is Target.LEVEL:
        raise HarnessError(f"tune searches at a density; {pruning} is a structured configuration pruned at a level")
    strategy.check(task, during_training=method if spec.during is not None else None,
                   density=None if strategy.fixes_density({}) is not None else density)
    # the gate, on the cell every trial shares but its searched values (their ranges are parse_space's)
    check_cell(RetrainHparams(base, method, resolved.epochs / 2, (density,), pruning=pruning))
    searched, fixed = tune_space.parse_space(spec, resolved.epochs, list(space), strategy)
    config = tune_storage.Config(method, task, density, search_seed, epochs_scale, batch_size,
                           tuple(sorted(tune_space.describe_space(searched).items())), tuple(sorted(fixed.items())),
                           pruning, base.compute)
    name = study_name or config.default_name()
    results_store = Store(store)
    results_store.check_writable()
    tune_storage.make_pruner(pruner, 1)  # a bad name fails here, before any storage is made or training
    optuna_storage, storage_label = tune_storage.open_storage(storage, Path(journal) if journal else None,
                                                        paths.optuna_db(results_store.root))
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    logging.getLogger("optuna").setLevel(logging.ERROR)
    progress = progress or Progress()
    tracker = tracker_for(results_store.root, tracking, tracking_uri, progress.warn)
    options = DataOptions(data_dir=Path(data_dir) if data_dir else None, device=device, download=download,
                          workers=workers)
    trial_store = Store(paths.tune(results_store.root, name), bases=results_store.root)
    runner = Runner(trial_store, options, None, progress, bf16=bf16, threads=threads)
    started = time.time()
    runner.base(base)  # every paper rewind point, once, before any trial
    spe = runner.data(resolved).steps_per_epoch
    study = tune_storage.open_study(optuna_storage, name, config, tune_storage.make_pruner(pruner, spe), sampler_seed,
                              tune_space.defaults(spec, resolved.epochs, searched, strategy),
                              maximize=metric_of(resolved.metric).higher_is_better)
    s = search.Search(spec, base, density, searched, fixed, runner, study, trials, tracker, progress, strategy)
    space_line = (", ".join(f"{k} {v}" for k, v in tune_space.describe_space(searched).items())
                  + "".join(f", {k} = {v:g}" for k, v in fixed.items()))
    # a stop leaves the interrupted trial to be queued again by the next call (tune.Search)
    begun = sum(t.state != optuna.trial.TrialState.WAITING for t in study.trials)  # not the queued defaults
    s.run(search.SearchPlan(name, storage_label, begun, space_line, trials, study), timeout=timeout)
    best = tune_storage.best_trial(study)
    # A saved variant is a method of the results tables; otherwise the evaluation stays with the trials.
    eval_runner = Runner(results_store if save_as else trial_store, options, tracker if save_as else None,
                         progress, bf16=bf16, threads=threads)
    others = [seed for seed in seeds if seed != search_seed]
    progress.note(f"the best configuration meets the test set now, on seed{'s' if len(seeds) > 1 else ''} "
                  f"{', '.join(map(str, seeds))}" + (f" (each seed is a base network of its own: "
                  f"{', '.join(map(str, others))} train one if the store has none)" if others else ""))
    rows = s.evaluate(best, list(seeds), eval_runner, variant=save_as)
    tests = spread(r.test_acc for r in rows)
    if tracker is not None:
        tracker.mark_best(s.experiment, name, best.number, {
            "test_acc_median": tests.median, "test_acc_min": tests.min, "test_acc_max": tests.max,
            **{f"test_acc_seed{r.seed}": r.test_acc for r in rows}})
    result = TuneResult(s, best, rows, name, storage_label, None, tracker, 0.0)
    if save_as is not None:
        method_values, pruning_values, t = tune_space.split_values(result.values)
        # a variant is a method: the strategy's parameters found with it are kept in its origin
        variant = variants.Variant(save_as, spec.name, spec.overrides(method_values), t / resolved.epochs,
                                   origin={"study": name, "storage": storage_label, "trial": best.number,
                                           "task": task, "density": density, "val_acc": best.value,
                                           "pruning": strategy.name, "pruning_params": pruning_values,
                                           "test_median": tests.median, "seeds": [r.seed for r in rows]})
        result.variant_path = variants.save(results_store.root, variant)
    result.seconds = time.time() - started
    return result


def ui(store: PathLike = "results", tracking_uri: str | None = None, port: int = 5000,
       verbose: bool = False) -> Any:
    """The MLflow UI for the store's tracking store, started on 127.0.0.1:``port``
    (``harness.tracking.ui_server.MlflowUI``: ``ready()``, ``runs_page``, ``wait()``, ``stop()``); its
    own output goes to the store's ``mlflow-ui.log`` unless ``verbose``."""
    root = Store(store).root
    uri = tracking_uri or default_uri(root)
    check_servable(uri, Path(store))
    return MlflowUI(root, uri, port, verbose)


def leaderboard(store: PathLike | None = None, csv: Sequence[PathLike] = (), experiment: str | None = None,
                tracking_uri: str | None = None, out: PathLike | None = None, **analysis: Any) -> tuple[dict, Path]:
    """The leaderboard page of a store, results CSVs and an MLflow experiment (``--csv`` alone reads only
    the files given); ``analysis`` are ``leaderboard.site.build``'s (alpha, anchors, bootstrap,
    zone_densities, margin). Returns what was built and the folder it is in."""
    # start-up: pandas, scipy and matplotlib only when a leaderboard is built
    import pandas as pd

    from harness.analysis import results_table
    from leaderboard.site import build

    frames, sources = [], []
    results_store = Store(store or Path("results"))
    if experiment is not None:
        uri = tracking_uri or default_uri(results_store.root)
        frames.append(results_table.read_mlflow(uri, experiment))
        sources.append(f"MLflow {uri} experiment {experiment}")
    if store is not None or (experiment is None and not csv):
        frames.append(results_table.read_store(results_store.root))
        sources.append(f"store {results_store.root}")
    for path in csv:
        frames.append(results_table.read_csv(Path(path)))
        sources.append(f"CSV {path}")
    df = pd.concat(frames, ignore_index=True)
    default = results_store.root / "leaderboard" if store is not None or experiment else Path("leaderboard-site")
    target = Path(out) if out is not None else default
    return build(df, target, sources=sources, **analysis), target
