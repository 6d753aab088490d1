"""`harness`: run a retraining method on a task, list what is registered."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from harness.analysis.selection import best_validated
from harness.cli.display import err, out, show_table
from harness.core import distributed, signals
from harness.core.errors import DamagedFile, HarnessError, StoreFault
from harness.core.hparams import BaseHparams, Compute
from harness.core.protocol import DEFAULT_PRUNING
from harness.engine import undertrained
from harness.engine.checks import check_device, check_epochs_scale
from harness.engine.experiment import Reporter, Runner
from harness.storage import paths
from harness.storage.record import CellRecord
from harness.storage.store import Store
from harness.sweep import variants
from harness.sweep.driver import Listener
from harness.sweep.study import MAX_SEED
from harness.tracking.mirror import Tracker, default_uri, tracker_for
from tasks.spec import DataOptions

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="A benchmark harness for retraining methods after pruning (Renda et al. 2020).")


def show_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        def of(package: str) -> str:
            try:
                return version(package)
            except PackageNotFoundError:
                return "not installed"

        out.print(f"harness {of('pruning-harness')} (torch {of('torch')}, mlflow {of('mlflow')}, "
                  f"optuna {of('optuna')})", highlight=False)
        raise typer.Exit(0)


@app.callback()
def harness_options(
    version: Annotated[bool | None, typer.Option("--version", callback=show_version, is_eager=True,
                                                 help="print the version and exit")] = None,
) -> None:
    """A benchmark harness for retraining methods after pruning (Renda et al. 2020)."""


# Options shared by several commands
EpochsScale = Annotated[float, typer.Option(help="shrink every schedule boundary by this factor")]
StoreDir = Annotated[Path, typer.Option(envvar="HARNESS_STORE", help="results store folder")]
BatchSize = Annotated[int | None, typer.Option(help="batch size (the learning rate scales linearly)")]
DataDir = Annotated[Path | None, typer.Option(help="dataset folder (tasks that need one)")]
Download = Annotated[bool, typer.Option(help="download the dataset into --data-dir if it is missing")]
Device = Annotated[str, typer.Option(help="cpu, cuda, cuda:1, ...")]
Bf16 = Annotated[bool, typer.Option(help="bf16 autocast (GPU)")]
Threads = Annotated[int, typer.Option(
    min=1, help="CPU intra-op threads while training; part of a run's name when not 1 (CPU numbers are identical "
                "only for equal counts)")]
LoaderWorkers = Annotated[int, typer.Option(min=0, help="data loading processes (folder datasets)")]
TrackingUri = Annotated[
    str | None, typer.Option(help="MLflow tracking URI [default: $MLFLOW_TRACKING_URI or sqlite in the store]")
]
NoTracking = Annotated[bool, typer.Option("--no-tracking", help="do not log to MLflow")]


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Bad input: one line on stderr, exit code 2; a fault of the store: one line, exit code 1."""
    try:
        yield
    except HarnessError as e:
        err.print(f"error: {e}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except (StoreFault, DamagedFile) as e:  # a fault of the store, not of the input
        err.print(f"error: {e}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


class BarReporter(Reporter):
    @contextlib.contextmanager
    def track(self, description: str, total_steps: int) -> Iterator[Any]:
        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn()]
        with Progress(*columns, console=err, transient=False) as bar:
            handle = bar.add_task(description, total=total_steps, status="")

            def advance(done: int, record: dict[str, float]) -> None:
                status = (f"epoch {record['epoch']:g} val {record['val']:.2f}" if record else None)
                bar.update(handle, completed=done, **({"status": status} if status else {}))

            yield advance

    def note(self, message: str) -> None:
        err.print(message, markup=False, highlight=False)

    def warn(self, message: str) -> None:
        err.print(message, markup=False, highlight=False, soft_wrap=True)


def parse_assignments(values: list[str], flag: str) -> dict[str, float]:
    """``NAME=VALUE`` options as numbers (each strategy or method checks its own names and ranges)."""
    out = {}
    for text in values:
        name, sep, value = text.partition("=")
        try:
            out[name.strip()] = float(value) if sep and name.strip() else float("x")
        except ValueError:
            raise HarnessError(f"{flag} takes NAME=VALUE with a number, got {text!r}") from None
    return out


def warn(message: str) -> None:
    err.print(message, style="yellow", markup=False, highlight=False, soft_wrap=True)


def check_finite(arguments: dict[str, Any]) -> None:
    """Every number a command was given is finite (the parser takes "nan" and "inf" for floats)."""
    for name, value in arguments.items():
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, float) and not math.isfinite(v):
                raise HarnessError(f"--{name.replace('_', '-')} must be a finite number, got {v}")


def fmt(x: float, digits: int = 2) -> str:
    return "inf" if math.isinf(x) else f"{x:.{digits}f}"


