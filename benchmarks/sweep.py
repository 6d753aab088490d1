"""CPU-seconds per executed training epoch of a sweep, against a bare PyTorch loop, in one run.

    python benchmarks/sweep.py [--jobs 2] [--preset PRESET] [--profile]

The sweep is a fixed small study on MNIST-1D (or --preset), run by `harness sweep` in a fresh store
as a subprocess: its CPU-seconds are the machine's busy time from its start to its exit (user + system
of every process, so run it on an otherwise idle machine), and its executed epochs are what its
summary reports. The bare loop trains the
same network on the same data with the task's optimizer and batch size, evaluating validation and test
at each epoch's end as TRAIN does, in one thread, in this process. With --profile the same study is
run again in-process on one worker under cProfile, and the functions holding most of its time are
listed, each phase (training steps, evaluation, checkpoint writes, data, tracking, planning) with its share.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import os
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from harness.sweep.executors import WORKER_PRELOAD

STUDY = """\
task: mnist1d
methods: [fine-tuning, lr-rewinding, weight-rewinding]
epochs_scale: 0.2
retrain_epochs: [3, 6]
densities: [0.2]
seeds: 2
"""
# where a sweep's time goes, by the functions that spend it (cumulative time); an indented phase is
# part of the one above it
PHASES = {
    "TRAIN": ("harness/engine/train.py", ("train",)),
    "  evaluation": ("harness/data/tensor_data.py", ("evaluate",)),
    "  masks (W ⊙ m after each step, their gradients)": ("harness/core/masks.py", ("apply", "mask_gradients")),
    "weight and checkpoint writes (those of TRAIN too)": ("harness/storage/store.py", ("atomic_save",)),
    "base training's data generation": ("tasks/mnist1d.py", ("generate",)),
    "result writes": ("harness/storage/store.py", ("atomic_write_json",)),
    "planning": ("harness/sweep/plan.py", ("plan",)),
    "MLflow mirroring": ("harness/tracking/mirror.py", ("_log_once",)),
    "FLOPs counting": ("harness/core/flops.py", ("flops",)),
    "accuracy-vs-compression PNG": ("leaderboard/plots.py", ("study_compression_pngs",)),
    "imports during the run": ("<frozen importlib._bootstrap>", ("_find_and_load",)),
}
# what every sweep pays once, whatever its size: the processes' imports (the driver, and the fork server
# its workers are forked from)
BARE_START = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import torch; "
              "torch.set_num_threads(1); import sweep; sweep.bare_loop(0)")
STARTS = {
    "driver start (import harness.cli.app)": "import harness.cli.app",
    "fork server start (import the workers' modules)": "import " + ", ".join(WORKER_PRELOAD),
}


def bare_loop(epochs: int) -> float:
    """CPU-seconds of a plain loop's ``epochs``: MNIST-1D's 4,000 training sequences, the task's network,
    optimizer and batch size; validation (a fifth of the test set) and test evaluated at each epoch's end."""
    from harness.data.tensor_data import validation_split
    from tasks.mnist1d import generate
    from tasks.spec import get_task

    task = get_task("mnist1d")
    data = generate()
    x_train, y_train = data["x"], data["y"]
    val, test = validation_split(len(data["x_test"]))
    torch.manual_seed(0)
    model = task.make_model()
    opt = task.optimizer.build(model.parameters(), task.schedule.lr)
    generator = torch.Generator().manual_seed(0)
    start = time.process_time()
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(x_train), generator=generator)
        for i in range(0, len(order), task.batch_size):
            batch = order[i : i + task.batch_size]
            loss = nn.functional.cross_entropy(model(x_train[batch]), y_train[batch])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            for split in (val, test):
                xs, ys = data["x_test"][split], data["y_test"][split]
                (model(xs).argmax(1) == ys).float().mean().item()
    return time.process_time() - start


