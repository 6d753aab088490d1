"""What a task is: a model, its data, its optimizer and its standard schedule S."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from harness.core import distributed
from harness.core.declared import identified_as
from harness.core.flops import flops
from harness.core.hparams import BaseHparams
from harness.core.registry import TASKS, checked_task
from harness.core.schedule import Schedule


class Data(Protocol):
    steps_per_epoch: int

    def batch(self, seed: int, epoch: int, index: int) -> tuple[torch.Tensor, torch.Tensor]: ...

    def evaluate(self, model: nn.Module, split: str) -> float: ...

    # optional, where the task has them:
    #   calibration(samples, seed) -> the inputs of ``samples`` training samples drawn with ``seed``
    #   report(model) -> what a result records beyond the metric (record fields, e.g. seqlen)


@dataclass(frozen=True)
class DataOptions:
    """Where and how a task loads its data."""

    data_dir: Path | None = None
    batch_size: int = 128
    device: str = "cpu"
    download: bool = False
    workers: int = 4


@dataclass(frozen=True)
class OptimizerSpec:
    name: str = "sgd"  # "sgd" or "adam"
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)

    def build(self, params: Iterable[nn.Parameter], lr: float) -> torch.optim.Optimizer:
        if self.name == "sgd":
            return torch.optim.SGD(
                params, lr=lr, momentum=self.momentum, nesterov=self.nesterov,
                weight_decay=self.weight_decay,
            )
        if self.name == "adam":
            return torch.optim.Adam(params, lr=lr, betas=self.betas, weight_decay=self.weight_decay)
        if self.name == "adamw":
            return torch.optim.AdamW(params, lr=lr, betas=self.betas, weight_decay=self.weight_decay)
        raise ValueError(f"unknown optimizer {self.name!r}; valid: sgd, adam, adamw")

    def describe(self) -> str:
        if self.name == "sgd":
            kind = "Nesterov SGD" if self.nesterov else "SGD"
            return f"{kind} {self.momentum:g}, wd {self.weight_decay:g}"
        return f"{ {'adam': 'Adam', 'adamw': 'AdamW'}.get(self.name, self.name)} {self.betas}, wd {self.weight_decay:g}"


@identified_as("tasks.spec.conv_and_linear_weights")
def conv_and_linear_weights(model: nn.Module) -> list[str]:
    """The weights that global magnitude pruning considers: biases and norm layers never."""
    return [
        f"{module_name}.weight" if module_name else "weight"
        for module_name, module in model.named_modules()
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear))
    ]


@dataclass(frozen=True)
class Task:
    name: str
    description: str
    schedule: Schedule
    batch_size: int
    optimizer: OptimizerSpec
    make_model: Callable[[], nn.Module]
    # load_data, prunable and criterion enter a base network's identity by their declared names
    # (``harness.core.declared.identified_as``), not by the module that defines them
    load_data: Callable[[DataOptions], Data]
    input_shape: tuple[int, ...]  # one sample, for FLOPs and speed measurements
    metric: str = "accuracy"  # what ``Data.evaluate`` returns; higher is better (BLEU for translation)
    metric_definition: str = "top-1 accuracy, % of the split's samples"
    prunable: Callable[[nn.Module], list[str]] = conv_and_linear_weights
    channels_last: bool = False  # 2.4x faster convolutions on this CPU, and the fast path on GPUs
    criterion: Callable[[Callable[..., torch.Tensor], Any], torch.Tensor] | None = None  # None: classification
    grad_clip: float | None = None  # clip the gradients' global norm to this before each step
    count_flops: Callable[[nn.Module, Any], tuple[int, int]] | None = None  # None: traced from input_shape
    # what ``load_data`` yields beyond its name (its split, augmentation, version): part of a base
    # network's identity (``harness.core.identity``), so edit it whenever the data changes
    data_definition: str = ""
    # the unpruned network's score under the full schedule, as documented (the paper's tables 1 and 2;
    # the README for MNIST-1D): a base network far under it is under-trained (``harness.engine.undertrained``)
    documented_unpruned: float | None = None
    # runs the model on one batch of calibration inputs (``Data.calibration``), for the pruning strategies that
    # read activations (Wanda, SparseGPT); None: the task has no calibration data, and they are refused
    calibration: Callable[[nn.Module, Any], Any] | None = None
    # a pretrained checkpoint's task: loads the checkpoint's network, which stands for W_T. Its schedule has
    # T = 0 (no training run of ours: no S to replay, no rewind points)
    pretrained: Callable[[], nn.Module] | None = None
    # (task, base hparams) -> the task on the run's checkpoint and data folder (``BaseHparams.checkpoint``)
    bind: Callable[[Task, BaseHparams], Task] | None = None
    locate: Callable[[str], str] | None = None  # a checkpoint task's --model (a folder, a hub name) -> a folder
    # weights left dense unless a strategy is told to prune them too (parameter ``head``: a language model's
    # LM head, which is also the input embedding where the two are tied)
    head: Callable[[nn.Module], list[str]] | None = None
    # (model, batch) -> (logits (N, classes), targets (N,)): what distillation compares. None: a classifier's
    # (the model's output on the batch's inputs and its labels), unless the task has a criterion of its own
    predictor: Callable[[Callable[..., torch.Tensor], Any], tuple[torch.Tensor, torch.Tensor]] | None = None
    # the network's blocks, in forward order, as module names (a transformer's decoder blocks), for block-wise
    # reconstruction; None: the task declares none
    blocks: Callable[[nn.Module], list[str]] | None = None

    def predict(self, forward: Callable[..., torch.Tensor], batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        if self.predictor is not None:
            return self.predictor(forward, batch)
        x, y = distributed.shard(batch[0]), distributed.shard(batch[1])
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return forward(x), y

    @property
    def predicts(self) -> bool:
        """Whether ``predict`` is defined: a classifier, or a task that declares its predictor."""
        return self.predictor is not None or self.criterion is None

    def loss(self, forward: Callable[..., torch.Tensor], batch: Any) -> torch.Tensor:
        """The training loss of one batch (``forward`` is the model, DDP-wrapped where it runs so)."""
        if self.criterion is not None:
            return self.criterion(forward, batch)
        x, y = distributed.shard(batch[0]), distributed.shard(batch[1])
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return nn.functional.cross_entropy(forward(x), y)

    def flops(self, model: nn.Module, mask: Any = None) -> tuple[int, int]:
        """(FLOPs with the mask's zeros skipped, dense FLOPs) of one sample's inference."""
        if self.count_flops is not None:
            return self.count_flops(model, mask)

        return flops(model, self.input_shape, mask)

    @property
    def epochs(self) -> float:
        return self.schedule.epochs

    def resolved(self, hp: BaseHparams) -> Task:
        """The task as a run with these hyperparameters sees it: a shortened schedule, another
        batch size (the learning rate scales linearly with it)."""
        if self.bind is not None:
            return self.bind(self, hp).resolved(hp)
        batch = hp.batch_size or self.batch_size
        if hp.epochs_scale == 1.0 and batch == self.batch_size:
            return self
        schedule = self.schedule.scaled(epochs_factor=hp.epochs_scale, lr_factor=batch / self.batch_size)
        return dataclasses.replace(self, schedule=schedule, batch_size=batch)




def register_task(name: str) -> Callable[[Callable[[], Task]], Callable[[], Task]]:
    return TASKS.register(name)


def get_task(name: str) -> Task:
    return checked_task(name, TASKS.get(name)())