@app.command()
def run(
    method: Annotated[str, typer.Argument(help="retraining method or recipe (see `harness list`)")],
    task: Annotated[str, typer.Argument(help="task (see `harness list`)")],
    density: Annotated[float | None, typer.Option(help="target density in (0, 1] [default: 0.2]")] = None,
    rounds: Annotated[int | None, typer.Option(help="prune to 0.8^rounds (iterative: one round each)")] = None,
    iterative: Annotated[
        bool | None, typer.Option("--iterative/--one-shot", help="prune 20% per round, or at once [one-shot]")
    ] = None,
    pruning: Annotated[str, typer.Option(help="pruning strategy (see `harness list`)")] = DEFAULT_PRUNING,
    pruning_param: Annotated[
        list[str] | None, typer.Option(help="a strategy's parameter as NAME=VALUE, e.g. n=2 m=4; repeat")] = None,
    structured: Annotated[
        str | None, typer.Option(help="shorthand for --pruning with a Li et al. L1 filter configuration")
    ] = None,
    level: Annotated[list[int] | None, typer.Option(help="structured level k in 1..5; repeat for several [1]")] = None,
    measure_speed: Annotated[
        bool, typer.Option(help="time the compacted network against the unpruned one (batch 1 and 128)")
    ] = False,
    retrain_epochs: Annotated[
        list[float] | None,
        typer.Option("--retrain-epochs", "-t", help="retraining epochs t; repeat to pick t on validation [T/2]"),
    ] = None,
    seed: Annotated[
        list[int] | None, typer.Option(min=0, max=MAX_SEED, help="seed; repeat for several [default: 0]")
    ] = None,
    epochs_scale: EpochsScale = 1.0,
    store: StoreDir = Path("results"),
    batch_size: BatchSize = None,
    data_dir: DataDir = None,
    download: Download = False,
    device: Device = "cpu",
    bf16: Bf16 = False,
    threads: Threads = 1,
    workers: LoaderWorkers = 4,
    tracking_uri: TrackingUri = None,
    no_tracking: NoTracking = False,
) -> None:
    """Train the base network once, prune, retrain with METHOD, evaluate, log to MLflow."""
    from harness.api import plan_run

    with user_errors():
        check_finite(locals())
        check_device(device)
        device = distributed.init_from_env(device)
        if structured is not None:
            if pruning != DEFAULT_PRUNING:
                raise HarnessError("--structured NAME is shorthand for --pruning NAME; give one of them")
            pruning = structured
        planned = plan_run(method, task, density=density, rounds=rounds, iterative=iterative, pruning=pruning,
                           pruning_params=parse_assignments(pruning_param or [], "--pruning-param"),
                           level=level or (), retrain_epochs=retrain_epochs or (), seeds=seed or [0],
                           epochs_scale=epochs_scale, batch_size=batch_size, store=store,
                           compute=Compute.of(device, bf16, threads))
        if measure_speed and not planned.measures_filters:
            raise HarnessError("--measure-speed needs filter pruning (--structured): only it yields a smaller "
                               "dense network")
        results_store = Store(store)
        results_store.check_writable()

    tracker = tracker_for(results_store.root, not no_tracking and distributed.is_main(), tracking_uri, warn)
    options = DataOptions(data_dir=data_dir, device=device, download=download, workers=workers)
    reporter = BarReporter() if distributed.is_main() else Reporter()
    runner = Runner(results_store, options, tracker, reporter, bf16=bf16, threads=threads)
    rows, started = [], time.time()
    with user_errors():
        hps = planned.cells
        for hp in hps:
            rows.append(runner.retrain(hp))
        speeds = [runner.measure_speed(hp) for hp in hps] if measure_speed and distributed.is_main() else []
    if distributed.active():
        for row in rows:
            err.print(f"rank {distributed.rank()}/{distributed.world_size()}: round {row.round} "
                      f"weights {row.weights_sha256} mask {row.mask_sha256}", highlight=False)
        if not distributed.is_main():
            return
    show_results(rows, speeds, planned.task.metric, results_store, tracker, time.time() - started)


def show_results(rows: list[CellRecord], speeds: list[dict[str, Any]], metric: str, results_store: Store,
                 tracker: Tracker | None, seconds: float) -> None:
    first = rows[0]
    pruning = "" if first.pruning == DEFAULT_PRUNING else f", {first.pruning}"
    units = f"{metric}, %" if metric == "accuracy" else metric
    table = Table(title=f"{first.variant or first.method} on {first.task}{pruning} ({units})")
    for col in ("seed", "round", "density", "compression", "FLOPs", "t", "val", "test", "unpruned test", ""):
        table.add_column(col, justify="right")
    for r in rows:
        round_ = f"k={r.level}" if r.level is not None else str(r.round)
        table.add_row(str(r.seed), round_, f"{r.density:.4f}", fmt(r.compression_ratio) + "x",
                      f"{r.flops / r.dense_flops:.1%}", f"{r.retraining_epochs:g}", fmt(r.val_acc),
                      fmt(r.test_acc), fmt(r.unpruned_test_acc), "cached" if r.cached else f"{r.seconds:.0f}s")
    show_table(table)
    if speeds:
        speed = Table(title=f"measured latency on {speeds[0]['device']}: compacted vs unpruned")
        for col in ("seed", "k", "parameters", "FLOPs", "batch 1 (ms)", "speed-up", "batch 128 (ms)", "speed-up"):
            speed.add_column(col, justify="right")
        for r, s in zip(rows, speeds, strict=True):
            speed.add_row(str(r.seed), str(r.level), f"{s['compact_parameters']:,}",
                          f"{s['compact_flops'] / s['dense_flops']:.1%}", f"{1e3 * s['compact_s_b1']:.1f}",
                          f"{s['speedup_b1']:.2f}x", f"{1e3 * s['compact_s_b128']:.0f}", f"{s['speedup_b128']:.2f}x")
        show_table(speed)
    last = max(r.round for r in rows)
    finals = [r for r in rows if r.round == last]
    if len({r.retraining_epochs for r in finals}) > 1:
        best = best_validated(finals)
        out.print(f"selected on validation: t = {best['retraining_epochs']:g} (median val {best['val_median']:.2f}); "
                  f"test median {best['test_median']:.2f}, min {best['test_min']:.2f}, "
                  f"max {best['test_max']:.2f} over {best['seeds']} seed(s)")
    elif len(finals) > 1:
        for key, label in (("test_acc", "pruned test"), ("unpruned_test_acc", "unpruned test")):
            values = [getattr(r, key) for r in finals]
            out.print(f"{label}: median {statistics.median(values):.2f}, "
                      f"min {min(values):.2f}, max {max(values):.2f} over {len(values)} seeds")
    out.print("FLOPs: theoretical inference FLOPs counting only non-zero weights, as % of the dense network "
              "(a multiply-add is 2 FLOPs)")
    for r in rows:
        out.print(f"seed {r.seed} round {r.round} t={r.retraining_epochs:g}: {results_store.cell_dir(r.run)}",
                  highlight=False, markup=False)
    for line in undertrained.of_records(rows):
        warn(line)
    out.print(f"results: {results_store.root}   wall time: {seconds:.0f}s", highlight=False, markup=False)
    if tracker is not None:
        state = "FAILED (results kept locally)" if tracker.failure else "ok"
        out.print(f"mlflow: {tracker.uri} [{state}]", highlight=False, markup=False)


