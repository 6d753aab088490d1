"""`harness ui`: the MLflow UI for the store."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from harness import api
from harness.cli.common import StoreDir, TrackingUri, user_errors
from harness.cli.display import err, out


def ui(
    store: StoreDir = Path("results"),
    tracking_uri: TrackingUri = None,
    port: Annotated[int, typer.Option(min=1, max=65535, help="port on 127.0.0.1")] = 5000,
    verbose: Annotated[bool, typer.Option(help="show MLflow's own output [else: STORE/mlflow-ui.log]")] = False,
) -> None:
    """Start the MLflow UI on loopback for the results' tracking store and print its address.

    Examples:

    \b
      harness ui --store results --port 5001
    """

    with user_errors():
        server = api.ui(store, tracking_uri, port, verbose)
    try:
        if not server.ready() and server.proc.poll() is not None:  # slow to answer is not an error; gone is
            err.print(f"error: the MLflow UI exited with code {server.proc.poll()} before serving on port {port} "
                      f"({server.error_tail()}; a port in use? try another --port)", highlight=False, soft_wrap=True,
                      markup=False)
            raise typer.Exit(1)
        out.print(f"MLflow UI for {server.uri}: {server.runs_page}  (Ctrl-C stops it)", highlight=False,
                  soft_wrap=True)
        sys.stdout.flush()
        server.wait()
    finally:  # Ctrl-C, SIGTERM or SIGHUP (harness.core.signals) included: the server goes first
        server.stop()
