"""MLflow mirrors: the sqlite default, a real `mlflow server` on loopback, and an unreachable one."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from harness.cli.app import app
from harness.engine.export import load_exported
from tasks.spec import DataOptions, get_task
from tests.conftest import QUICK, free_port

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
    # the runs list opens (not MLflow 3's GenAI pages), and names say the shortened schedule
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    assert base.info.run_name == f"base s0 epochs_scale={QUICK:g}"
    assert retrain.info.run_name.endswith(f"s0 epochs_scale={QUICK:g}")
    # the real times of the work, not of the mirroring
    for run in (base, retrain):
        stored = json.loads((Path(run.data.tags["harness.folder"]) / "result.json").read_text())
        assert run.info.end_time == pytest.approx(stored["finished_at"] * 1000, abs=2)
        assert run.info.end_time - run.info.start_time == pytest.approx(stored["seconds"] * 1000, abs=2)
        assert run.data.metrics["seconds"] == pytest.approx(stored["seconds"])
    # the target density as asked, the realized one as reached
    assert retrain.data.tags["target_density"] == "0.3"
    assert retrain.data.tags["density"] == f"{result['density']:.4g}"
    assert client.search_runs([exp.experiment_id], "tags.target_density = '0.3'")[0].info.run_id == retrain.info.run_id
    # the pruned network, loadable back: it scores the stored test accuracy
    model = load_exported(client.download_artifacts(retrain.info.run_id, "model", str(store / "dl-model")))
    task = get_task("mnist1d")
    assert task.load_data(DataOptions(batch_size=task.batch_size)).evaluate(model, "test") == result["test_acc"]


def test_default_is_sqlite_in_the_store_and_reruns_do_not_duplicate(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    store = tmp_path / "store"
    assert run_quick(store).exit_code == 0
    assert run_quick(store).exit_code == 0  # cached: mirrored already, not logged twice
    uri = f"sqlite:///{store / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    check_mirrored(client, store)


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
    client = MlflowClient(tracking_uri=mlflow_server)
    check_mirrored(client, store)
    assert not (store / "mlflow.db").exists()

    # a sweep and a search log under the same names as a run
    study = tmp_path / "study.yaml"
    study.write_text(f"task: mnist1d\nmethods: [fine-tuning]\nretrain_epochs: [1.5]\ndensities: [0.5]\nseeds: [0]\n"
                     f"epochs_scale: {QUICK}\n")
    swept = cli.invoke(app, ["sweep", str(study), "--store", str(store), "--jobs", "1",
                             "--tracking-uri", mlflow_server])
    assert swept.exit_code == 0, swept.output
    tuned = cli.invoke(app, ["tune", "fine-tuning", "mnist1d", "--trials", "1", "--epochs-scale", str(QUICK),
                             "--density", "0.5", "--seed", "0", "--store", str(store), "--tracking-uri", mlflow_server])
    assert tuned.exit_code == 0, tuned.output
    runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    kinds = {}
    for r in runs:
        kinds.setdefault(r.data.tags.get("harness.kind"), []).append(r)
    assert {"base", "retrain", "study", "trial"} <= set(kinds)
    cell = {"task", "seed", "epochs_scale", "batch_size"}
    for kind in ("base", "retrain", "trial"):
        for r in kinds[kind]:
            assert cell <= set(r.data.params), (kind, r.data.params)
            assert "val_acc" in r.data.metrics, kind
            assert not {"base.seed", "val", "test", "val_accuracy", "density"} & set(r.data.params), kind
    for r in kinds["retrain"] + kinds["trial"]:
        assert {"method", "target_density", "retraining_epochs"} <= set(r.data.params)
    [study_run] = kinds["study"]
    assert study_run.info.run_name == f"study study epochs_scale={QUICK:g}"
    [swept_cell] = [r for r in kinds["retrain"] if r.data.tags.get("study") == "study"]
    assert swept_cell.data.params["method"] == "fine-tuning" and swept_cell.data.tags["target_density"] == "0.5"
    assert all(e.tags.get("mlflow.experimentKind") == "custom_model_development"
               for e in client.search_experiments() if e.name != "Default")


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
