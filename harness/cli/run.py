"""`harness run`: one method on one task, its cells displayed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from harness import api
from harness.cli.common import (
    BarProgress,
    BatchSize,
    Bf16,
    DataDir,
    Device,
    Download,
    EpochsScale,
    LoaderWorkers,
    NoTracking,
    StoreDir,
    Threads,
    TrackingUri,
    check_finite,
    fmt,
    parse_assignments,
    user_errors,
    warn,
)
from harness.cli.display import err, out, show_table
from harness.core import distributed
from harness.core.errors import HarnessError
from harness.core.hparams import Compute
from harness.core.metrics import metric_of
from harness.core.progress import Progress
from harness.core.protocol import DEFAULT_PRUNING
from harness.core.seeding import MAX_SEED
from harness.engine import undertrained
from harness.engine.checks import check_device
from harness.storage.record import CellRecord, SpeedRecord
from harness.storage.store import Store
from harness.tracking.mirror import Tracker


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
    model: Annotated[
        Path | None, typer.Option(help="a causal LM's folder (save_pretrained), for hf-causal-lm")] = None,
    download: Download = False,
    device: Device = "cpu",
    bf16: Bf16 = False,
    threads: Threads = 1,
    workers: LoaderWorkers = 4,
    tracking_uri: TrackingUri = None,
    no_tracking: NoTracking = False,
    json_output: Annotated[bool, typer.Option("--json", help="print the outcome as one JSON document")] = False,
) -> None:
    """Train the base network once, prune, retrain with METHOD, evaluate, log to MLflow.

    Examples:

    \b
      harness run lr-rewinding mnist1d
      harness run fine-tuning mnist1d --density 0.1 -t 3 -t 15 --seed 1
      harness run algorithm1 mnist1d --rounds 5
      harness run llr cifar10-resnet56 --structured resnet56-A --level 2
      harness run lr-rewinding tinylm --pruning wanda --density 0.5
      harness run llr hf-causal-lm --model opt --data-dir wt2 --pruning wanda
    """

    with user_errors():
        check_finite(locals())
        check_device(device)
        device = distributed.init_from_env(device)
        if structured is not None:
            if pruning != DEFAULT_PRUNING:
                raise HarnessError("--structured NAME is shorthand for --pruning NAME; give one of them")
            pruning = structured
        planned = api.plan_run(method, task, density=density, rounds=rounds, iterative=iterative, pruning=pruning,
                               pruning_params=parse_assignments(pruning_param or [], "--pruning-param"),
                               level=level or (), retrain_epochs=retrain_epochs or (), seeds=seed or [0],
                               epochs_scale=epochs_scale, batch_size=batch_size, store=store,
                               compute=Compute.of(device, bf16, threads), model=model, data_dir=data_dir)
        main = distributed.is_main()  # under torchrun, only rank 0 tracks, measures and shows
        result = api.run_planned(planned, store=store, device=device, data_dir=data_dir, download=download,
                                 workers=workers, bf16=bf16, threads=threads, tracking=not no_tracking and main,
                                 tracking_uri=tracking_uri, measure_speed=measure_speed and main,
                                 progress=BarProgress() if main else Progress())
    if distributed.active():
        for row in result.rows:
            err.print(f"rank {distributed.rank()}/{distributed.world_size()}: round {row.round} "
                      f"weights {row.weights_sha256} mask {row.mask_sha256}", highlight=False)
        if not distributed.is_main():
            return
    if json_output:
        print(json.dumps({"cells": [r.to_json() for r in result.rows], "speeds": [s.to_json() for s in result.speeds],
                          "store": str(Store(store).root), "seconds": result.seconds,
                          "mlflow": result.tracker.uri if result.tracker is not None else None}, indent=2))
        return
    show_results(result.rows, result.speeds, planned.task.metric, Store(store), result.tracker, result.seconds)


def show_results(rows: list[CellRecord], speeds: list[SpeedRecord], metric: str, results_store: Store,
                 tracker: Tracker | None, seconds: float) -> None:
    # start-up: pandas only when results are shown, not with `harness --help`
    from harness.analysis.selection import best_validated
    from harness.analysis.statistics import spread

    first = rows[0]
    pruning = "" if first.pruning == DEFAULT_PRUNING else f", {first.pruning}"
    declared = metric_of(metric)
    units = f"{metric}, {declared.unit}" if declared.unit not in ("", metric, declared.label) else metric
    table = Table(title=f"{first.variant or first.method} on {first.task}{pruning} ({units})")
    for col in ("seed", "round", "density", "compression", "FLOPs", "t", "val", "test", "unpruned test", "time"):
        table.add_column(col, justify="right")
    for r in rows:
        round_ = f"k={r.level}" if r.level is not None else str(r.round)
        table.add_row(str(r.seed), round_, f"{r.density:.4f}", fmt(r.compression_ratio) + "x",
                      f"{r.flops / r.dense_flops:.1%}", f"{r.retraining_epochs:g}", fmt(r.val_acc),
                      fmt(r.test_acc), fmt(r.unpruned_test_acc), "cached" if r.cached else f"{r.seconds:.0f}s")
    show_table(table)
    if speeds:
        speed = Table(title=f"measured latency on {speeds[0].device}: compacted vs unpruned")
        for col in ("seed", "k", "parameters", "FLOPs", "batch 1 (ms)", "speed-up", "batch 128 (ms)", "speed-up"):
            speed.add_column(col, justify="right")
        for r, s in zip(rows, speeds, strict=True):
            speed.add_row(str(r.seed), str(r.level), f"{s.compact_parameters:,}",
                          f"{s.compact_flops / s.dense_flops:.1%}", f"{1e3 * s.latency[1][1]:.1f}",
                          f"{s.speedup(1):.2f}x", f"{1e3 * s.latency[128][1]:.0f}", f"{s.speedup(128):.2f}x")
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
            out.print(f"{label}: {spread(getattr(r, key) for r in finals).describe()} over {len(finals)} seeds")
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
