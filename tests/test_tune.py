"""`harness tune`: Optuna searches over a method's declared space on MNIST-1D, with real storages."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState
from typer.testing import CliRunner

from harness.cli.app import app
from harness.core.errors import HarnessError
from harness.tune import space as tune_space
from harness.tune import storage as tune_storage
from methods.spec import get_method
from tests.conftest import QUICK
from tests.processes import STOP_CASES_QUICK, cleanup, gone_within, session, start, wait_for_work

cli = CliRunner()
T = 30 * QUICK  # MNIST-1D's T at --epochs-scale QUICK
QUICK_ARGS = ["--epochs-scale", str(QUICK), "--density", "0.1"]


def harness(*args: str):
    return cli.invoke(app, list(args))


def load(storage: str, name: str | None = None) -> optuna.Study:
    names = optuna.get_all_study_names(storage)
    return optuna.load_study(study_name=name or names[0], storage=storage)


def finished(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))


# -- the search space ---------------------------------------------------------------------------


def test_each_method_declares_its_space_and_list_space_prints_it():
    result = harness("tune", "--list-space", "fine-tuning")
    assert result.exit_code == 0, result.output
    assert "lr_scale" in result.output and "[0.1, 100]" in result.output and "log scale" in result.output
    result = harness("tune", "--list-space", "gradual", "mnist1d")
    assert result.exit_code == 0, result.output
    for name in ("begin", "span", "every", "integer in [1, 1000]", "one of 3, 6,", "(T = 30)"):
        assert name in result.output
    scaled = harness("tune", "--list-space", "gradual", "mnist1d", "--epochs-scale", "0.2")
    assert scaled.exit_code == 0, scaled.output
    assert "(T = 6, --epochs-scale 0.2)" in scaled.output and "one of 0.6, 1.2," in scaled.output
    searched, fixed = tune_space.parse_space(get_method("fine-tuning"), 30.0, [])
    assert set(searched) == {"lr_scale", "t"} and fixed == {}
    assert searched["lr_scale"].log and searched["t"].choices == tuple(float(3 * k) for k in range(1, 11))


def test_space_entries_narrow_the_declared_space():
    method = get_method("gradual")
    searched, fixed = tune_space.parse_space(method, 30.0, ["span=0.2:0.6", "every=5,50", "t=15", "begin=0"])
    assert (searched["span"].low, searched["span"].high) == (0.2, 0.6)
    assert searched["every"].choices == (5.0, 50.0)
    assert fixed == {"t": 15.0, "begin": 0.0} and set(searched) == {"span", "every"}


BAD_SPACES = {
    "unknown name": ("fine-tuning", ["foo=1"], "fine-tuning has no searchable parameter 'foo'; "
                                               "searchable: lr_scale, t"),
    "inverted range": ("fine-tuning", ["lr_scale=5:1"], "low must be below high"),
    "outside the declared range": ("fine-tuning", ["lr_scale=0.01:1"],
                                   "lr_scale must be a number in [0.1, 100], got 0.01"),
    "not a number": ("fine-tuning", ["lr_scale=fast"], "'fast' is not a number"),
    "no value": ("fine-tuning", ["lr_scale="], "expected NAME=LOW:HIGH, NAME=A,B,C or NAME=VALUE"),
    "t of zero": ("fine-tuning", ["t=0,3"], "t must be > 0"),
    "t beyond T": ("lr-rewinding", ["t=3:40"], "valid: 0 <= t <= T = 30"),
    "integer": ("gradual", ["every=2.5"], "every must be an integer in [1, 1000]"),
    "nothing left": ("fine-tuning", ["lr_scale=1", "t=15"], "nothing is left to search"),
}


@pytest.mark.parametrize("case", BAD_SPACES, ids=list(BAD_SPACES))
def test_a_bad_search_space_is_one_line(case, tmp_path):
    method, entries, message = BAD_SPACES[case]
    args = [a for e in entries for a in ("--space", e)]
    result = harness("tune", method, "mnist1d", *args, "--store", str(tmp_path))
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.output
    assert not (tmp_path / "base").exists()  # nothing trained


BAD_STORAGES = {
    "not a URL": (["--storage", "studies.db"], "is not a database URL; valid: sqlite:///PATH"),
    "unknown dialect": (["--storage", "redis://localhost"], "is not a database URL"),
    "unreachable database": (["--storage", "postgresql://me:secret@127.0.0.1:1/optuna"],
                             "cannot open Optuna storage postgresql://me:***@127.0.0.1:1/optuna (OperationalError"),
    "missing folder": (["--storage", "sqlite:////nonexistent-dir/x/optuna.db"], "unable to open database file"),
    "both": (["--storage", "sqlite:///a.db", "--journal", "a.log"], "give --storage or --journal, not both"),
    "pruner": (["--pruner", "sometimes"], "--pruner 'sometimes' is not valid; valid: median, hyperband, none"),
    "trials": (["--trials", "0"], "--trials must be a positive integer"),
    "variant name": (["--save-as", "lr-rewinding"], "is taken by a registered method"),
}


@pytest.mark.parametrize("case", BAD_STORAGES, ids=list(BAD_STORAGES))
def test_bad_storage_and_options_are_one_line(case, tmp_path):
    args, message = BAD_STORAGES[case]
    result = harness("tune", "fine-tuning", "mnist1d", *args, "--store", str(tmp_path))
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.output
    assert "secret" not in result.output


# -- searches ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """A four-trial search of fine-tuning's learning rate and t, then resumed to six."""
    store = tmp_path_factory.mktemp("tune-store")
    args = ["tune", "fine-tuning", "mnist1d", *QUICK_ARGS, "--store", str(store), "--seed", "0",
            "--sampler-seed", "1", "--space", "t=1.5,3"]
    first = harness(*args, "--trials", "4")
    assert first.exit_code == 0, first.output
    study = load(f"sqlite:///{store / 'optuna.db'}")
    after_first = [(t.number, t.params) for t in finished(study)]
    second = harness(*args, "--trials", "6", "--save-as", "ft-tuned")
    assert second.exit_code == 0, second.output
    return store, after_first, second.output


