"""A damaged store, a full disk, a folder without permission, a killed lock holder: each named in one
line, nothing computed lost, the work recomputed to the same bits; and files that are byte-identical
across identical runs."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import filelock
import pytest
import torch
from mlflow.tracking import MlflowClient

from harness.cli.app import main
from harness.storage.paths import LOCK
from harness.storage.store import FILE_MODE, Store, atomic_save
from tests.conftest import QUICK

RUN = ["run", "weight-rewinding", "mnist1d", "--epochs-scale", str(QUICK), "-t", "1.5", "--density", "0.5"]
REWIND_STEP = 48  # W_{T-t} for t = 1.5 of T = 3 epochs of 32 steps


def cell_folder(root: Path) -> Path:
    [folder] = (root / "retrain").iterdir()
    return folder


def base_folder(root: Path) -> Path:
    [folder] = (root / "base").iterdir()
    return folder


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("faults-reference")
    assert main([*RUN, "--store", str(root), "--no-tracking"]) == 0
    return root, json.loads((cell_folder(root) / "result.json").read_text())


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def other_weights(path: Path) -> None:
    weights = torch.load(path, weights_only=True)
    name = next(iter(weights))
    weights[name] = weights[name] + 1
    atomic_save(path, weights)


def one_value(path: Path) -> None:
    """One value of one tensor changed, the file rewritten by torch as it is: it still loads."""
    state = torch.load(path, weights_only=True)
    model = state["model"]
    name = next(k for k, v in model.items() if v.is_floating_point() and v.numel())
    model[name].view(-1)[0] += 1e-3
    torch.save(state, path)


def garbage(path: Path) -> None:
    path.write_bytes(b"\x00garbage, not what was stored\xff")


def pretend_killed_mid_cell(root: Path) -> Path:
    """The cell's folder as a killed run leaves it: no result yet, a resume.pt."""
    folder = cell_folder(root)
    for name in ("result.json", "weights.pt", "mask.pt"):
        (folder / name).unlink()
    return folder / "resume.pt"


DAMAGE = {
    # name: (which file, what is done to it, whether the cell is recomputed)
    "cell result.json truncated": (lambda r: cell_folder(r) / "result.json", truncate, True),
    "cell result.json {}": (lambda r: cell_folder(r) / "result.json", lambda p: p.write_text("{}"), True),
    "base result.json truncated": (lambda r: base_folder(r) / "result.json", truncate, False),
    "base result.json binary": (lambda r: base_folder(r) / "result.json", garbage, False),
    "weights.pt garbage": (lambda r: cell_folder(r) / "weights.pt", garbage, True),
    "weights.pt other weights": (lambda r: cell_folder(r) / "weights.pt", other_weights, True),
    "mask.pt garbage": (lambda r: cell_folder(r) / "mask.pt", garbage, True),
    "rewind checkpoint garbage": (
        lambda r: (shutil.rmtree(cell_folder(r)), base_folder(r) / "checkpoints" / f"step_{REWIND_STEP:08d}.pt")[1],
        garbage, True),
    "resume.pt garbage": (pretend_killed_mid_cell, garbage, True),
    # a change that still loads: found by the SHA-256 recorded when the file was written
    "rewind checkpoint one value": (
        lambda r: (shutil.rmtree(cell_folder(r)), base_folder(r) / "checkpoints" / f"step_{REWIND_STEP:08d}.pt")[1],
        one_value, True),
}


def test_every_tensor_file_the_store_reads_back_is_checked_against_its_digest(tmp_path):
    """The mechanism behind the base checkpoint's case above, for any file ``atomic_save`` writes
    (resume.pt, weights, masks): a change that still loads is a DamagedFile; a file from before
    digests (no NAME.sha256) is read as it is; an export carries no digest."""
    from harness.core.errors import DamagedFile
    from harness.storage.store import digest_path, load

    path = tmp_path / "resume.pt"
    atomic_save(path, {"model": {"w": torch.ones(3)}, "step": 7})
    assert digest_path(path).read_text() == hashlib.sha256(path.read_bytes()).hexdigest()
    assert load(path, keys=("model",))["step"] == 7
    one_value(path)
    assert torch.load(path, weights_only=True)["model"]["w"][0] != 1  # it still loads
    with pytest.raises(DamagedFile, match="differ from the SHA-256 recorded"):
        load(path)
    digest_path(path).unlink()
    assert load(path)["step"] == 7
    atomic_save(tmp_path / "exported.pt", {"w": torch.ones(1)}, digest=False)
    assert not digest_path(tmp_path / "exported.pt").exists()


