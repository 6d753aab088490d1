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


class BarProgress(Progress):
    """A bar per training, its notes and warnings on stderr (`harness run`, and a search's base network)."""

    @contextlib.contextmanager
    def track(self, description: str, total_steps: int) -> Iterator[Any]:
        columns = [bars.TextColumn("{task.description}"), bars.BarColumn(), bars.MofNCompleteColumn(),
                   bars.TextColumn("{task.fields[status]}"), bars.TimeElapsedColumn(), bars.TimeRemainingColumn()]
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