class SweepDisplay(Listener):
    """Progress over a study's cells (done, running, cached, failed) and its training epochs (eta)."""

    def __init__(self) -> None:
        columns = [TextColumn("{task.description:<7}"), BarColumn(), TextColumn("{task.fields[count]}"),
                   TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TextColumn("eta"),
                   TimeRemainingColumn()]
        self.bar = Progress(*columns, console=err, transient=False)
        self.counts = {"done": 0, "cached": 0, "failed": 0, "running": 0}
        self.epochs_done = 0.0

    def planned(self, jobs: list, cells: set, pending: dict[str, float]) -> None:
        self.cells, self.pending = cells, pending
        self.total_epochs = sum(pending.values())
        self.cell_task = self.bar.add_task("cells", total=len(cells), count="", status="")
        self.epoch_task = self.bar.add_task("epochs", total=max(self.total_epochs, 1e-9), count="", status="")
        self.refresh()

    def started(self, job: Any) -> None:
        self.counts["running"] += sum(hp in self.cells for hp in job.cells)
        self.refresh(current=job.label)

    def finished(self, job: Any, outcome: Any) -> None:
        n = sum(hp in self.cells for hp in job.cells)
        if outcome.attempts:
            self.counts["running"] -= n
        self.counts["failed" if outcome.error else "cached" if outcome.cached else "done"] += n
        self.epochs_done += self.pending.get(job.id, 0.0)
        if outcome.error:
            err.print(f"failed: {job.label}: {outcome.error}", markup=False, highlight=False)
        self.refresh()

    def refresh(self, current: str = "", partial: float = 0.0) -> None:
        c = self.counts
        finished = c["done"] + c["cached"] + c["failed"]
        self.bar.update(self.cell_task, completed=finished, count=f"{finished}/{len(self.cells)}",
                        status=f"done {c['done']}  cached {c['cached']}  running {c['running']}  failed {c['failed']}")
        done = self.epochs_done + partial
        self.bar.update(self.epoch_task, completed=done, count=f"{done:.0f}/{self.total_epochs:.0f}",
                        **({"status": current} if current else {}))

    def reporter_for(self, job: Any) -> Reporter:
        """Step-level progress of the job running in this process."""
        display = self
        share = self.pending.get(job.id, 0.0)

        class Steps(Reporter):
            @contextlib.contextmanager
            def track(self, description: str, total_steps: int) -> Iterator[Any]:
                def advance(done: int, record: dict[str, float]) -> None:
                    display.refresh(partial=share * done / max(total_steps, 1))

                yield advance

        return Steps()