@pytest.mark.parametrize("case", DAMAGE, ids=list(DAMAGE))
def test_a_damaged_file_is_named_set_aside_and_recomputed(case, reference, tmp_path, capsys):
    source, expected = reference
    root = tmp_path / "store"
    shutil.copytree(source, root)
    where, damage, recomputed = DAMAGE[case]
    path = where(root)
    damage(path)
    capsys.readouterr()
    assert main([*RUN, "--store", str(root), "--no-tracking"]) == 0
    captured = capsys.readouterr()
    named = [line for line in captured.err.splitlines() if "damaged file" in line]
    assert len(named) == 1 and str(path) in named[0] and "moved to" in named[0], captured.err
    assert "Traceback" not in captured.err
    assert list(path.parent.glob(f"{path.name}.damaged-*")), "the damaged file is kept aside"
    result = json.loads((cell_folder(root) / "result.json").read_text())
    assert (result["weights_sha256"], result["val_acc"], result["test_acc"]) == (
        expected["weights_sha256"], expected["val_acc"], expected["test_acc"])
    assert ("cach" not in captured.out) == recomputed, captured.out  # the table may shorten it to "cach…"
    # and the store is whole again: a second run finds everything intact
    assert main([*RUN, "--store", str(root), "--no-tracking"]) == 0
    assert "damaged" not in capsys.readouterr().err


def test_a_damaged_mlflow_marker_never_stops_a_run_and_its_run_is_found_again(reference, tmp_path, capsys):
    root = tmp_path / "store"
    shutil.copytree(reference[0], root)
    assert main([*RUN, "--store", str(root)]) == 0  # mirrored: the cell's folder now names its MLflow run
    marker = cell_folder(root) / "mlflow.json"
    garbage(marker)
    capsys.readouterr()
    assert main([*RUN, "--store", str(root)]) == 0
    captured = capsys.readouterr()
    assert f"damaged file {marker}" in captured.err and "[ok]" in captured.out, captured
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    [experiment] = client.search_experiments(filter_string="name = 'mnist1d'")
    runs = client.search_runs([experiment.experiment_id], f"tags.`harness.folder` = '{cell_folder(root)}'")
    assert len(runs) == 1, "the run was found again by its tags, not logged twice"
    assert json.loads(marker.read_text())  # and remembered again


def test_an_orphan_running_run_is_closed_as_failed_on_rerun(reference, tmp_path):
    """A server that dies while a cell is logged leaves its run RUNNING and no marker."""
    root = tmp_path / "store"
    shutil.copytree(reference[0], root)
    assert main([*RUN, "--store", str(root)]) == 0
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    [experiment] = client.search_experiments(filter_string="name = 'mnist1d'")
    folder = cell_folder(root)
    [run] = client.search_runs([experiment.experiment_id], f"tags.`harness.folder` = '{folder}'")
    client.update_run(run.info.run_id, status="RUNNING")
    (folder / "mlflow.json").unlink()
    assert main([*RUN, "--store", str(root)]) == 0
    runs = {r.info.run_id: r.info.status for r in client.search_runs(
        [experiment.experiment_id], f"tags.`harness.folder` = '{folder}'")}
    assert runs[run.info.run_id] == "FAILED"
    assert sorted(runs.values()) == ["FAILED", "FINISHED"]


