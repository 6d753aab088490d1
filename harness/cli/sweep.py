"""`harness sweep`: a study run, its progress and its end-of-study table."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import progress as bars
from rich.table import Table

from harness import api
from harness.cli.common import (
    Bf16,
    DataDir,
    Device,
    Download,
    LoaderWorkers,
    NoTracking,
    StoreDir,
    TrackingUri,
    bar_columns,
    check_finite,
    user_errors,
    warn,
)
from harness.cli.display import err, out, show_table
from harness.core.progress import Progress
from harness.core.seeding import MAX_SEED
from harness.engine import undertrained
from harness.storage.store import Store
from harness.sweep.plan import plan, summary
from harness.tracking.mirror import Tracker


class SweepDisplay(Progress):
    """Progress over a study's cells (done, running, cached, failed) and its training epochs (eta);
    a job running in this process advances the epochs bar step by step."""

    def __init__(self) -> None:
        self.bar: Any = None

        self.counts = {"done": 0, "cached": 0, "failed": 0, "running": 0}
        self.epochs_done = 0.0
        self.current: Any = None

    def begin(self, plan: Any) -> None:
        self.cells, self.pending = plan.cells, plan.pending
        self.total_epochs = sum(self.pending.values())
        widest = max(len(f"{len(self.cells)}/{len(self.cells)} cells"), len(f"{self.total_epochs:.0f}/"
                                                                          f"{self.total_epochs:.0f} epochs"))
        self.bar = bars.Progress(*bar_columns("{task.fields[count]}", widest), console=err, transient=False)
        self.cell_task = self.bar.add_task("cells", total=len(self.cells), count="", status="")
        self.epoch_task = self.bar.add_task("epochs", total=max(self.total_epochs, 1e-9), count="", status="")
        self.refresh()
        self.bar.start()

    def started(self, job: Any, total_steps: int = 0) -> None:
        self.current = job
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
        self.bar.update(self.cell_task, completed=finished, count=f"{finished}/{len(self.cells)} cells",
                        status=f"done {c['done']}  cached {c['cached']}  running {c['running']}  failed {c['failed']}")
        done = self.epochs_done + partial
        self.bar.update(self.epoch_task, completed=done, count=f"{done:.0f}/{self.total_epochs:.0f} epochs",
                        **({"status": current} if current else {}))

    def end(self) -> None:
        if self.bar is not None:
            self.bar.stop()

    @contextlib.contextmanager
    def track(self, description: str, total_steps: int) -> Iterator[Any]:
        share = self.pending.get(self.current.id, 0.0) if self.current is not None else 0.0

        def advance(done: int, record: Any) -> None:
            self.refresh(partial=share * done / max(total_steps, 1))

        yield advance


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
    model: Annotated[
        Path | None, typer.Option(help="a causal LM's folder (save_pretrained), for hf-causal-lm studies")] = None,
    download: Download = False,
    device: Device = "cpu",
    bf16: Bf16 = False,
    workers: LoaderWorkers = 4,
    tracking_uri: TrackingUri = None,
    no_tracking: NoTracking = False,
    json_output: Annotated[bool, typer.Option("--json", help="print the outcome as one JSON document")] = False,
) -> None:
    """Run a study: every (method, retraining time, density, seed, schedule, pruning) cell, each
    base network trained once per seed, finished cells never redone; rerun to resume.

    Examples:

    \b
      harness sweep mnist1d-smoke
      harness sweep mnist1d-paper --epochs-scale 0.2 --seed 0 --dry-run
      harness sweep study.yaml --jobs 2 --methods fine-tuning,lr-rewinding
    """
    with user_errors():
        check_finite(locals())
        names = [name.strip() for entry in methods or [] for name in entry.split(",") if name.strip()]
        spec = api.load_study(study, store=store, epochs_scale=epochs_scale, seeds=seed, methods=names,
                              device=device, bf16=bf16, threads=threads_per_job, model=model, data_dir=data_dir)
        if (count := spec.count()) > 10_000:  # planning takes about a second per 3,000 cells
            err.print(f"planning {count:,} cells ...", highlight=False)
        if dry_run:
            show_plan(spec, Store(store))
            return
        display = SweepDisplay()
        gpus = gpus_per_job if gpus_per_job is not None else (1.0 if device.startswith("cuda") else 0.0)
        report = api.run_study(spec, store=store, executor=executor, jobs=jobs, address=address, retries=retries,
                               cpus_per_job=cpus_per_job, gpus_per_job=gpus, data_dir=data_dir,
                               download=download, workers=workers, tracking=not no_tracking,
                               tracking_uri=tracking_uri, progress=display)
    if json_output:
        print(json.dumps({"study": spec.name, "hash": spec.hash, "folder": str(report.folder), "cells": report.cells,
                          "jobs": report.jobs, "counts": report.counts, "failures": report.failures,
                          "minimal_epochs": report.minimal_epochs, "pending_epochs": report.pending_epochs,
                          "executed_epochs": report.executed_epochs, "seconds": report.seconds,
                          "results": str(report.folder / "results.csv") if report.rows else None,
                          "figures": [str(f) for f in report.figures],
                          "mlflow": report.tracker.uri if report.tracker is not None else None}, indent=2))
    else:
        show_study(spec, report, report.tracker)
    if report.failures:
        raise typer.Exit(1)


def show_plan(spec: Any, results_store: Store) -> None:

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
    # start-up: pandas only when a study's tables are shown
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
        out.print(f"{path.name.split('_vs_')[0]} against compression: {path}", highlight=False, markup=False)
    if tracker is not None:
        state = "FAILED (results kept locally)" if tracker.failure else "ok"
        out.print(f"mlflow: {tracker.uri} [{state}]", highlight=False, markup=False, soft_wrap=True)
    for label, error in report.failures:
        err.print(f"failed: {label}: {error}", markup=False, highlight=False, soft_wrap=True)