@app.command()
def sweep(
    study: Annotated[str, typer.Argument(help="study YAML file, or a preset (see `harness list`)")],
    executor: Annotated[str, typer.Option(help="local or ray")] = "local",
    jobs: Annotated[
        int | None, typer.Option(help="local: worker processes, 1 runs in this process [CPU: cores / threads]")
    ] = None,
    epochs_scale: Annotated[float | None, typer.Option(help="replace the study's epochs_scale")] = None,
    seed: Annotated[list[int] | None, typer.Option(
        min=0, max=MAX_SEED, help="replace the study's seeds; repeat for several")] = None,
    methods: Annotated[list[str] | None, typer.Option(
        help="replace the study's methods: NAME or NAME,NAME; repeatable")] = None,
    threads_per_job: Annotated[
        int, typer.Option(help="intra-op threads of each job (CPU numbers are identical for equal counts)")
    ] = 1,
    address: Annotated[str | None, typer.Option(help="ray: cluster address ('auto', ray://host:10001)")] = None,
    retries: Annotated[int, typer.Option(help="retry a failed job this many times")] = 0,
    cpus_per_job: Annotated[float, typer.Option(min=0.01, help="ray: CPUs each job asks for")] = 1.0,
    gpus_per_job: Annotated[
        float | None, typer.Option(min=0.0, help="ray: GPUs each job asks for [1 with --device cuda, else 0]")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="print the plan (jobs, epochs, what is cached) and stop")] = False,
    store: StoreDir = Path("results"),
    data_dir: DataDir = None,
    download: Download = False,
    device: Device = "cpu",
    bf16: Bf16 = False,
    workers: LoaderWorkers = 4,
    tracking_uri: TrackingUri = None,
    no_tracking: NoTracking = False,
) -> None:
    """Run a study: every (method, retraining time, density, seed, schedule, pruning) cell, each
    base network trained once per seed, finished cells never redone; rerun to resume."""
    from harness.api import narrow
    from harness.sweep.driver import run_study
    from harness.sweep.executors import WorkerContext, make_executor
    from harness.sweep.study import load_study

    with user_errors():
        check_finite(locals())
        names = [name.strip() for entry in methods or [] for name in entry.split(",") if name.strip()]
        spec = load_study(study, variants.load_all(Store(store).root),
                          narrow(epochs_scale=epochs_scale, seeds=seed, methods=names))
        spec = dataclasses.replace(spec, compute=Compute.of(device, bf16, threads_per_job))
        if retries < 0:
            raise HarnessError(f"--retries must be >= 0, got {retries}")
        check_device(device)
        results_store = Store(store)
        if (count := spec.count()) > 10_000:  # planning takes about a second per 3,000 cells
            err.print(f"planning {count:,} cells ...", highlight=False)
        if dry_run:
            show_plan(spec, results_store)
            return
        results_store.check_writable()
    tracker = tracker_for(results_store.root, not no_tracking, tracking_uri, warn)
    context = WorkerContext(str(results_store.root), DataOptions(data_dir=data_dir, device=device,
                                                                 download=download, workers=workers),
                            bf16, threads_per_job)
    gpus = gpus_per_job if gpus_per_job is not None else (1.0 if device.startswith("cuda") else 0.0)
    display = SweepDisplay()
    with user_errors(), make_executor(
            executor, context, jobs, address, retries, cpus_per_job, gpus, display.reporter_for) as ex, display.bar:
        report = run_study(spec, results_store, ex, display, retries=retries, tracker=tracker)
    show_study(spec, report, tracker)
    if report.failures:
        raise typer.Exit(1)


def show_plan(spec: Any, results_store: Store) -> None:
    from harness.sweep.plan import plan, summary

    cells = spec.cells()
    jobs = plan(cells)
    groups = summary(jobs, results_store)
    table = Table(title=f"plan of study {spec.name} ({spec.hash}) on {spec.task}, T = {spec.T:g}")
    for col in ("jobs of", "jobs", "cells", "training epochs", "cached jobs", "epochs to train"):
        table.add_column(col, justify="left" if col == "jobs of" else "right", no_wrap=col == "jobs of")
    for g in groups:
        table.add_row(g["group"], str(g["jobs"]), str(g["cells"]), f"{g['epochs']:g}", str(g["cached_jobs"]),
                      f"{g['epochs_to_train']:g}")
    show_table(table)
    left = sum(g["epochs_to_train"] for g in groups)
    cached = sum(g["cached_jobs"] for g in groups)
    out.print(f"{len(cells)} cells in {len(jobs)} jobs, {sum(j.epochs for j in jobs):g} training epochs at least; "
              f"{cached} jobs cached in {results_store.root}, {len(jobs) - cached} to run ({left:g} epochs)",
              highlight=False, markup=False)


def show_study(spec: Any, report: Any, tracker: Tracker | None) -> None:
    from harness.analysis.study_tables import best_by_method

    c = report.counts
    say = lambda text: out.print(text, highlight=False, soft_wrap=True)  # noqa: E731
    say(f"study {spec.name}: {report.cells} cells ({c['done']} trained now, {c['cached']} cached, "
        f"{c['failed']} failed) in {report.jobs} jobs, wall time {report.seconds:.0f}s")
    if report.pending_epochs == 0:
        say("everything was cached: no training ran")
    else:
        say(f"training epochs: executed {report.executed_epochs:.2f}, minimal {report.pending_epochs:.2f} "
            f"(ratio {report.ratio:.2f}); the whole grid needs {report.minimal_epochs:g}")
    for title, table in best_by_method(report.rows):
        t = Table(title=title)
        for col in table[0]:
            t.add_column(str(col), justify="right")
        for row in table[1:]:
            t.add_row(*map(str, row))
        show_table(t)
    for line in undertrained.of_records(report.rows):
        warn(line)
    out.print(f"results: {report.folder / 'results.csv'}", highlight=False, markup=False, soft_wrap=True)
    for path in report.figures:
        out.print(f"accuracy against compression: {path}", highlight=False, markup=False)
    if tracker is not None:
        state = "FAILED (results kept locally)" if tracker.failure else "ok"
        out.print(f"mlflow: {tracker.uri} [{state}]", highlight=False, markup=False, soft_wrap=True)
    for label, error in report.failures:
        err.print(f"failed: {label}: {error}", markup=False, highlight=False, soft_wrap=True)