def test_a_search_finds_a_learning_rate_at_least_as_good_as_the_default(searched, tmp_path):
    store, _, output = searched
    study = load(f"sqlite:///{store / 'optuna.db'}")
    default = harness("run", "fine-tuning", "mnist1d", *QUICK_ARGS, "-t", "1.5", "--store", str(tmp_path),
                      "--no-tracking")
    assert default.exit_code == 0, default.output
    default_val = json.loads(next((tmp_path / "retrain").glob("*/result.json")).read_text())["val_acc"]
    assert study.best_value >= default_val
    assert study.trials[0].params == {"lr_scale": 1.0, "t": 1.5}  # the defaults go first
    assert study.trials[0].value == default_val  # and give the very cell `harness run` gives
    assert len({t.params["lr_scale"] for t in study.trials}) > 3  # the search explored
    assert "best configuration: lr_scale = " in output and "test accuracy over seeds 0" in output


def test_rerunning_resumes_the_same_study_and_adds_trials(searched):
    store, after_first, _ = searched
    assert len(optuna.get_all_study_names(f"sqlite:///{store / 'optuna.db'}")) == 1
    study = load(f"sqlite:///{store / 'optuna.db'}")
    trials = finished(study)
    assert len(after_first) == 4 and len(trials) == 6
    assert [(t.number, t.params) for t in trials[:4]] == after_first  # the first four kept as they were
    assert sorted(t.number for t in trials) == list(range(6))
    # every trial is a cell of the search's own store; the base network is the main store's, trained once
    assert len(list((store / "base").iterdir())) == 1
    assert not (store / "tune" / study.study_name / "base").exists()


def test_every_trial_is_an_mlflow_run_and_the_best_is_marked(searched):
    store, *_ = searched
    study = load(f"sqlite:///{store / 'optuna.db'}")
    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    exp = client.get_experiment_by_name(f"tune {study.study_name}")
    runs = client.search_runs([exp.experiment_id])
    assert sorted(int(r.data.tags["optuna.trial"]) for r in runs) == [t.number for t in study.trials]
    assert {r.data.tags["optuna.study"] for r in runs} == {study.study_name}
    best = [r for r in runs if r.data.tags.get("best") == "true"]
    assert [int(r.data.tags["optuna.trial"]) for r in best] == [study.best_trial.number]
    assert exp.tags["best_trial"] == str(study.best_trial.number)
    assert "test_acc_median" in best[0].data.metrics
    # one vocabulary with the store's records, and dashboards name the objective
    assert study.metric_names == ["val_acc"]
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    assert {"task", "seed", "method", "target_density", "retraining_epochs"} <= set(best[0].data.params)
    assert float(best[0].data.params["target_density"]) == 0.1
    states = {int(r.data.tags["optuna.trial"]): (r.info.status, r.data.tags["state"]) for r in runs}
    for t in study.trials:
        expected = ("FINISHED", "COMPLETE") if t.state == TrialState.COMPLETE else ("KILLED", "PRUNED")
        assert states[t.number] == expected
    # per-epoch validation accuracy is the trial's history in MLflow and in Optuna alike
    history = client.get_metric_history(best[0].info.run_id, "val_acc")
    assert {m.step: m.value for m in history} == study.best_trial.intermediate_values


