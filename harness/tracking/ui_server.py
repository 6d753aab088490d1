"""The MLflow UI for a store, served on loopback by a process of its own.

The server runs in its own process group, so its uvicorn workers and huey consumers go with it when it
is stopped, and it asks the kernel to end it when its parent dies, so it never outlives the command
that started it, even one killed by SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from harness.core import signals
from harness.core.errors import HarnessError
from harness.storage import paths


def check_servable(uri: str, store: Path) -> None:
    if uri.startswith(("http://", "https://")):
        raise HarnessError(f"{uri} is a tracking server already: open it in a browser")
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).exists():
        raise HarnessError(f"no MLflow store at {uri}: run `harness run` or `harness sweep` with --store {store}")


class MlflowUI:
    """``verbose``: the server's own output on stderr; otherwise in the store's ``mlflow-ui.log``, out of
    the way of the address (``error_tail`` reads it back when the server exits before serving)."""

    def __init__(self, store_root: Path, uri: str, port: int, verbose: bool = False) -> None:
        self.uri, self.port = uri, port
        self.log = None if verbose else paths.ui_log(store_root)
        command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", "127.0.0.1",
                   "--port", str(port)]
        if uri.startswith("sqlite:///"):
            command += ["--default-artifact-root", paths.mlartifacts(store_root).as_uri()]
        output = sys.stderr if self.log is None else self.log.open("wb")
        try:
            self.proc = subprocess.Popen(command, stdout=output, stderr=output, start_new_session=True,
                                         preexec_fn=lambda: signals.die_with_parent(signal.SIGTERM))
        finally:
            if self.log is not None:
                output.close()  # the server holds its own descriptor

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def runs_page(self) -> str:
        # MLflow 3.17's UI picks its pages by a workflow switch (GenAI by default), not by the experiment's
        # kind: the address sets it to model training, which opens experiments on their runs
        return f"{self.address}/#/experiments?workflowType=machine_learning"

    def ready(self, timeout: float = 120) -> bool:
        """Whether the server answers its health check before ``timeout`` seconds (False: it exited)."""
        deadline = time.time() + timeout
        while time.time() < deadline and self.proc.poll() is None:
            try:
                urllib.request.urlopen(self.address + "/health", timeout=2)
                return True
            except OSError:
                time.sleep(0.5)
        return False

    def error_tail(self) -> str:
        """Why the server exited, as it said (its last error line), and where the rest of its output is."""
        if self.log is None:
            return "its output is above"
        try:
            text = [line.strip() for line in self.log.read_text(errors="replace").splitlines() if line.strip()]
        except OSError:
            text = []
        errors = [line for line in text if "error" in line.lower()]
        said = (errors or text or ["nothing"])[-1]
        return f"it said: {said[-200:]}; all it printed: {self.log}"

    def wait(self) -> int:
        return self.proc.wait()

    def stop(self) -> None:
        """The whole group: SIGTERM, then SIGKILL after 30 s."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
