"""What a retraining method minimizes: the task's loss, distillation from the dense network W_T, or the
reconstruction of the dense network's layer outputs on calibration data.

The first two are losses of one batch for TRAIN. Reconstruction is not a pass of TRAIN over the retraining
data but layer after layer over calibration samples (``methods/layerwise.py``); its t counts epochs' worth
of batches (as many steps as TRAIN takes in t epochs), drawn in turn from them, for each layer
(``Budget.CALIBRATION``): at equal t it reads as many tokens per layer as TRAIN does in all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn

from harness.core.seeding import MAX_SEED
from methods.params import Param

Loss = Callable[[Callable[..., torch.Tensor], Any], torch.Tensor]
Predict = Callable[[Any, Any], tuple[torch.Tensor, torch.Tensor]]  # ``Task.predict``


class Objective(Protocol):
    name: str

    @property
    def params(self) -> Mapping[str, Param]: ...

    @property
    def needs_teacher(self) -> bool:
        """Whether it reads the dense network W_T."""
        ...

    @property
    def trains_by_steps(self) -> bool:
        """Whether TRAIN runs it, a step per batch of the retraining data (else: layer-wise reconstruction)."""
        ...

    @property
    def needs_predictions(self) -> bool:
        """Whether it reads the task's logits and targets (``Task.predict``)."""
        ...

    @property
    def needs_blocks(self) -> bool:
        """Whether it reads the network's blocks (``Task.blocks``)."""
        ...

    def loss(self, predict: Predict, teacher: nn.Module | None, params: Mapping[str, float]) -> Loss | None:
        """TRAIN's loss of a batch; None: the task's own."""
        ...


@dataclass(frozen=True)
class TaskLoss:
    name: str = "the task loss"
    needs_teacher: bool = False
    trains_by_steps: bool = True
    needs_predictions: bool = False
    needs_blocks: bool = False

    @property
    def params(self) -> Mapping[str, Param]:
        return {}

    def loss(self, predict: Predict, teacher: nn.Module | None, params: Mapping[str, float]) -> Loss | None:
        return None


TEMPERATURE, MIX = "temperature", "mix"


@dataclass(frozen=True)
class Distillation:
    """(1 - mix) * task loss + mix * tau^2 * KL(teacher || student) at temperature tau, the teacher the dense
    W_T (Hinton et al. 2015); per token for a language model."""

    name: str = "distillation from W_T"
    needs_teacher: bool = True
    trains_by_steps: bool = True
    needs_predictions: bool = True
    needs_blocks: bool = False

    @property
    def params(self) -> Mapping[str, Param]:
        return {TEMPERATURE: Param(2.0, 0.5, 8.0, log=True, help="the softmax temperature tau of both networks"),
                MIX: Param(0.5, 0.0, 1.0, help="the distillation term's share of the loss")}

    def loss(self, predict: Predict, teacher: nn.Module | None, params: Mapping[str, float]) -> Loss:
        assert teacher is not None
        tau, mix = float(params[TEMPERATURE]), float(params[MIX])

        def distilled(forward: Callable[..., torch.Tensor], batch: Any) -> torch.Tensor:
            logits, targets = predict(forward, batch)
            with torch.no_grad():
                taught, _ = predict(teacher, batch)
            kl = nn.functional.kl_div(torch.log_softmax(logits / tau, -1), torch.log_softmax(taught / tau, -1),
                                      log_target=True, reduction="batchmean")
            return (1 - mix) * nn.functional.cross_entropy(logits, targets) + mix * tau * tau * kl

        return distilled


LR, SAMPLES, SEED = "lr", "samples", "calibration_seed"
UNITS, INPUTS = ("layer", "block"), ("pruned", "dense")


@dataclass(frozen=True)
class Reconstruction:
    """Each prunable layer (``unit`` layer) or each of the task's blocks (``unit`` block: a transformer's decoder
    blocks, all their parameters trained) in turn, its masks fixed, trained with Adam to give the dense network's
    output of that layer or block (mean squared error) on calibration samples, its inputs from the network as
    pruned and reconstructed so far (``pruned``) or from the dense one (``dense``)."""

    inputs: str = "pruned"
    unit: str = "layer"
    needs_teacher: bool = True
    trains_by_steps: bool = False
    needs_predictions: bool = False

    def __post_init__(self) -> None:
        if self.inputs not in INPUTS or self.unit not in UNITS:
            raise ValueError(f"inputs must be one of {INPUTS} and unit one of {UNITS}")

    @property
    def name(self) -> str:
        return f"reconstruction of the dense {self.unit} outputs"

    @property
    def needs_blocks(self) -> bool:
        return self.unit == "block"

    @property
    def params(self) -> Mapping[str, Param]:
        return {LR: Param(1e-3, 1e-5, 1e-1, log=True, help="Adam's learning rate for each layer"),
                SAMPLES: Param(128, 8, 4096, integer=True, choices=(32.0, 64.0, 128.0, 256.0),
                               help="calibration samples drawn from the training split"),
                SEED: Param(0, 0, MAX_SEED, integer=True, search=False,
                            help="the seed the calibration samples are drawn with")}

    def loss(self, predict: Predict, teacher: nn.Module | None, params: Mapping[str, float]) -> Loss | None:
        return None  # not TRAIN's: ``methods/layerwise.py``