def test_identical_runs_write_identical_files_with_one_mode(tmp_path):
    """Two stores, two processes (one with a restrictive umask): every tensor and JSON file but the
    timings is byte-identical, and every file of the store has the same mode."""
    roots = [tmp_path / "a", tmp_path / "b"]
    for root, umask in zip(roots, ("022", "077"), strict=True):
        done = subprocess.run(["sh", "-c", f'umask {umask} && exec "$@"', "sh", sys.executable, "-m", "harness",
                               *RUN, "--store", str(root), "--no-tracking"], capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr
    files = [{str(p.relative_to(root)): p for p in root.rglob("*") if p.is_file()} for root in roots]
    assert files[0].keys() == files[1].keys()
    timed = {"result.json"}  # its "seconds" differ
    for name, path in files[0].items():
        if Path(name).name not in timed:
            assert path.read_bytes() == files[1][name].read_bytes(), name
        for p in (path, files[1][name]):
            assert p.stat().st_mode & 0o777 == FILE_MODE, f"{p} has mode {p.stat().st_mode & 0o777:o}"
    assert any(name.endswith(".pt") for name in files[0])


def test_a_store_folder_without_permission_is_one_line_before_any_work(reference, tmp_path):
    """Root ignores permission bits: as root, the command runs without the capability that lets it."""
    root = tmp_path / "store"
    shutil.copytree(reference[0], root)
    retrain = root / "retrain"
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}
    os.chmod(retrain, 0o555)
    drop = ["setpriv", "--bounding-set=-dac_override", "--"] if os.geteuid() == 0 else []
    try:
        done = subprocess.run([*drop, sys.executable, "-m", "harness", *RUN, "-t", "3", "--store", str(root),
                               "--no-tracking"], capture_output=True, text=True, timeout=300)
    finally:
        os.chmod(retrain, 0o755)
    assert done.returncode == 2, done.stderr
    assert done.stderr == (f"error: results store folder '{retrain}' is not writable (Permission denied); "
                           "make it writable or pass --store a writable folder\n")
    assert before == {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


def namespaces_work() -> bool:
    try:
        return subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "true"],
                              capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@pytest.mark.skipif(not namespaces_work(), reason="needs unprivileged user and mount namespaces (a private tmpfs)")
def test_a_full_disk_is_one_line_and_the_rerun_resumes(reference, tmp_path):
    """A 1 MiB tmpfs holds about four of the base network's checkpoints; after it is grown, the same
    command finishes the work with the bits of an uninterrupted run."""
    mount, logs = tmp_path / "disk", tmp_path / "logs"
    mount.mkdir()
    logs.mkdir()
    harness = f"{sys.executable} -m harness {' '.join(RUN)} --store {mount}/store --no-tracking"
    script = f"""
        mount -t tmpfs -o size=1m tmpfs {mount}
        {harness} > {logs}/out1 2> {logs}/err1; echo $? > {logs}/rc1
        find {mount}/store -name '*.pt' -o -name '*.json' | sort > {logs}/kept1
        mount -o remount,size=64m {mount}
        {harness} > {logs}/out2 2> {logs}/err2; echo $? > {logs}/rc2
        cp {mount}/store/retrain/*/result.json {logs}/result.json
    """
    subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script], check=True, timeout=600,
                   cwd=tmp_path)
    read = lambda name: (logs / name).read_text()  # noqa: E731
    assert read("rc1").strip() == "1"
    last = read("err1").strip().splitlines()[-1]
    assert last.startswith(f"error: no space left on {mount} while writing {mount}/store/"), read("err1")
    assert last.endswith("nothing computed so far is lost: free space and rerun the same command to resume")
    assert "Traceback" not in read("err1")
    assert "checkpoints/step_00000000.pt" in read("kept1"), "what was written before the disk filled up is kept"
    assert read("rc2").strip() == "0", read("err2")
    result = json.loads(read("result.json"))
    assert (result["weights_sha256"], result["test_acc"]) == (reference[1]["weights_sha256"], reference[1]["test_acc"])


def test_a_lock_left_by_a_killed_process_is_recovered(tmp_path):
    folder = Store(tmp_path).root / "retrain" / "some-cell"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from harness.storage.store import exclusive\n"
        f"with exclusive(Path({str(folder)!r})):\n    print('held', flush=True); time.sleep(600)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(filelock.Timeout):
            filelock.FileLock(folder / LOCK).acquire(timeout=0.2)
    finally:
        holder.kill()
        holder.wait()
    started = time.time()
    lock = filelock.FileLock(folder / LOCK)
    lock.acquire(timeout=10)
    lock.release()
    assert time.time() - started < 5