class TuneDisplay:
    """Progress of a search: the study's trials (complete, pruned, failed, best) and the running one."""

    def __init__(self) -> None:
        columns = [TextColumn("{task.description:<9}"), BarColumn(), TextColumn("{task.fields[count]}"),
                   TextColumn("{task.fields[status]}"), TimeElapsedColumn()]
        self.bar = Progress(*columns, console=err, transient=False)
        self.total = 0
        self.trials_task: Any = None
        self.trial_task: Any = None

    def start(self, total: int) -> None:
        self.total = total
        self.trials_task = self.bar.add_task("trials", total=total, count="", status="")
        self.trial_task = self.bar.add_task("trial", total=1, count="", status="", visible=False)

    def trial_started(self, number: int, values: Any, total_steps: int) -> None:
        shown = "  ".join(f"{k}={v:.4g}" for k, v in values.items())
        self.bar.reset(self.trial_task, total=max(total_steps, 1), visible=True,
                       description=f"trial {number}", count="", status=shown)

    def trial_step(self, done: int, record: Any) -> None:
        status = {"count": f"val {record['val']:.2f}"} if record else {}
        self.bar.update(self.trial_task, completed=done, **status)

    def trial_finished(self, trial: Any, study: Any) -> None:
        from harness.tune.search import trial_counts

        c = trial_counts(study)
        done = c["complete"] + c["pruned"]
        try:
            best = f"best val {study.best_value:.2f} (trial {study.best_trial.number})"
        except ValueError:
            best = ""
        self.bar.update(self.trials_task, completed=min(done, self.total), count=f"{done}/{self.total}",
                        status=f"complete {c['complete']}  pruned {c['pruned']}  failed {c['failed']}  "
                               f"running {c['running']}  {best}")
        if trial is not None:
            self.bar.update(self.trial_task, visible=False)
            if "error" in trial.user_attrs:
                err.print(f"trial {trial.number} failed: {trial.user_attrs['error']}", markup=False,
                          highlight=False, soft_wrap=True)

    def note(self, message: str) -> None:
        err.print(message, markup=False, highlight=False, soft_wrap=True)

    def search_started(self, name: str, storage_label: str, trials_so_far: int, space: str, total: int) -> None:
        out.print(f"study {name} in {storage_label}: {trials_so_far} trials so far, searching {space}",
                  highlight=False, soft_wrap=True)
        self.start(total)
        self.bar.start()

    def search_ended(self) -> None:
        self.bar.stop()


def show_space(method_name: str, task: str | None, pruning: str, epochs_scale: float) -> None:
    from harness.tune.search import declared_space, describe_space, distribution
    from methods.pruning import get_pruning
    from methods.spec import get_method
    from tasks.spec import get_task

    method = get_method(method_name)
    T = get_task(task).resolved(BaseHparams(task, epochs_scale=epochs_scale)).epochs if task else 1.0
    scaled = f", --epochs-scale {epochs_scale:g}" if epochs_scale != 1.0 else ""
    table = Table(title=f"search space of {method_name}" + (f" on {task} (T = {T:g}{scaled})" if task else ""))
    for col in ("parameter", "default", "searched over", "description"):
        table.add_column(col)
    for name, param in declared_space(method, T, get_pruning(pruning)).items():
        if name == "t" and not task:
            table.add_row(name, "the time closest to T/2", "one of the paper's 10 times k T/10, k = 1..10",
                          "retraining epochs t (name a task to see them)")
            continue
        values = describe_space({name: distribution(param)})[name]
        table.add_row(name, f"{param.default:g}", values, param.help)
    show_table(table)
    out.print("narrow it with --space NAME=LOW:HIGH (a range inside the declared one), NAME=A,B,C or NAME=VALUE",
              highlight=False)


@app.command()
def tune(
    method: Annotated[str | None, typer.Argument(help="retraining method (see `harness list`)")] = None,
    task: Annotated[str | None, typer.Argument(help="task (see `harness list`)")] = None,
    trials: Annotated[int, typer.Option(help="the study's total number of trials (finished or pruned)")] = 20,
    density: Annotated[float, typer.Option(help="the density the method is tuned at, in (0, 1]")] = 0.2,
    pruning: Annotated[
        str, typer.Option(help="pruning strategy; its parameters are searched as pruning.NAME")] = DEFAULT_PRUNING,
    space: Annotated[
        list[str] | None, typer.Option(help="narrow the search: NAME=LOW:HIGH, NAME=A,B,C or NAME=VALUE; repeatable")
    ] = None,
    list_space: Annotated[
        str | None, typer.Option("--list-space", metavar="METHOD", help="print METHOD's search space and stop")
    ] = None,
    storage: Annotated[
        str | None, typer.Option(help="Optuna RDB URL (postgresql://..., sqlite:///...) [sqlite in the store]")
    ] = None,
    journal: Annotated[
        Path | None, typer.Option(help="an Optuna journal file instead of --storage (a shared file system)")
    ] = None,
    study_name: Annotated[str | None, typer.Option(help="[METHOD-TASK-dDENSITY-HASH of the search]")] = None,
    search_seed: Annotated[int, typer.Option(min=0, max=MAX_SEED, help="the seed trials train on")] = 0,
    seed: Annotated[
        list[int] | None, typer.Option(min=0, max=MAX_SEED, help="seeds of the final test evaluation; repeat [0, 1, 2]")
    ] = None,
    save_as: Annotated[
        str | None, typer.Option(help="save the best configuration as a variant usable by `run` and studies")
    ] = None,
    pruner: Annotated[str, typer.Option(help="median, hyperband or none")] = "median",
    sampler_seed: Annotated[
        int | None, typer.Option(min=0, max=MAX_SEED, help="seed of the TPE sampler (one process only)")] = None,
    timeout: Annotated[
        float | None, typer.Option(min=0.0, help="stop starting trials after this many seconds")] = None,
    epochs_scale: EpochsScale = 1.0,
    batch_size: BatchSize = None,
    store: StoreDir = Path("results"),
    data_dir: DataDir = None,
    download: Download = False,
    device: Device = "cpu",
    bf16: Bf16 = False,
    threads: Threads = 1,
    workers: LoaderWorkers = 4,
    tracking_uri: TrackingUri = None,
    no_tracking: NoTracking = False,
) -> None:
    """Search METHOD's declared parameters and retraining time on TASK at one density (Optuna),
    maximizing validation accuracy; then evaluate the best configuration on the test set over seeds.
    Rerun the same command to resume; several processes on one --storage or --journal share a study."""
    from harness import api
    from methods.spec import get_method
    from tasks.spec import get_task

    with user_errors():
        check_finite(locals())
        if list_space is not None:
            get_method(list_space)
            if task is None and method is not None and method != list_space:
                task = method  # `harness tune TASK --list-space METHOD`
            if task is not None:
                get_task(task)
            check_epochs_scale(epochs_scale)
            show_space(list_space, task, pruning, epochs_scale)
            return
        if method is None or task is None:
            raise HarnessError("give METHOD and TASK (or --list-space METHOD)")
        result = api.tune(method, task, trials=trials, density=density, pruning=pruning, space=space or [],
                          storage=storage, journal=journal, study_name=study_name, search_seed=search_seed,
                          seeds=seed or [0, 1, 2], save_as=save_as, pruner=pruner, sampler_seed=sampler_seed,
                          timeout=timeout, epochs_scale=epochs_scale, batch_size=batch_size, store=store,
                          data_dir=data_dir, download=download, device=device, bf16=bf16, threads=threads,
                          workers=workers, tracking=not no_tracking, tracking_uri=tracking_uri,
                          listener=TuneDisplay(), reporter=BarReporter(), warn=warn)
    show_tune(result)


