"""Running studies: the epoch count, reruns, SIGKILL and resume, executors that agree, failures, MLflow; stopping:
SIGINT, SIGTERM and SIGHUP end `sweep` and `run` the same way whether SIGINT was inherited as default or as ignored
(a script's background job), and a driver killed by SIGKILL takes its fork server and workers with it."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from harness.core.progress import Progress
from harness.storage.store import Store
from harness.sweep.driver import run_study
from harness.sweep.executors import InProcess, LocalPool, WorkerContext
from harness.sweep.plan import plan
from harness.sweep.study import load_study
from tests.processes import STOP_CASES, cleanup, gone_within, session, start, wait_for_work

STUDY = """
task: mnist1d
epochs_scale: 0.1
methods: [fine-tuning, weight-rewinding, lr-rewinding, reinit, gradual]
retrain_epochs: [1.5, 3]
densities: [0.3]
seeds: 1
"""
CELLS = 10
MINIMAL = 3 + 3 + 6 + 3 * 4.5  # base; fine-tuning and reinit once each (shared); 1.5 + 3 for the others


def results(store: Path) -> dict[str, tuple]:
    out = {}
    for path in (store / "retrain").glob("*/result.json"):
        r = json.loads(path.read_text())
        out[path.parent.name] = (r["weights_sha256"], r["mask_sha256"], r["val_acc"], r["test_acc"])
    return out


@pytest.fixture(scope="module")
def study_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("study") / "small.yaml"
    path.write_text(STUDY)
    return path


def sweep_command(study_file: Path, store: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "harness", "sweep", str(study_file), "--store", str(store), *extra]


def summary_of(store: Path) -> dict:
    [folder] = (store / "studies").iterdir()
    return json.loads((folder / "summary.json").read_text())


@pytest.fixture(scope="module")
def reference(study_file, tmp_path_factory):
    """The study run once, uninterrupted, in a process of its own (CPU numbers depend on the thread
    count a process starts with), mirrored to the store's sqlite MLflow database."""
    root = tmp_path_factory.mktemp("reference")
    done = subprocess.run(sweep_command(study_file, root, "--jobs", "1"), capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    assert "the base network of mnist1d at --epochs-scale 0.1 is under-trained" in done.stderr
    return root, done.stdout


def test_a_fresh_study_trains_exactly_its_minimal_epochs(reference):
    root, stdout = reference
    summary = summary_of(root)
    assert summary["counts"] == {"done": CELLS, "cached": 0, "failed": 0}
    assert summary["minimal_epochs"] == pytest.approx(MINIMAL)
    assert summary["pending_epochs"] == pytest.approx(MINIMAL)
    assert summary["executed_epochs"] == pytest.approx(MINIMAL)
    assert f"executed {MINIMAL:.2f}, minimal {MINIMAL:.2f} (ratio 1.00)" in stdout
    assert len(results(root)) == CELLS
    [folder] = (root / "studies").iterdir()
    assert (folder / "results.csv").read_text().count("\n") == CELLS + 1
    assert f"accuracy against compression: {folder / 'accuracy_vs_compression.png'}" in stdout
    assert (folder / "accuracy_vs_compression.png").read_bytes()[:4] == b"\x89PNG"
    # the summary table: every method at the study's density
    for method in ("fine-tuning", "weight-rewinding", "lr-rewinding", "reinit", "gradual"):
        assert method in stdout


def test_rerun_of_a_finished_study_trains_nothing(reference, study_file):
    root, _ = reference
    before = results(root)
    done = subprocess.run(sweep_command(study_file, root), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "everything was cached: no training ran" in done.stdout
    summary = summary_of(root)
    assert summary["counts"] == {"done": 0, "cached": CELLS, "failed": 0}
    assert summary["executed_epochs"] == 0
    assert results(root) == before


def test_shared_prefix_cells_equal_cells_run_alone(study_file, tmp_path):
    """fine-tuning and reinit at t = 1.5 are read off the t = 3 run; run alone, they are bit-identical."""
    from harness.engine.runner import Runner

    study = load_study(str(study_file))
    groups = [j for j in plan(study.cells()) if len(j.cells) > 1]
    assert sorted(j.cells[0].method for j in groups) == ["fine-tuning", "reinit"]
    shared, alone = Runner(Store(tmp_path / "shared")), Runner(Store(tmp_path / "alone"))
    for job in groups:
        shared.retrain_group(list(job.cells))
        short = job.cells[0]
        assert short.retrain_epochs == 1.5
        a = alone.retrain(short)
        b = json.loads((shared.store.retrain_dir(short) / "result.json").read_text())
        assert (a.weights_sha256, a.val_acc, a.test_acc) == (b["weights_sha256"], b["val_acc"], b["test_acc"])
        history = json.loads((shared.store.retrain_dir(short) / "history.json").read_text())
        assert history == json.loads((alone.store.retrain_dir(short) / "history.json").read_text())
    # one run per group: the base once, then 3 epochs of fine-tuning and 3 + 3 of reinitialization
    assert shared.executed_epochs == pytest.approx(3 + 3 + 6)


def executed_epochs(stdout: str) -> float:
    if "everything was cached: no training ran" in stdout:
        return 0.0
    [found] = re.findall(r"training epochs: executed ([0-9.]+),", stdout)
    return float(found)


def test_two_sweeps_at_once_on_one_store_compute_each_cell_once(reference, study_file, tmp_path):
    """Started together on an empty store and a new MLflow database: the second process waits on
    the cells the first is computing and reuses them; both keep tracking; MLflow gets one run a cell."""
    root, _ = reference
    store = tmp_path / "shared"
    procs = [subprocess.Popen(sweep_command(study_file, store, "--jobs", "1"), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [proc.communicate(timeout=600) for proc in procs]
    for proc, (stdout, stderr) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, stderr
        assert "[ok]" in stdout and "tracking failed" not in stderr, stderr
    assert sum(executed_epochs(stdout) for stdout, _ in outputs) == pytest.approx(MINIMAL)
    assert results(store) == results(root)
    client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    [experiment] = [e for e in client.search_experiments() if e.name == "mnist1d"]
    runs = client.search_runs([experiment.experiment_id], "tags.`harness.kind` = 'retrain'")
    assert len(runs) == CELLS and len({r.data.tags["harness.folder"] for r in runs}) == CELLS
    assert len(client.search_runs([experiment.experiment_id], "tags.`harness.kind` = 'study'")) == 1
    assert len(client.search_runs([experiment.experiment_id], "tags.`harness.kind` = 'base'")) == 1


def test_sigkill_mid_cell_then_restart_gives_the_uninterrupted_results(reference, study_file, tmp_path):
    root, _ = reference
    store = tmp_path / "killed"
    command = sweep_command(study_file, store, "--no-tracking")
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    try:
        # wait until a retraining cell is between epochs: it has saved its state once and is still going
        while not list((store / "retrain").glob("*/resume.pt")):
            assert proc.poll() is None, "the study finished before it could be killed"
            assert time.time() < deadline
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert len(results(store)) < CELLS
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert results(store) == results(root)
    summary = summary_of(store)
    # the interrupted cell resumed from its last epoch instead of starting over
    assert summary["executed_epochs"] < summary["pending_epochs"]


@pytest.mark.parametrize("kind", ["pool", "ray"])
def test_other_executors_give_the_same_results(reference, study_file, tmp_path, kind):
    root, _ = reference
    context = WorkerContext(str(tmp_path))
    if kind == "pool":
        executor = LocalPool(context, workers=2)
    else:
        import ray

        from harness.sweep.executors import RayExecutor

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        executor = RayExecutor(context, address=None, retries=0, cpus=1, gpus=0)
    try:
        report = run_study(load_study(str(study_file)), Store(tmp_path), executor, Progress())
    finally:
        if kind == "ray":
            ray.shutdown()
    assert report.counts["done"] == CELLS and not report.failures
    assert report.executed_epochs == pytest.approx(MINIMAL)
    assert results(tmp_path) == results(root)


def test_a_failed_cell_is_retried_and_reported_while_the_others_finish(reference, study_file, tmp_path):
    root, _ = reference
    shutil.copytree(root, tmp_path / "store", ignore=shutil.ignore_patterns("mlflow.db", "mlartifacts"))
    store = Store(tmp_path / "store")
    for folder in (store.root / "retrain").glob("mnist1d-weight-rewinding-*"):
        shutil.rmtree(folder)
    # a file stands where the weight-rewinding cell with t = 1.5 writes its folder: that cell must fail
    study = load_study(str(study_file))
    [blocked] = [hp for hp in study.cells() if hp.method == "weight-rewinding" and hp.retrain_epochs == 1.5]
    store.retrain_dir(blocked).write_bytes(b"in the way")
    seen: list[str] = []

    class Count(Progress):
        def started(self, job, total_steps=0):
            seen.append(job.label)

    report = run_study(load_study(str(study_file)), store, InProcess(WorkerContext(str(store.root))), Count(),
                       retries=2)
    assert report.counts == {"done": 1, "cached": CELLS - 2, "failed": 1}
    [(label, error)] = report.failures
    assert "weight-rewinding" in label and "t=1.5" in label and "cannot write" in error
    assert seen.count(label) == 3  # the first try and two retries
    assert len(results(store.root)) == CELLS - 1


def test_mlflow_has_a_parent_run_for_the_study_and_a_tagged_child_per_cell(reference, study_file):
    root, _ = reference
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    [experiment] = [e for e in client.search_experiments() if e.name == "mnist1d"]
    [parent] = client.search_runs([experiment.experiment_id], "tags.`harness.kind` = 'study'")
    assert parent.info.status == "FINISHED" and parent.data.tags["study"] == "small"
    children = client.search_runs([experiment.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert len(children) == CELLS
    query = "tags.study = 'small' and tags.method = 'fine-tuning' and tags.retraining_epochs = '3'"
    fine_tuning = client.search_runs([experiment.experiment_id], query)
    assert len(fine_tuning) == 1
    assert fine_tuning[0].data.tags["density"] == "0.3"
    assert fine_tuning[0].data.metrics["test_acc"] == pytest.approx(
        json.loads((Store(root).retrain_dir(
            next(c for c in load_study(str(study_file)).cells()
                 if c.method == "fine-tuning" and c.retrain_epochs == 3)) / "result.json").read_text())["test_acc"])


def test_a_sweeps_results_csv_gives_the_leaderboard_of_its_store(reference, tmp_path):
    """The round trip: `--csv studies/*/results.csv` reads what `--store` reads, row for row."""
    from typer.testing import CliRunner

    from harness.cli.app import app

    root, _ = reference
    [csv] = (root / "studies").glob("*/results.csv")
    pages = {}
    for name, source in (("store", ["--store", str(root)]), ("csv", ["--csv", str(csv)])):
        result = CliRunner().invoke(app, ["leaderboard", *source, "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
        md = (tmp_path / name / "summary.md").read_text().splitlines()
        pages[name] = [line.replace("| results |", "| store |") for line in md[3:]]  # past the sources line
    assert pages["csv"] == pages["store"]
    assert any("| store |" in line for line in pages["store"])
    assert any(line.startswith("| mnist1d (epochs x0.1), global-magnitude, one-shot | one-shot, unstructured |")
               and line.endswith("| inconclusive | inconclusive | 1 |") for line in pages["store"])


# -- stopping ------------------------------------------------------------------------------------


@pytest.mark.parametrize("executor", [pytest.param(["--jobs", "2"], id="pool"),
                                      pytest.param(["--executor", "ray"], id="ray", marks=pytest.mark.slow)])
def test_a_driver_killed_by_sigkill_takes_its_workers_and_the_rerun_gives_the_same_bits(reference, study_file,
                                                                                        tmp_path, executor):
    root, _ = reference
    store = tmp_path / "killed"
    command = sweep_command(study_file, store, *executor, "--no-tracking")
    proc = start(command, sigint_ignored=True)
    try:
        wait_for_work(proc, store)
        # pool: the driver, the fork server, two workers (and the resource tracker); ray: the driver, its
        # watcher, the GCS, the raylet, its agents and workers
        assert len(session(proc.pid)) >= 4
        os.kill(proc.pid, signal.SIGKILL)  # the driver alone, as the OOM killer would
        proc.wait(timeout=30)
        assert gone_within(proc.pid, 10), f"left behind: {session(proc.pid)}"
    finally:
        cleanup(proc.pid)
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert results(store) == results(root)


@pytest.mark.parametrize(("stop", "sigint_ignored"), STOP_CASES)
def test_a_stop_signal_ends_a_sweep_whatever_the_sigint_it_inherited(study_file, tmp_path, stop, sigint_ignored):
    store = tmp_path / "stopped"
    proc = start(sweep_command(study_file, store, "--jobs", "2", "--no-tracking"), sigint_ignored)
    try:
        wait_for_work(proc, store)
        os.kill(proc.pid, stop)  # the driver alone, as `kill` or a service manager would
        code = proc.wait(timeout=30)
        stderr = proc.stderr.read()
        assert gone_within(proc.pid, 10), f"left behind: {session(proc.pid)}"
    finally:
        cleanup(proc.pid)
    assert code == 128 + stop, stderr[-2000:]
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == (f"stopped by {signal.Signals(stop).name}: what is finished is stored; "
                                              "rerun the same command to resume")


@pytest.mark.parametrize(("stop", "sigint_ignored"), STOP_CASES)
def test_a_stop_signal_ends_harness_run_whatever_the_sigint_it_inherited(tmp_path, stop, sigint_ignored):
    store = tmp_path / "run"
    command = [sys.executable, "-m", "harness", "run", "lr-rewinding", "mnist1d", "--epochs-scale", "0.3",
               "--store", str(store), "--no-tracking"]
    proc = start(command, sigint_ignored)
    try:
        wait_for_work(proc, store, "base/*/resume.pt")
        os.kill(proc.pid, stop)
        code = proc.wait(timeout=30)
        stderr = proc.stderr.read()
        assert gone_within(proc.pid, 10)
    finally:
        cleanup(proc.pid)
    assert code == 128 + stop and "Traceback" not in stderr, stderr[-2000:]
    assert stderr.strip().splitlines()[-1].startswith(f"stopped by {signal.Signals(stop).name}")


# -- a cluster of several nodes --------------------------------------------------------------------


def cells_running_under(raylet: int) -> set[str]:
    """The labels of the cells that Ray workers of the raylet ``raylet`` train now (a worker's title is
    ``ray::LABEL`` while it runs a task)."""
    labels = set()
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            title = (entry / "cmdline").read_bytes().split(b"\0")[0].decode()
        except (OSError, IndexError, ValueError):
            continue
        if parent == raylet and title.startswith("ray::") and " density " in title:
            labels.add(title.removeprefix("ray::").strip())
    return labels


@pytest.mark.slow  # a second Ray node started and killed: 20 s on 2 cores; Ray runs in the default run too
def test_a_ray_sweep_that_loses_a_node_retries_its_jobs_elsewhere_and_equals_the_local_sweep(reference, study_file,
                                                                                            tmp_path):
    """Three Ray nodes on this machine (a head that runs nothing and two workers of one CPU each) share the
    store's folder. A worker node is removed while it trains a cell: the sweep finishes on the other node,
    the lost job runs again there from its last saved epoch, no cell is computed twice, and every cell holds
    the bits of the uninterrupted local sweep."""
    import ray
    from ray._private.ray_constants import PROCESS_TYPE_RAYLET
    from ray.cluster_utils import Cluster

    root, _ = reference
    store = tmp_path / "cluster"
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    try:
        workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
        cluster.wait_for_nodes()
        raylets = [node.all_processes[PROCESS_TYPE_RAYLET][0].process.pid for node in workers]
        proc = start(sweep_command(study_file, store, "--executor", "ray", "--address", cluster.address,
                                   "--retries", "2", "--no-tracking"), sigint_ignored=False)
        try:
            wait_for_work(proc, store)
            deadline = time.time() + 60
            while not (lost := cells_running_under(raylets[0])):
                assert time.time() < deadline and proc.poll() is None, "no cell ran on the first node"
                time.sleep(0.01)
            cluster.remove_node(workers[0], allow_graceful=False)  # as a machine that loses power
            removed_at = time.time()
            retried: set[str] = set()  # seen running on the other node (a short retry may finish unseen)
            while proc.poll() is None and not lost <= retried:
                retried |= cells_running_under(raylets[1]) & lost
                time.sleep(0.01)
            code = proc.wait(timeout=600)
            stderr = proc.stderr.read()
        finally:
            cleanup(proc.pid)
        assert code == 0, stderr[-2000:]
    finally:
        ray.shutdown()
        cluster.shutdown()
    # each job lost with the node ran again on the other one, the only node left: its last cell finished after
    # the loss (seen running there too, unless it was quicker than the /proc poll)
    assert retried <= lost
    jobs = {job.label: job for job in plan(load_study(str(study_file)).cells())}
    finished = {label: max(Store(store).cell_result(hp).finished_at for hp in jobs[label].cells) for label in lost}
    assert all(at > removed_at for at in finished.values()), (finished, removed_at)
    assert results(store) == results(root)
    summary = summary_of(store)
    assert summary["counts"] == {"done": CELLS, "cached": 0, "failed": 0}
    # the retried job resumed from its last saved epoch: no epoch was trained twice by a finished attempt
    assert summary["executed_epochs"] <= summary["minimal_epochs"] == pytest.approx(MINIMAL)
    print(f"jobs retried: {len(lost)} ({', '.join(sorted(lost))}; seen running again: {len(retried)}); epochs "
          f"executed by finished attempts "
          f"{summary['executed_epochs']:.2f}, minimal {MINIMAL:.2f}")


def test_an_iterative_chains_first_round_is_reported_iterative_and_computed_once(tmp_path):
    """A one-shot cell at 0.8 and an iterative chain's first round (also 0.8) are one computation, stored
    once; each is reported under the schedule it declares, so the iterative group keeps its first round."""
    study = tmp_path / "both.yaml"
    study.write_text("task: mnist1d\nepochs_scale: 0.1\nmethods: [lr-rewinding]\nretrain_epochs: [1.5]\n"
                     "densities: [0.8, 0.64]\nschedules: [one-shot, iterative]\nseeds: 1\n")
    store = tmp_path / "store"
    report = run_study(load_study(str(study)), Store(store), InProcess(WorkerContext(str(store))), Progress())
    rows = {(r.schedule, r.round, round(r.target_density, 2)): r.run for r in report.rows}
    assert set(rows) == {("one-shot", 1, 0.8), ("one-shot", 1, 0.64), ("iterative", 1, 0.8), ("iterative", 2, 0.64)}
    assert rows[("iterative", 1, 0.8)] == rows[("one-shot", 1, 0.8)]  # one folder
    assert len(list((tmp_path / "store" / "retrain").glob("*/result.json"))) == 3
    assert report.executed_epochs == pytest.approx(3 + 3 * 1.5)  # the base, then three cells of 1.5 epochs
