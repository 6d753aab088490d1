"""CIFAR-10 ResNet-20/56/110 (He et al. 2016) with the paper's table-1 schedule.

Data: the python-pickle folder ``cifar-10-batches-py`` that torchvision reads. Kept as uint8 on the
training device and augmented there (4-pixel pad, random 32 crop, horizontal flip), then normalized
per channel.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
from torch import nn

from harness.core import safe_pickle
from harness.core.declared import identified_as
from harness.core.errors import HarnessError
from harness.core.schedule import Schedule
from harness.data.tensor_data import TensorData
from tasks.spec import DataOptions, OptimizerSpec, Task, register_task

FOLDER = "cifar-10-batches-py"
TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_FILE = "test_batch"
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class CifarResNet(nn.Module):
    """Three stages of 16/32/64 channels with (depth - 2) / 6 basic blocks each."""

    def __init__(self, depth: int, classes: int = 10, widths: tuple[int, int, int] = (16, 32, 64)) -> None:
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"CIFAR ResNet depth must be 6n + 2, got {depth}")
        n = (depth - 2) // 6
        self.conv = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(widths[0])
        blocks, c_in = [], widths[0]
        for stage, width in enumerate(widths):
            for i in range(n):
                blocks.append(BasicBlock(c_in, width, 2 if stage > 0 and i == 0 else 1))
                c_in = width
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(widths[-1], classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(torch.relu(self.bn(self.conv(x))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def pad_crop_flip(x: torch.Tensor, g: torch.Generator, pad: int = 4) -> torch.Tensor:
    """The standard CIFAR augmentation on a whole NCHW batch, on whatever device holds it
    (``g`` lives on that device too: no per-batch host work)."""
    b, c, h, w = x.shape
    padded = nn.functional.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (b, 1), generator=g, device=x.device)
    dx = torch.randint(0, 2 * pad + 1, (b, 1), generator=g, device=x.device)
    flip = torch.rand(b, 1, generator=g, device=x.device) < 0.5
    rows = dy + torch.arange(h, device=x.device)
    cols = dx + torch.arange(w, device=x.device)
    cols = torch.where(flip, cols.flip(1), cols)
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    channel = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, channel, rows[:, None, :, None], cols[:, None, None, :]]


def normalizer(device: torch.device | str) -> Callable[[torch.Tensor], torch.Tensor]:
    mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1) * 255
    std = torch.tensor(STD, device=device).view(1, 3, 1, 1) * 255

    def prepare(x: torch.Tensor) -> torch.Tensor:
        return (x.float() - mean) / std

    return prepare


def find_folder(data_dir: Path | None, download: bool) -> Path:
    if data_dir is None:
        raise HarnessError(f"CIFAR-10 needs --data-dir: a folder holding {FOLDER}/ (or that folder itself)")
    data_dir = Path(data_dir)
    for folder in (data_dir / FOLDER, data_dir):
        if (folder / TEST_FILE).exists():
            return folder
    if download:
        from torchvision.datasets.utils import download_and_extract_archive

        try:
            download_and_extract_archive(URL, str(data_dir), md5="c58f30108f718f92721af3b95e74349a")
        except OSError as e:
            raise HarnessError(f"could not download CIFAR-10 into {data_dir} ({e})") from None
        return data_dir / FOLDER
    raise HarnessError(
        f"CIFAR-10 not found: expected {', '.join(TRAIN_FILES)} and {TEST_FILE} (python pickles) in "
        f"{data_dir / FOLDER}; pass --download to fetch it")


def read_batch(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        with open(path, "rb") as f:
            entry = safe_pickle.load(f, encoding="bytes")
        data, labels = entry[b"data"], entry[b"labels"]
        x = torch.as_tensor(data, dtype=torch.uint8).reshape(-1, 3, 32, 32)
        y = torch.as_tensor(labels, dtype=torch.long)
    except FileNotFoundError:
        raise HarnessError(f"CIFAR-10 batch missing: {path}") from None
    except safe_pickle.ForbiddenGlobal as e:
        raise HarnessError(f"CIFAR-10 batch {path} refused: {e}; it was not loaded") from None
    except Exception as e:  # a corrupt or foreign pickle, whatever it raises
        raise HarnessError(f"CIFAR-10 batch {path} is malformed ({type(e).__name__}: {e}); "
                           "expected a pickle with b'data' (N x 3072 uint8) and b'labels'") from None
    if len(x) != len(y):
        raise HarnessError(f"CIFAR-10 batch {path} is malformed: {len(x)} images but {len(y)} labels")
    return x, y


@identified_as("tasks.cifar10.load")
def load(options: DataOptions) -> TensorData:
    folder = find_folder(options.data_dir, options.download)
    parts = [read_batch(folder / name) for name in TRAIN_FILES]
    x = torch.cat([p[0] for p in parts])
    y = torch.cat([p[1] for p in parts])
    test = read_batch(folder / TEST_FILE)
    return TensorData((x, y), test, options.batch_size, augment=pad_crop_flip,
                      prepare=normalizer(options.device), device=options.device)


CIFAR_UNPRUNED = {20: 91.71, 56: 93.46, 110: 93.77}  # % test accuracy, the paper's table 1


def cifar10_resnet(depth: int) -> Task:
    return Task(
        name=f"cifar10-resnet{depth}",
        description=f"CIFAR-10, ResNet-{depth} (He et al. 2016)",
        schedule=Schedule(lr=0.1, epochs=182, drops=((91, 0.01), (136, 0.001))),
        batch_size=128,
        optimizer=OptimizerSpec("sgd", momentum=0.9, nesterov=True, weight_decay=2e-4),
        make_model=partial(CifarResNet, depth),
        load_data=load,
        input_shape=(3, 32, 32),
        documented_unpruned=CIFAR_UNPRUNED[depth],
        channels_last=True,
    )


for _depth in (20, 56, 110):
    register_task(f"cifar10-resnet{_depth}")(partial(cifar10_resnet, _depth))
