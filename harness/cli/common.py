"""Options, errors and progress shared by the commands."""

from __future__ import annotations

import contextlib
import math
import shlex
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import progress as bars
from rich.table import Column

from harness.cli.display import err
from harness.core.errors import DamagedFile, HarnessError, StoreFault
from harness.core.progress import Progress

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


class Times(bars.ProgressColumn):
    """Both times, labelled: ``elapsed 0:04, left 0:10`` (hours only when there are some)."""

    def render(self, task: bars.Task) -> Any:
        def clock(seconds: float | None) -> str:
            if seconds is None:
                return "?"
            minutes, s = divmod(int(seconds), 60)
            hours, m = divmod(minutes, 60)
            return f"{hours}:{m:02d}:{s:02d}" if hours else f"{m}:{s:02d}"

        left = task.time_remaining if not task.finished else 0.0
        return bars.Text(f"elapsed {clock(task.elapsed)}, left {clock(left)}", no_wrap=True)


TIMES_WIDTH = len("elapsed 0:00, left 0:00")  # hours widen it, and the status gives way


def bar_columns(count: str, count_width: int, console: Any = None) -> list[Any]:
    """A progress line that keeps its count (with its unit) and both times at any width from 80 up: the
    description and the status are what give way, cut with an ellipsis."""
    width = (console or err).width
    described, bar = 20, 8
    status = max(0, width - described - bar - count_width - TIMES_WIDTH - 4)
    return [bars.TextColumn("{task.description}", table_column=Column(max_width=described, no_wrap=True,
                                                                      overflow="ellipsis")),
            bars.BarColumn(bar_width=bar),
            bars.TextColumn(count, table_column=Column(no_wrap=True, min_width=count_width)),
            bars.TextColumn("{task.fields[status]}", table_column=Column(width=status, no_wrap=True,
                                                                         overflow="ellipsis")),
            Times(table_column=Column(no_wrap=True, min_width=TIMES_WIDTH))]


class BarProgress(Progress):
    """A bar per training, its notes and warnings on stderr (`harness run`, and a search's base network)."""

    @contextlib.contextmanager
    def track(self, description: str, total_steps: int) -> Iterator[Any]:
        columns = bar_columns("{task.completed:.0f}/{task.total:.0f} steps", len(f"{total_steps}/{total_steps} steps"))
        with bars.Progress(*columns, console=err, transient=False) as bar:
            handle = bar.add_task(description, total=total_steps, status="")

            def advance(done: int, record: dict[str, float]) -> None:
                status = (f"epoch {record.epoch:g} val {record.val_acc:.2f}" if record else None)
                bar.update(handle, completed=done, **({"status": status} if status else {}))

            yield advance

    def note(self, message: str) -> None:
        err.print(message, markup=False, highlight=False)

    def warn(self, message: str) -> None:
        warn(message)


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


def given_options(ctx: typer.Context, keep: Collection[str] | None = None) -> list[str]:
    """The options the user gave (on the command line or through the environment), as words of a
    command line: those named in ``keep`` (all when None). A hint that prints a command prints it whole."""
    words: list[str] = []
    for param in ctx.command.params:
        name = param.name or ""
        if param.param_type_name != "option" or (keep is not None and name not in keep):
            continue
        source = ctx.get_parameter_source(name)  # typer's own click: its ParameterSource is read by name
        if source is None or source.name not in ("COMMANDLINE", "ENVIRONMENT"):
            continue
        value, flag = ctx.params.get(name), max(param.opts, key=len)
        if param.is_flag:
            words += [flag] if value else [max(param.secondary_opts, key=len)] if param.secondary_opts else []
        elif isinstance(value, (list, tuple)):
            words += [w for v in value for w in (flag, str(v))]
        elif value is not None:
            words += [flag, str(value)]
    return words


def command(*words: str) -> str:
    return shlex.join(["harness", *words])
