import pickle

import pytest
import torch
from typer.testing import CliRunner

from harness.cli.app import app
from harness.core.errors import HarnessError
from tasks.cifar10 import MEAN, STD, load, pad_crop_flip
from tasks.spec import DataOptions, get_task
from tests.fabricate import cifar10_folder

# design.md's table: 271K / 852K / 1.72M parameters
PAPER_PARAMS = {20: 271e3, 56: 852e3, 110: 1.72e6}


@pytest.mark.parametrize("depth", PAPER_PARAMS)
def test_parameter_counts_within_one_percent_of_the_paper(depth):
    model = get_task(f"cifar10-resnet{depth}").make_model()
    count = sum(p.numel() for p in model.parameters())
    assert count == pytest.approx(PAPER_PARAMS[depth], rel=0.01)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert {m.out_channels for m in convs} == {16, 32, 64}


def test_table_1_schedule_at_each_boundary():
    task = get_task("cifar10-resnet56")
    S = task.schedule
    assert task.epochs == 182 and task.batch_size == 128
    assert (S(0), S(90.99), S(91), S(135.99), S(136), S(182), S(200)) == pytest.approx(
        (0.1, 0.1, 0.01, 0.01, 0.001, 0.001, 0.001))
    opt = task.optimizer
    assert (opt.name, opt.momentum, opt.nesterov, opt.weight_decay) == ("sgd", 0.9, True, 2e-4)


def test_loader_reads_the_pickle_folder(tmp_path):
    root = cifar10_folder(tmp_path)
    data = load(DataOptions(data_dir=root, batch_size=32))
    assert len(data.y_train) == 100 and data.steps_per_epoch == 4
    assert len(data.splits["val"][1]) == 10 and len(data.splits["test"][1]) == 40
    with open(root / "cifar-10-batches-py" / "data_batch_1", "rb") as f:
        first = pickle.load(f, encoding="bytes")
    assert torch.equal(data.x_train[0].flatten(), torch.as_tensor(first[b"data"][0]))
    x, y = data.batch(seed=0, epoch=0, index=0)
    assert x.shape == (32, 3, 32, 32) and x.dtype == torch.float32 and y.shape == (32,)
    # per-channel normalization: 0 maps to -mean/std
    zero = data.prepare(torch.zeros(1, 3, 1, 1, dtype=torch.uint8)).flatten()
    assert zero == pytest.approx([-m / s for m, s in zip(MEAN, STD, strict=True)], rel=1e-5)
    # the folder itself is accepted too
    assert len(load(DataOptions(data_dir=root / "cifar-10-batches-py")).y_train) == 100


def test_augmentation_is_a_padded_crop_maybe_flipped():
    x = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    out = pad_crop_flip(x, torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    flips = 0
    for i in range(len(x)):
        windows = [(dy, dx, f) for dy in range(9) for dx in range(9) for f in (False, True)
                   if torch.equal(out[i], (lambda c: c.flip(-1) if f else c)(padded[i, :, dy:dy + 32, dx:dx + 32]))]
        assert windows, f"sample {i} is not a crop of the padded image"
        flips += windows[0][2]
    assert 10 < flips < 54
    again = pad_crop_flip(x, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)


def test_missing_and_malformed_folders_say_what_was_expected(tmp_path):
    with pytest.raises(HarnessError, match=r"expected data_batch_1, .* and test_batch .* in .*cifar-10-batches-py"):
        load(DataOptions(data_dir=tmp_path))
    with pytest.raises(HarnessError, match="needs --data-dir"):
        load(DataOptions())
    root = cifar10_folder(tmp_path / "bad")
    (root / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(HarnessError, match=r"data_batch_3 is malformed .* expected a pickle with b'data'"):
        load(DataOptions(data_dir=root))


def test_end_to_end_run_on_fabricated_cifar(tmp_path):
    root = cifar10_folder(tmp_path / "data")
    result = CliRunner().invoke(app, [
        "run", "lr-rewinding", "cifar10-resnet20", "--data-dir", str(root), "--epochs-scale", "0.01",
        "--batch-size", "50", "--density", "0.5", "--store", str(tmp_path / "store"), "--no-tracking"])
    assert result.exit_code == 0, result.output
    assert "lr-rewinding on cifar10-resnet20" in result.stdout


def test_missing_data_dir_is_a_one_line_error(tmp_path):
    result = CliRunner().invoke(app, ["run", "lr-rewinding", "cifar10-resnet20", "--data-dir", str(tmp_path),
                                      "--store", str(tmp_path / "store")])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: CIFAR-10 not found") and len(result.stderr.strip().splitlines()) == 1


class RunsCode:
    """What a hostile data file holds: unpickling it would call os.system."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


def test_a_batch_that_would_run_code_is_refused_before_it_runs(tmp_path):
    root = cifar10_folder(tmp_path / "data")
    marker = tmp_path / "code-ran"
    with open(root / "cifar-10-batches-py" / "data_batch_1", "wb") as f:
        pickle.dump({b"data": RunsCode(marker), b"labels": [0]}, f)
    result = CliRunner().invoke(app, ["run", "lr-rewinding", "cifar10-resnet20", "--data-dir", str(root),
                                      "--epochs-scale", "0.01", "--store", str(tmp_path / "store"), "--no-tracking"])
    assert result.exit_code == 2
    assert "data_batch_1 refused: the pickle asks for posix.system" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, 5])  # CIFAR's own files are protocol 2 (Python 2, numpy 1)
def test_array_pickles_of_every_protocol_load(tmp_path, protocol):
    import numpy as np

    from harness.core import safe_pickle

    entry = {b"data": np.arange(6, dtype=np.uint8).reshape(2, 3), b"labels": [1, 2]}
    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps(entry, protocol=protocol))
    with open(path, "rb") as f:
        loaded = safe_pickle.load(f, encoding="bytes")
    assert (loaded[b"data"] == entry[b"data"]).all() and loaded[b"labels"] == [1, 2]