def show_tune(result: Any) -> None:
    from harness.tune.search import default_trial, trial_counts

    s, best, rows = result.search, result.best, result.rows
    c = trial_counts(s.study)
    say = lambda text: out.print(text, highlight=False, soft_wrap=True, markup=False)  # noqa: E731
    say(f"study {result.study_name} ({result.storage_label}): {c['complete']} complete, {c['pruned']} pruned, "
        f"{c['failed']} failed")
    table = Table(title=f"{s.method.name} on {s.base.task} at density {s.density:g}: best and default")
    for col in ("trial", *s.searched, f"val (seed {s.base.seed})"):
        table.add_column(col, justify="right")
    defaults = default_trial(s.study)
    for label, trial in (("best", best), ("defaults", defaults)):
        if trial is not None:
            table.add_row(f"{label} ({trial.number})", *(f"{trial.params[k]:.4g}" for k in s.searched),
                          f"{trial.value:.2f}")
    show_table(table)
    tests = [r.test_acc for r in rows]
    say("best configuration: " + ", ".join(f"{k} = {v:.4g}" for k, v in result.values.items()))
    say(f"test accuracy over seeds {', '.join(str(r.seed) for r in rows)}: median "
        f"{statistics.median(tests):.2f}, min {min(tests):.2f}, max {max(tests):.2f} "
        f"(unpruned {statistics.median(r.unpruned_test_acc for r in rows):.2f})")
    if result.variant_path is not None:
        name = result.variant_path.stem
        say(f"saved variant {name} ({result.variant_path}): `harness run {name} {s.base.task}`, or list it in a "
            "study's methods")
    say(f"wall time: {result.seconds:.0f}s")
    if result.tracker is not None:
        state = "FAILED (results kept locally)" if result.tracker.failure else "ok"
        say(f"mlflow: {result.tracker.uri} experiment '{s.experiment}' [{state}]")