def machine_cpu() -> float:
    """CPU-seconds the whole machine has been busy (``/proc/stat``): every process a sweep starts counts,
    workers forked by a fork server included, which the rusage of its children would miss."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def timed_sweep(study: str, workers: int, store: Path) -> tuple[float, float, float]:
    """(CPU-seconds, executed epochs, wall seconds) of `harness sweep` as a subprocess, on a quiet machine."""
    before, started = machine_cpu(), time.time()
    subprocess.run([sys.executable, "-m", "harness", "sweep", study, "--store", str(store), "--jobs",
                    str(workers), "--no-tracking"], check=True, capture_output=True, text=True)
    wall, cpu = time.time() - started, machine_cpu() - before
    [summary] = store.glob("studies/*/summary.json")
    return cpu, json.loads(summary.read_text())["executed_epochs"], wall


def start_cpu(statement: str) -> float:
    """CPU-seconds of a fresh Python process that runs ``statement`` and exits."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", statement], check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def profile(study: str, store: Path, top: int) -> None:
    from harness.cli.app import main

    profiler = cProfile.Profile()
    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
        profiler.enable()
        main(["sweep", study, "--store", str(store), "--jobs", "1", "--no-tracking"])
        profiler.disable()
    stats = pstats.Stats(profiler)
    total = max(stat[3] for stat in stats.stats.values())  # cumulative time of the outermost call
    print(f"\nprofile of the same study in one process ({total:.1f} s):")
    for phase, (path, names) in PHASES.items():
        spent = sum(stat[3] for (file, _, func), stat in stats.stats.items() if file.endswith(path) and func in names)
        print(f"  {phase:<50} {spent:7.2f} s  {spent / total:6.1%}")
    print(f"\ntop {top} functions by own time:")
    ranked = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)[:top]
    for (file, line, func), stat in ranked:
        print(f"  {stat[2]:7.2f} s  {func} ({Path(file).name}:{line})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--preset", help="a study preset instead of the fixed small study")
    parser.add_argument("--bare-epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3,
                        help="sweeps, each between two bare-loop measurements (this machine's speed drifts)")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--top", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        study = args.preset or str(Path(tmp) / "small.yaml")
        if args.preset is None:
            Path(study).write_text(STUDY)
        bares = [bare_loop(args.bare_epochs) / args.bare_epochs]
        sweeps = []
        for r in range(args.repeats):
            sweeps.append(timed_sweep(study, args.jobs, Path(tmp) / f"store{r}"))
            bares.append(bare_loop(args.bare_epochs) / args.bare_epochs)
        ratios = [cpu / epochs / ((before + after) / 2) for (cpu, epochs, _), before, after
                  in zip(sweeps, bares, bares[1:], strict=False)]
        middle = sorted(range(len(ratios)), key=ratios.__getitem__)[len(ratios) // 2]
        cpu, epochs, wall = sweeps[middle]
        bare = (bares[middle] + bares[middle + 1]) / 2
        per_epoch = cpu / epochs
        print(f"{args.preset or 'small study'}: {epochs:g} epochs executed in {wall:.1f} s wall on "
              f"{args.jobs} worker(s), {os.cpu_count()} cores; the median of {args.repeats} sweeps")
        print(f"  sweep      {per_epoch:.3f} CPU-s per executed epoch")
        print(f"  bare loop  {bare:.3f} CPU-s per epoch (1 thread, the same evaluation; before and after that sweep)")
        print(f"  ratio      {per_epoch / bare:.2f}x   (each sweep: {', '.join(f'{x:.2f}' for x in ratios)})")
        bare_start = start_cpu(BARE_START)
        as_program = (bare_start + bare * epochs) / epochs
        print(f"  the bare loop as a program, its start counted ({bare_start:.2f} CPU-s: python, torch, the data, "
              f"its optimizer): {as_program:.3f} CPU-s per epoch over {epochs:g} epochs, "
              f"ratio {per_epoch / as_program:.2f}x")
        starts = {name: start_cpu(statement) for name, statement in STARTS.items()}
        fixed = sum(starts.values())
        print("paid once per sweep:")
        for name, seconds in starts.items():
            print(f"  {name:<48} {seconds:5.2f} CPU-s")
        print(f"  with those set aside: {(cpu - fixed) / epochs:.3f} CPU-s per epoch, "
              f"{(cpu - fixed) / epochs / bare:.2f}x the bare loop")
        if args.profile:
            profile(study, Path(tmp) / "profiled", args.top)


if __name__ == "__main__":
    main()
