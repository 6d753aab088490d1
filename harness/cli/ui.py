"""`harness ui`: the MLflow UI for the store."""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from harness.cli.common import (
    StoreDir,
    TrackingUri,
    user_errors,
)
from harness.cli.display import err, out
from harness.core import signals
from harness.core.errors import HarnessError
from harness.storage import paths
from harness.storage.store import Store
from harness.tracking.mirror import default_uri


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