@app.command()
def leaderboard(
    store: Annotated[Path | None, typer.Option(
        envvar="HARNESS_STORE", help="results store folder [default: results, unless --csv or --experiment]")] = None,
    csv: Annotated[
        list[Path] | None, typer.Option(help="external results CSV (see README for its columns); repeatable")
    ] = None,
    experiment: Annotated[
        str | None, typer.Option(help="read an MLflow experiment (a task name) instead of the store")] = None,
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow tracking URI for --experiment [default: sqlite in the store]")
    ] = None,
    out_dir: Annotated[Path | None, typer.Option(
        "--out", help="output folder [default: STORE/leaderboard, or ./leaderboard-site with only --csv]")] = None,
    alpha: Annotated[float, typer.Option(help="family-wise error of calling an unsafe retraining time safe")] = 0.05,
    anchor: Annotated[list[float] | None, typer.Option(
        help="pre-declared retraining time (fraction of T) the safe-zone tests start from; repeat for several, "
             "alpha is split equally [default: 0.25, 0.5, 0.75]")] = None,
    zone_densities: Annotated[str, typer.Option(
        help="densities the zone is read at: paper (each network's no-drop and 1-point-drop densities), all, "
             "or a list like 0.2,0.1")] = "paper",
    margin: Annotated[float, typer.Option(
        help="points a rewinding method may lose at one density and count as not worse (generalizing reading)")
    ] = 1.0,
    bootstrap: Annotated[int, typer.Option(
        help="seed resamples for the zone's stability figure (0: none)")] = 200,
) -> None:
    """Write the leaderboard: a static site (index.html, opens from file://) and summary.md, with
    rankings per density, the paper's plots (PNG and SVG), the safe zone read three ways."""
    import pandas as pd

    from harness.analysis import statistics as st
    from harness.analysis.safe_zone import ANCHORS, parse_density_rule
    from leaderboard.site import build

    with user_errors():
        check_finite(locals())
        anchors = tuple(anchor) if anchor else ANCHORS
        if not 0 < alpha < 1 or not all(0 < a <= 1 for a in anchors) or bootstrap < 0 or margin < 0:
            raise HarnessError(f"--alpha must lie in (0, 1), --anchor in (0, 1], --margin be >= 0 and --bootstrap "
                               f"be >= 0; got {alpha:g}, {', '.join(f'{a:g}' for a in anchors)}, {margin:g}, "
                               f"{bootstrap}")
        rule = parse_density_rule(zone_densities)
        frames, sources = [], []
        results_store = Store(store or Path("results"))
        if experiment is not None:
            uri = tracking_uri or default_uri(results_store.root)
            frames.append(st.read_mlflow(uri, experiment))
            sources.append(f"MLflow {uri} experiment {experiment}")
        if store is not None or (experiment is None and not csv):  # --csv alone reads only the files given
            frames.append(st.read_store(results_store.root))
            sources.append(f"store {results_store.root}")
        for path in csv or []:
            frames.append(st.read_csv(path))
            sources.append(f"CSV {path}")
        df = pd.concat(frames, ignore_index=True)
        default = results_store.root / "leaderboard" if store is not None or experiment else Path("leaderboard-site")
        target = out_dir or default
        built = build(df, target, sources=sources, alpha=alpha, anchors=anchors, bootstrap=bootstrap,
                      zone_densities=rule, margin=margin)
    out.print(f"leaderboard of {built['rows']} results: {target / 'index.html'} (and summary.md, assets/)",
              highlight=False, soft_wrap=True)
    for line in built["warnings"]:
        warn(line)
    zones = built["zones"]
    places = [(f"across networks, {name}", z) for name, z in zones["across"].items()]
    for name, zone in [*places, *zones["networks"].items()]:
        spans = "; ".join(f"{kind} {zone[kind]['span']}" for kind in ("conditional", "generalizing"))
        out.print(f"safe zone, {name}: descriptive {zone['descriptive']['span']} (the paper: 25%-90%); {spans}",
                  highlight=False, soft_wrap=True)


@app.command()
def export(
    cell: Annotated[str, typer.Argument(help="a finished cell: its folder name (results.csv's run), a unique "
                                             "beginning of it, or its folder")],
    format: Annotated[str, typer.Option("--format", help="torch or safetensors")] = "safetensors",
    out_dir: Annotated[Path | None, typer.Option("--out", help="folder to write [default: exported/CELL]")] = None,
    store: StoreDir = Path("results"),
) -> None:
    """Write a cell's pruned network (weights, mask, model.json naming its task and method); a network
    whose filters were removed is written compacted. Loads back with harness.engine.export.load_exported."""
    from harness.engine.export import export

    with user_errors():
        cell_folder = Store(store).cell_dir(cell)
        folder = out_dir or Path("exported") / cell_folder.name
        written = export(cell_folder, folder, format)
    record = written.record
    compacted = " (compacted)" if written.compacted else ""
    out.print(f"{record.variant or record.method} on {record.task}, density {record.density:.4g}, seed {record.seed}"
              f"{compacted}: {folder}", highlight=False, markup=False)


@app.command()
def ui(
    store: StoreDir = Path("results"),
    tracking_uri: TrackingUri = None,
    port: Annotated[int, typer.Option(min=1, max=65535, help="port on 127.0.0.1")] = 5000,
) -> None:
    """Start the MLflow UI on loopback for the results' tracking store and print its address."""
    import os
    import signal
    import subprocess
    import urllib.request

    results_store = Store(store)
    uri = tracking_uri or default_uri(results_store.root)
    with user_errors():
        if uri.startswith(("http://", "https://")):
            raise HarnessError(f"{uri} is a tracking server already: open it in a browser")
        if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).exists():
            raise HarnessError(f"no MLflow store at {uri}: run `harness run` or `harness sweep` with --store {store}")
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", "127.0.0.1",
               "--port", str(port)]
    if uri.startswith("sqlite:///"):
        command += ["--default-artifact-root", paths.mlartifacts(results_store.root).as_uri()]
    # its own process group: uvicorn workers and huey consumers go with it when it is stopped
    # the server dies with harness ui, even when harness ui is killed by SIGKILL
    proc = subprocess.Popen(command, stdout=sys.stderr, start_new_session=True,
                            preexec_fn=lambda: signals.die_with_parent(signal.SIGTERM))

    def stop() -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

    address = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    try:
        while time.time() < deadline and proc.poll() is None:
            try:
                urllib.request.urlopen(address + "/health", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        if proc.poll() is not None:
            err.print(f"error: the MLflow UI exited with code {proc.returncode} before serving on port {port} "
                      "(its output is above; a port in use? try another --port)", highlight=False, soft_wrap=True)
            raise typer.Exit(1)
        # MLflow 3.17's UI picks its pages by a workflow switch (GenAI by default), not by the experiment's
        # kind: the address sets it to model training, which opens experiments on their runs
        out.print(f"MLflow UI for {uri}: {address}/#/experiments?workflowType=machine_learning  (Ctrl-C stops it)",
                  highlight=False, soft_wrap=True)
        sys.stdout.flush()
        proc.wait()
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM or SIGHUP (harness.core.signals): the server goes first
        stop()
        raise
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)


