"""`harness`: the command line. Each command is a module of this package that parses its options, calls
``harness.api`` (or the layer below it) and displays; this module names the commands and turns every
error into one line."""

from __future__ import annotations

import signal
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

import typer
from typer._click.exceptions import ClickException

from harness.cli import cells, export, leaderboard, listing, run, sweep, tune, ui
from harness.cli.display import err, out
from harness.core import signals

app = typer.Typer(add_completion=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="A benchmark harness for retraining methods after pruning (Renda et al. 2020).")


def show_version(value: bool) -> None:
    if value:
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


app.command()(run.run)
app.command()(sweep.sweep)
app.command()(tune.tune)
app.command()(leaderboard.leaderboard)
app.command()(export.export)
app.command()(ui.ui)
app.command("list")(listing.list_registered)
app.command()(cells.cells)


def main(argv: list[str] | None = None) -> int:
    """The console script: every error, the parser's own included, is one line on stderr."""

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
    return signal.Signals(signum).name


if __name__ == "__main__":
    sys.exit(main())
