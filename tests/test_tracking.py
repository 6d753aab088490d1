"""MLflow mirrors: the sqlite default, a real `mlflow server` on loopback, and an unreachable one."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from harness.cli import app
from tests.conftest import QUICK

cli = CliRunner()


def run_quick(store: Path, *extra: str):
    return cli.invoke(app, ["run", "lr-rewinding", "mnist1d", "--epochs-scale", str(QUICK), "-t", "1.5",
                            "--density", "0.3", "--store", str(store), *extra])


def check_mirrored(client: MlflowClient, store: Path) -> None:
    exp = client.get_experiment_by_name("mnist1d")
    runs = client.search_runs([exp.experiment_id])
    by_kind = {}
    for r in runs:
        by_kind.setdefault(r.data.tags["harness.kind"], []).append(r)
    [base] = by_kind["base"]
    retrains = [r for r in by_kind["retrain"] if r.data.params["densities"] == "0.3"]
    assert len(retrains) == 1
    [retrain] = retrains
    assert retrain.data.tags["mlflow.parentRunId"] == base.info.run_id
    assert retrain.data.params["method"] == "lr-rewinding"
    assert retrain.data.params["task"] == "mnist1d"
    assert retrain.data.params["retraining_epochs"] == "1.5"
    assert retrain.data.params["formula"] == "TRAIN^t(W_T, m, T-t)"
    assert retrain.data.params["task.epochs"] == "3.0"
    history = client.get_metric_history(retrain.info.run_id, "val_acc")
    assert [m.step for m in history] == [2, 3]
    folder = Path(retrain.data.tags["harness.folder"])
    result = json.loads((folder / "result.json").read_text())
    assert retrain.data.metrics["test_acc"] == pytest.approx(result["test_acc"])
    assert retrain.data.metrics["compression_ratio"] == pytest.approx(result["compression_ratio"])
    assert len(client.get_metric_history(base.info.run_id, "test_acc")) == 3
    local = client.download_artifacts(retrain.info.run_id, "mask_densities.json", str(store / "dl"))
    assert json.loads(Path(local).read_text()) == json.loads((folder / "mask_densities.json").read_text())


def test_default_is_sqlite_in_the_store_and_reruns_do_not_duplicate(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    store = tmp_path / "store"
    assert run_quick(store).exit_code == 0
    assert run_quick(store).exit_code == 0  # cached: mirrored already, not logged twice
    uri = f"sqlite:///{store / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    check_mirrored(client, store)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path):
    port = free_port()
    mlflow_bin = shutil.which("mlflow") or str(Path(sys.executable).parent / "mlflow")
    proc = subprocess.Popen(
        [mlflow_bin, "server", "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail(f"mlflow server did not become healthy (exit code {proc.poll()})")
        time.sleep(0.5)
    yield url
    # Stop it by its own PID; its workers are in its process group.
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{url}/health", timeout=2)


def test_logs_to_a_real_mlflow_server(tmp_path, mlflow_server):
    store = tmp_path / "store"
    result = run_quick(store, "--tracking-uri", mlflow_server)
    assert result.exit_code == 0, result.output
    assert "tracking failed" not in result.output
    check_mirrored(MlflowClient(tracking_uri=mlflow_server), store)
    assert not (store / "mlflow.db").exists()


def test_unreachable_server_keeps_results_and_says_so(tmp_path):
    store = tmp_path / "store"
    dead = f"http://127.0.0.1:{free_port()}"
    started = time.time()
    result = run_quick(store, "--tracking-uri", dead)
    assert result.exit_code == 0, result.output
    assert "tracking failed: could not log to MLflow at " + dead in result.stderr
    assert "FAILED (results kept locally)" in result.stdout
    assert len(list((store / "retrain").glob("*/result.json"))) == 1
    assert time.time() - started < 120