@app.command("list")
def list_registered(
    kinds: Annotated[list[str] | None, typer.Argument(
        metavar="[tasks|methods|pruning|presets|variants]...", help="what to list [all of them]")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="print JSON instead of tables")] = False,
    store: StoreDir = Path("results"),
) -> None:
    """Tasks, retraining methods and recipes, pruning strategies, study presets, and a store's method
    variants, with their parameters."""
    import json

    from harness.catalog import KINDS, catalog

    with user_errors():
        entries = catalog(tuple(kinds or KINDS), store)
    if json_output:
        sys.stdout.write(json.dumps(entries, indent=2) + "\n")
        return
    for kind, items in entries.items():
        for table in TABLES_OF[kind](items):
            show_table(table)


def task_tables(items: list[dict[str, Any]]) -> list[Table]:
    table = Table(title="tasks")
    for col in ("name", "parameters", "T", "batch", "optimizer", "schedule S", "documented unpruned", "description"):
        table.add_column(col, no_wrap=col == "name")
    for t in items:
        table.add_row(t["name"], f"{t['parameters']:,}" if t["parameters"] is not None else t["unavailable"],
                      f"{t['T']:g}", str(t["batch_size"]), t["optimizer"], t["schedule"],
                      "" if t["documented_unpruned"] is None else f"{t['documented_unpruned']:g} ({t['metric']})",
                      t["description"])
    return [table]


def parameter_table(title: str, items: list[dict[str, Any]]) -> list[Table]:
    table = Table(title=title)
    for col in ("of", "parameter", "default", "range", "description"):
        table.add_column(col, no_wrap=col in ("of", "parameter"))
    for item in items:
        for p in item.get("parameters", []):
            table.add_row(item["name"], p["name"], f"{p['default']:g}", p["range"], p["description"])
    return [table] if table.row_count else []


def method_tables(items: list[dict[str, Any]]) -> list[Table]:
    methods = Table(title="retraining methods")
    for col in ("name", "runs", "t", "learning rate over the t epochs", "paper", "description"):
        methods.add_column(col, no_wrap=col == "name")
    recipes = Table(title="recipes")
    for col in ("name", "method", "pruning", "description"):
        recipes.add_column(col, no_wrap=col in ("name", "method"))
    for m in items:
        if m["kind"] == "method":
            methods.add_row(m["name"], m["runs"], m["t"], m["learning_rate"], m["paper"], m["description"])
        else:
            recipes.add_row(m["name"], m["method"], m["pruning"], m["description"])
    return [methods, recipes, *parameter_table("parameters of methods (study key method_params)", items)]


def pruning_tables(items: list[dict[str, Any]]) -> list[Table]:
    table = Table(title="pruning strategies (--pruning NAME; L1 filter configurations also --structured)")
    for col in ("name", "removes", "target", "iterative", "gradual", "task", "description"):
        table.add_column(col, no_wrap=col == "name")
    for g in items:
        table.add_row(g["name"], g["removes"], g["target"], "yes" if g["iterative"] else "no",
                      "yes" if g["gradual"] else "no", g["task"] or "any", g["description"])
    return [table, *parameter_table("parameters of pruning strategies (--pruning-param, study key pruning_params)",
                                    items)]


def preset_tables(items: list[dict[str, Any]]) -> list[Table]:
    table = Table(title="study presets (harness sweep NAME)")
    for col in ("name", "task", "cells", "first line of its description"):
        table.add_column(col, no_wrap=col in ("name", "task"))
    for p in items:
        table.add_row(p["name"], p["task"], f"{p['cells']:,}", p["description"])
    return [table]


def variant_tables(items: list[dict[str, Any]]) -> list[Table]:
    if not items:
        return []
    table = Table(title="method variants of the store")
    for col in ("name", "method", "parameters", "t / T", "file"):
        table.add_column(col, no_wrap=col == "name")
    for v in items:
        params = ", ".join(f"{k}={x:g}" for k, x in v["params"].items()) or "the method's defaults"
        fraction = "" if v["retrain_fraction"] is None else f"{v['retrain_fraction']:.0%}"
        table.add_row(v["name"], v["method"], params, fraction, v["file"])
    return [table]


TABLES_OF = {"tasks": task_tables, "methods": method_tables, "pruning": pruning_tables, "presets": preset_tables,
             "variants": variant_tables}


def main(argv: list[str] | None = None) -> int:
    """The console script: every error, the parser's own included, is one line on stderr."""
    from typer._click.exceptions import ClickException

    signals.install()
    try:
        code = typer.main.get_command(app).main(args=argv, prog_name="harness", standalone_mode=False)
    except ClickException as e:
        context = getattr(e, "ctx", None)
        where = f"{context.command_path}: " if context is not None else ""
        hint = f" (see {context.command_path} --help)" if context is not None else ""
        err.print(f"error: {where}{' '.join(e.format_message().split())}{hint}", markup=False, highlight=False,
                  soft_wrap=True)
        return e.exit_code
    except typer.Abort:
        return signals.exit_code()
    except signals.Stopped as stop:  # a stop outside the command's own call
        code = stop.exit_code
    if signals.received is not None:  # typer turns a KeyboardInterrupt (and so a Stopped) into exit 130
        err.print(f"stopped by {signal_name(signals.received)}: what is finished is stored; rerun the same command "
                  "to resume", highlight=False, soft_wrap=True)
        return signals.exit_code()
    return code if isinstance(code, int) else 0


def signal_name(signum: int) -> str:
    import signal

    return signal.Signals(signum).name


if __name__ == "__main__":
    sys.exit(main())
