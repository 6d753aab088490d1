"""`harness tune`: a search's progress and its best configuration."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import progress as bars
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
    bar_columns,
    check_finite,
    command,
    given_options,
    user_errors,
)
from harness.cli.display import err, out, show_table
from harness.core.errors import HarnessError
from harness.core.hparams import BaseHparams
from harness.core.metrics import metric_of
from harness.core.protocol import DEFAULT_PRUNING
from harness.core.seeding import MAX_SEED
from harness.engine.checks import check_epochs_scale
from harness.tune.space import declared_space, describe_space, distribution, split_values
from methods.pruning import get_pruning
from methods.spec import get_method
from tasks.spec import get_task


class TuneDisplay(BarProgress):
    """Progress of a search: the study's trials (complete, pruned, failed, best) and the running one; a
    training outside a trial (the base network, the final evaluation) has a bar of its own."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.total = 0
        self.shown = ""
        self.trials_task: Any = None
        self.trial_task: Any = None
        self.in_trial = False

    def begin(self, plan: Any) -> None:
        so_far = f"{plan.trials_so_far} trial{'' if plan.trials_so_far == 1 else 's'} so far"
        out.print(f"study {plan.name} in {plan.storage_label}: {so_far}, searching "
                  f"{plan.space}", highlight=False, soft_wrap=True)
        self.total = plan.total
        widest = max(len(f"{plan.total}/{plan.total} trials"), len("100000/100000 steps"))
        self.bar = bars.Progress(*bar_columns("{task.fields[count]}", widest), console=err, transient=False)
        self.trials_task = self.bar.add_task("trials", total=plan.total, count="", status="")
        self.trial_task = self.bar.add_task("trial", total=1, count="", status="", visible=False)
        self.show_counts(plan.study)
        self.bar.start()

    def started(self, trial: Any, total_steps: int = 0) -> None:
        self.in_trial = True
        self.shown = "  ".join(f"{k}={v:.4g}" for k, v in trial.params.items())
        self.bar.reset(self.trial_task, total=max(total_steps, 1), visible=True,
                       description=f"trial {trial.number}", count=f"0/{total_steps} steps", status=self.shown)

    @contextlib.contextmanager
    def track(self, description: str, total_steps: int) -> Iterator[Any]:
        if not self.in_trial:
            with super().track(description, total_steps) as advance:
                yield advance
            return

        def advance(done: int, record: Any) -> None:
            status = {"status": f"val {record.val_acc:.2f}  {self.shown}"} if record else {}
            self.bar.update(self.trial_task, completed=done, count=f"{done}/{total_steps} steps", **status)

        yield advance

    def finished(self, trial: Any, study: Any = None) -> None:
        self.in_trial = False
        self.show_counts(study)
        self.bar.update(self.trial_task, visible=False)
        if "error" in trial.user_attrs:
            err.print(f"trial {trial.number} failed: {trial.user_attrs['error']}", markup=False,
                      highlight=False, soft_wrap=True)

    def show_counts(self, study: Any) -> None:
        # start-up: Optuna only while a search is shown
        from harness.tune.storage import trial_counts

        c = trial_counts(study)
        done = c["complete"] + c["pruned"]
        try:
            best = f"best val {study.best_value:.2f} (trial {study.best_trial.number})"
        except ValueError:
            best = ""
        self.bar.update(self.trials_task, completed=min(done, self.total), count=f"{done}/{self.total} trials",
                        status=f"complete {c['complete']}  pruned {c['pruned']}  failed {c['failed']}  "
                               f"running {c['running']}  {best}")

    def end(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def show_space(method_name: str, task: str | None, pruning: str, epochs_scale: float) -> None:

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


def tune(
    ctx: typer.Context,
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
    optimizing the validation score (accuracy up, perplexity down); then evaluate the best configuration on the
    test set over seeds.
    Rerun the same command to resume; several processes on one --storage or --journal share a study.

    Examples:

    \b
      harness tune --list-space fine-tuning
      harness tune fine-tuning mnist1d --trials 20 --save-as ft-tuned
      harness tune gradual mnist1d --space t=15 --trials 30 --journal trials.log
    """

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
                          progress=TuneDisplay())
    show_tune(result)
    show_next(ctx, result)


def show_tune(result: Any) -> None:
    from harness.analysis.statistics import spread  # start-up: pandas only when a search is shown
    from harness.tune.storage import default_trial, trial_counts

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
    say("best configuration: " + ", ".join(f"{k} = {v:.4g}" for k, v in result.values.items()))
    metric = (metric_of(rows[0].metric).label or rows[0].metric) if rows else "score"
    say(f"test {metric} over seeds {', '.join(str(r.seed) for r in rows)}: "
        f"{spread(r.test_acc for r in rows).describe()} "
        f"(unpruned {spread(r.unpruned_test_acc for r in rows).median:.2f})")
    say(f"wall time: {result.seconds:.0f}s")
    if result.tracker is not None:
        state = "FAILED (results kept locally)" if result.tracker.failure else "ok"
        say(f"mlflow: {result.tracker.uri} experiment '{s.experiment}' [{state}]")


# the options of `harness tune` that mean the same to `harness run`: a saved variant is run with them
RUN_OPTIONS = ("density", "pruning", "seed", "epochs_scale", "batch_size", "store", "data_dir", "download", "device",
               "bf16", "threads", "workers", "tracking_uri", "no_tracking")


def show_next(ctx: typer.Context, result: Any) -> None:
    """How to keep and reuse what the search found, as commands to copy, and how to browse its trials."""
    s = result.search
    say = lambda text: out.print(text, highlight=False, soft_wrap=True, markup=False)  # noqa: E731
    if result.variant_path is None:
        name = f"{s.method.name}-tuned"
        keep = command("tune", s.method.name, s.base.task, *given_options(ctx), "--save-as", name)
        say(f"to keep it as a method: {keep}  (the "
            "search resumes: no trial runs again)")
    else:
        name = result.variant_path.stem
        _, pruning_values, _ = split_values(result.values)
        found = [w for k, v in sorted(pruning_values.items()) for w in ("--pruning-param", f"{k}={v:g}")]
        say(f"saved variant {name} ({result.variant_path}); run it as any method (a study's methods can name it "
            f"too): {command('run', name, s.base.task, *given_options(ctx, RUN_OPTIONS), *found)}")
    label = result.storage_label
    url = label.removeprefix("journal ") if label.startswith("journal ") else label
    say(f"browse the trials: optuna-dashboard {url}  (pip install optuna-dashboard)")