def test_the_saved_variant_runs_in_run_and_studies(searched, tmp_path):
    store, *_ = searched
    study = load(f"sqlite:///{store / 'optuna.db'}")
    variant = json.loads((store / "variants" / "ft-tuned.json").read_text())
    assert variant["method"] == "fine-tuning" and variant["origin"]["study"] == study.study_name
    lr = study.best_params["lr_scale"]
    assert variant["params"] == ({"lr_scale": lr} if lr != 1.0 else {})
    assert variant["retrain_fraction"] == study.best_params["t"] / T
    # `harness run ft-tuned` is the evaluation the search already ran on seed 0: cached, same numbers
    result = harness("run", "ft-tuned", "mnist1d", *QUICK_ARGS, "--store", str(store), "--no-tracking")
    assert result.exit_code == 0, result.output
    assert "ft-tuned on mnist1d" in result.output
    rows = [json.loads(p.read_text()) for p in (store / "retrain").glob("*/result.json")]  # no new cell
    assert [(r["variant"], r["method"], r["val_acc"]) for r in rows] == [("ft-tuned", "fine-tuning", study.best_value)]
    # a study may list it next to the registered methods
    spec = tmp_path / "study.yaml"
    spec.write_text(f"task: mnist1d\nmethods: [ft-tuned, fine-tuning]\nretrain_epochs: [{T * 0.5:g}]\n"
                    f"densities: [0.1]\nseeds: [0]\nepochs_scale: {QUICK}\n")
    dry = harness("sweep", str(spec), "--store", str(store), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "2 cells in 3 jobs" in dry.output and "2 jobs cached" in dry.output and "1 to run" in dry.output
    from harness.analysis.results_table import read_store

    assert set(read_store(store)["method"]) == {"ft-tuned"}  # trials stay out of the results tables


def test_the_printed_commands_do_what_they_say(searched):
    """The run command printed after --save-as carries every option the search ran with, so following it
    reads back the evaluation (no base network or cell trained again); the search names its dashboard."""
    import shlex

    store, _, output = searched
    line = next(line for line in output.splitlines() if line.startswith("saved variant ft-tuned"))
    words = shlex.split(line.split(": harness ", 1)[1])
    assert words[:3] == ["run", "ft-tuned", "mnist1d"] and "--epochs-scale" in words and "--density" in words
    before = sorted(p.name for p in (store / "retrain").iterdir()), sorted(p.name for p in (store / "base").iterdir())
    result = harness(*words)
    assert result.exit_code == 0, result.output
    assert "cached" in result.output
    assert (sorted(p.name for p in (store / "retrain").iterdir()), sorted(p.name for p in (store / "base").iterdir())
            ) == before
    assert f"browse the trials: optuna-dashboard sqlite:///{store / 'optuna.db'}" in output


def test_a_hopeless_trial_is_pruned_and_recorded_as_pruned(tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    args = ["tune", "fine-tuning", "mnist1d", *QUICK_ARGS, "--store", str(tmp_path), "--seed", "0",
            "--space", "t=3", "--study-name", "prune-me"]
    # three sound trials, then a learning rate 1/10 of S[T]: stuck near the pruned network's accuracy
    study = optuna.create_study(storage=storage, study_name="prune-me", direction="maximize")
    for lr in (1.0, 10.0, 30.0, 0.1):
        study.enqueue_trial({"lr_scale": lr})
    result = harness(*args, "--trials", "4")
    assert result.exit_code == 0, result.output
    study = load(storage, "prune-me")
    states = [t.state for t in study.trials]
    assert states == [TrialState.COMPLETE] * 3 + [TrialState.PRUNED], states
    pruned = study.trials[3]
    assert pruned.intermediate_values and max(pruned.intermediate_values) < 3 * 32  # stopped before its end
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.get_experiment_by_name("tune prune-me")
    run = client.search_runs([exp.experiment_id], "tags.`optuna.trial` = '3'")[0]
    assert (run.info.status, run.data.tags["state"]) == ("KILLED", "PRUNED")
    assert "1 pruned" in result.output
    # the cell keeps its last finished epoch: running that configuration later resumes from there
    cell = tmp_path / "tune" / "prune-me" / "retrain" / pruned.user_attrs["cell"]
    assert (cell / "resume.pt").exists() and not (cell / "result.json").exists()


def tune_command(store: Path, storage_args: list[str], trials: int, t: str = "1.5,3") -> list[str]:
    return [sys.executable, "-m", "harness", "tune", "fine-tuning", "mnist1d", *QUICK_ARGS, "--store", str(store),
            *storage_args, "--trials", str(trials), "--seed", "0", "--no-tracking", "--study-name", "shared",
            "--space", f"t={t}"]


@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_two_processes_share_one_study_without_duplicates(kind, tmp_path):
    if kind == "journal":
        storage_args = ["--journal", str(tmp_path / "optuna.log")]
        from optuna.storages.journal import JournalFileBackend

        storage = optuna.storages.JournalStorage(JournalFileBackend(str(tmp_path / "optuna.log")))
    else:
        storage = f"sqlite:///{tmp_path / 'shared.db'}"
        storage_args = ["--storage", storage]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(tune_command(tmp_path, storage_args, 6), env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    study = optuna.load_study(study_name="shared", storage=storage)
    done = finished(study)
    assert len(done) == 6
    assert sorted(t.number for t in done) == list(range(len(done)))
    assert len({json.dumps(t.params, sort_keys=True) for t in done}) == 6  # no configuration ran twice
    assert len({t.user_attrs["pid"] for t in done}) == 2  # both processes did part of the work
    surplus = [t for t in study.trials if t.user_attrs.get("surplus")]
    assert all(t.state == TrialState.FAIL for t in surplus)
    assert len(study.trials) == 6 + len(surplus)


ASK_AND_TELL = """
import json, sys, warnings
import optuna
from harness.tune.storage import rdb_storage
optuna.logging.set_verbosity(optuna.logging.ERROR)
warnings.simplefilter("ignore")
study = optuna.load_study(study_name="race", storage=rdb_storage(sys.argv[1]))
failed = 0
for _ in range(60):
    trial = study.ask()  # takes a waiting (enqueued) trial first
    try:
        study.tell(trial, 0.0)
    except RuntimeError:  # "Cannot tell a COMPLETE trial": the other process had taken it too
        failed += 1
print(json.dumps(failed))
"""


def test_two_processes_never_take_the_same_waiting_trial_from_sqlite(tmp_path):
    """SQLite ignores SELECT ... FOR UPDATE: without BEGIN IMMEDIATE two processes both take one enqueued
    trial, and one of them then cannot tell it (a few in each such run here, none with it)."""
    url = f"sqlite:///{tmp_path / 'race.db'}"
    study = optuna.create_study(study_name="race", storage=tune_storage.rdb_storage(url))
    for x in range(100):
        study.enqueue_trial({"x": x})
    procs = [subprocess.Popen([sys.executable, "-c", ASK_AND_TELL, url], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "OMP_NUM_THREADS": "1"}) for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert [json.loads(o) for o in outputs] == [0, 0]
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(done) == 120 and len({t.number for t in done}) == 120


def test_a_trial_lost_with_its_process_runs_again_and_resumes(tmp_path):
    """A killed search leaves a RUNNING trial; the next run fails it, queues its values again, and the
    cell resumes from its last finished epoch."""
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    proc = subprocess.Popen(tune_command(tmp_path, ["--storage", storage], 2, t="3"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    resume = []
    deadline = time.time() + 300
    while time.time() < deadline and not resume:  # kill it once a trial has a finished epoch on disk
        resume = list((tmp_path / "tune" / "shared" / "retrain").glob("*/resume.pt"))
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    assert resume, "no trial reached an epoch's end"
    study = load(storage, "shared")
    lost = [t for t in study.trials if t.state == TrialState.RUNNING]
    assert len(lost) == 1 and lost[0].user_attrs["host"] == socket.gethostname()
    result = harness("tune", "fine-tuning", "mnist1d", *QUICK_ARGS, "--store", str(tmp_path), "--storage", storage,
                     "--trials", "2", "--seed", "0", "--no-tracking", "--study-name", "shared", "--space", "t=3")
    assert result.exit_code == 0, result.output
    assert f"trial {lost[0].number} was lost with its process: queued again" in result.output
    study = load(storage, "shared")
    retry = [t for t in study.trials if t.user_attrs.get("retry_of") == lost[0].number]
    assert len(retry) == 1 and retry[0].params == lost[0].params and retry[0].state == TrialState.COMPLETE
    assert study.trials[lost[0].number].state == TrialState.FAIL
    assert len(finished(study)) == 2


@pytest.mark.parametrize(("stop", "sigint_ignored"), STOP_CASES_QUICK)
def test_a_stop_signal_ends_a_search_whatever_the_sigint_it_inherited_and_the_rerun_finishes_it(tmp_path, stop,
                                                                                                 sigint_ignored):
    storage = ["--storage", f"sqlite:///{tmp_path / 'optuna.db'}"]
    proc = start(tune_command(tmp_path, storage, 2, t="3"), sigint_ignored)
    try:
        wait_for_work(proc, tmp_path, "tune/shared/retrain/*/resume.pt")  # mid-trial
        os.kill(proc.pid, stop)
        code = proc.wait(timeout=30)
        stderr = proc.stderr.read()
        assert gone_within(proc.pid, 10), f"left behind: {session(proc.pid)}"
    finally:
        cleanup(proc.pid)
    assert code == 128 + stop and "Traceback" not in stderr, stderr[-2000:]
    assert stderr.strip().splitlines()[-1] == (f"stopped by {signal.Signals(stop).name}: what is finished is stored; "
                                              "rerun the same command to resume")
    done = subprocess.run(tune_command(tmp_path, storage, 2, t="3"), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(finished(load(storage[1], "shared"))) == 2


def test_open_storage_names_what_it_opened(tmp_path):
    _, label = tune_storage.open_storage(None, None, tmp_path / "optuna.db")
    assert label == f"sqlite:///{tmp_path / 'optuna.db'}"
    _, label = tune_storage.open_storage(None, tmp_path / "j" / "study.log", tmp_path / "x.db")
    assert label == f"journal {tmp_path / 'j' / 'study.log'}"
    with pytest.raises(HarnessError, match="not a database URL"):
        tune_storage.open_storage("file.db", None, tmp_path / "x.db")


# -- PostgreSQL, when this machine has it --------------------------------------------------------


@pytest.fixture
def postgres():
    """A real PostgreSQL server in a temporary cluster (skipped where PostgreSQL is not installed)."""
    if shutil.which("initdb") is None or shutil.which("pg_ctl") is None:
        pytest.skip("PostgreSQL (initdb, pg_ctl) is not installed here")
    root = Path(tempfile.mkdtemp(prefix="harness-pg-"))  # not under pytest's 0700 folder: the server's user reads it
    data = root / "pg"
    data.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        as_user = ["runuser", "-u", "postgres", "--"]
        root.chmod(0o755)
        shutil.chown(data, "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run([*as_user, "initdb", "-D", str(data), "-U", "harness", "--auth=trust"], check=True,
                   capture_output=True)
    subprocess.run([*as_user, "pg_ctl", "-D", str(data), "-o", f"-p {port} -k {data} -h 127.0.0.1", "-w",
                    "-l", str(data / "log"), "start"], check=True, capture_output=True)
    try:
        subprocess.run([*as_user, "createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "harness", "optuna"],
                       check=True, capture_output=True)
        yield f"postgresql://harness@127.0.0.1:{port}/optuna"
    finally:
        subprocess.run([*as_user, "pg_ctl", "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def test_a_study_on_postgresql(postgres, tmp_path):
    store = tmp_path / "store"
    result = harness("tune", "fine-tuning", "mnist1d", *QUICK_ARGS, "--store", str(store), "--storage", postgres,
                     "--trials", "2", "--seed", "0", "--no-tracking", "--space", "t=1.5")
    assert result.exit_code == 0, result.output
    study = load(postgres)
    assert len(finished(study)) == 2 and study.trials[0].params == {"lr_scale": 1.0}
