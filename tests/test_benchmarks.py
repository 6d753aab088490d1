"""The GPU benchmarks run on CPU, so they are ready the first time a GPU is lent (their figures are not checked)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def script(*args: str) -> str:
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_gpu_epoch_prints_an_epoch_and_its_share_of_the_peak():
    out = script("benchmarks/gpu_epoch.py", "--device", "cpu", "--images", "256", "--batch", "64",
                 "--peak-tflops", "1")
    assert "cifar10-resnet56, one epoch of 256 images, batch 64, bf16, channels_last, on cpu" in out
    seconds = float(re.search(r"epoch\s+([\d.]+) s", out).group(1))
    rate = float(re.search(r"images/s\s+([\d,]+)", out).group(1).replace(",", ""))
    assert seconds > 0 and rate > 0
    # 3 x the forward FLOPs of ResNet-56 (about 250 MFLOPs an image) at that rate, against the given peak
    flops = float(re.search(r"\(3 x (\d+) MFLOPs per image\)", out).group(1))
    assert 200 < flops < 300
    achieved = float(re.search(r"model FLOPs\s+([\d.]+) TFLOP/s", out).group(1))
    assert abs(achieved - 3 * flops * 1e6 * rate / 1e12) < 0.01
    assert "of the 1 TFLOP/s bf16 peak" in out


def test_train_step_runs_on_the_device_it_is_given():
    out = script("benchmarks/train_step.py", "--steps", "2", "--repeats", "1", "--device", "cpu", "--bf16")
    assert "device cpu" in out
    for variant in ("bare-nchw", "bare-channels-last", "harness", "bare-cl-bf16", "harness-bf16"):
        assert re.search(rf"^{variant}\s+\d+\s+[\d.]+x\s+[\d.]+x$", out, re.MULTILINE), variant


@pytest.mark.slow  # a sweep against a bare loop, 45 s on 2 cores
def test_sweep_benchmark_prints_its_ratios_and_where_the_time_goes():
    out = script("benchmarks/sweep.py", "--repeats", "1", "--bare-epochs", "1", "--profile", "--top", "3")
    sweep = float(re.search(r"sweep\s+([\d.]+) CPU-s per executed epoch", out).group(1))
    bare = float(re.search(r"bare loop\s+([\d.]+) CPU-s per epoch", out).group(1))
    ratio = float(re.search(r"ratio\s+([\d.]+)x", out).group(1))
    assert sweep > 0 and bare > 0 and abs(ratio - sweep / bare) < 0.01
    assert re.search(r"small study: 60 epochs executed", out)  # the fixed study's minimal epoch count
    for once in ("driver start", "fork server start"):
        assert re.search(rf"{once}.*\s([\d.]+) CPU-s", out), once
    # the profile's phases are shares of one in-process run; TRAIN holds most of it
    train = float(re.search(r"^  TRAIN\s+[\d.]+ s\s+([\d.]+)%", out, re.MULTILINE).group(1))
    assert 50 < train < 100
    assert len(re.findall(r"^\s+[\d.]+ s  \S", out, re.MULTILINE)) == 3


def test_lm_train_benchmark_prints_tokens_per_second_against_the_bare_loop():
    out = script("benchmarks/lm_train.py", "--steps", "2", "--repeats", "1")
    assert "tinylm, batch 16 x 128 tokens, 2 steps x 1 repeats, device cpu" in out
    for variant in ("bare", "harness"):
        assert re.search(rf"^{variant}\s+\d+\s+[\d.]+x$", out, re.MULTILINE), variant


def test_calibrated_pruning_benchmark_prints_seconds_and_tokens_per_second():
    out = script("benchmarks/calibrated_pruning.py", "--samples", "4", "--repeats", "1")
    assert "4 calibration sequences x 128 = 512 tokens" in out
    for variant in ("wanda", "sparsegpt", "wanda 2:4", "sparsegpt 2:4"):
        assert re.search(rf"^{variant}\s+[\d.]+\s+\d+\s+[\d.]+x$", out, re.MULTILINE), variant
    assert re.search(r"^global-magnitude\s+[\d.]+\s+-\s+1.0x$", out, re.MULTILINE)


def test_lora_benchmark_prints_the_step_against_the_bare_loop_and_reconstruction_per_layer():
    out = script("benchmarks/lora_train.py", "--steps", "2", "--repeats", "1", "--samples", "16")
    assert "tinylm MaskLoRA rank 8, batch 16 x 128 tokens, 2 steps x 1 repeats" in out
    for variant in ("bare", "harness"):
        assert re.search(rf"^{variant}\s+\d+\s+[\d.]+x$", out, re.MULTILINE), variant
    assert re.search(r"^reconstruction, 28 layers, \d+ steps each on 16 calibration sequences: [\d.]+ s a layer "
                     r"\([\d.]+x one forward pass", out, re.MULTILINE)
