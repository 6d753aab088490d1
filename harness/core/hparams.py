"""Hyperparameters as frozen dataclasses; a run's folder is named by a hash of its non-default values.

Hashing only non-default values (as open_lth does) means a new option with a default never
invalidates results computed before it existed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from harness.core.canonical import non_defaults
from harness.core.identity import base_identity
from harness.core.protocol import DEFAULT_PRUNING

# The range of epochs_scale: below 1e-4 even ImageNet's 90 epochs shrink to a fraction of an
# epoch that no data set has a step for; above 1e3 a schedule runs for months.
EPOCHS_SCALE = (1e-4, 1e3)

# Level 1 was once the default of every cell, so a structured cell's name leaves it out; a cell now
# declares its level, and names stay what they were.
LEGACY_DEFAULT_LEVEL = 1


@dataclass(frozen=True)
class Compute:
    """How a run is computed, where that changes its numbers: the device type, bf16 autocast, and
    on CPU the intra-op thread count (a reduction splits differently with another count, and the
    last bits differ). Part of a run's name when not the default, so two computations that can give
    different numbers never share a folder; every command (run, sweep, tune, the API) trains on CPU
    with one thread unless told otherwise, so what they compute once they share."""

    device: str = "cpu"  # the device type: cpu, cuda, mps (not the index: cuda:0 and cuda:1 agree)
    bf16: bool = False
    threads: int = 1

    @classmethod
    def of(cls, device: str = "cpu", bf16: bool = False, threads: int = 1) -> Compute:
        return cls(device.split(":")[0], bool(bf16), int(threads))


CPU = Compute()  # the default: fp32 on CPU, one thread


@dataclass(frozen=True)
class BaseHparams:
    """The original training run: computed once per (task, seed) and shared by every method."""

    task: str
    seed: int = 0
    epochs_scale: float = 1.0
    batch_size: int | None = None  # None: the task's standard batch size
    compute: Compute = CPU
    # a pretrained task's checkpoint folder and data folder (absolute paths); their files' digests are in the
    # task's fingerprint too
    checkpoint: str | None = None
    data_dir: str | None = None

    @classmethod
    def from_stored(cls, stored: dict[str, Any]) -> BaseHparams:
        """The hyperparameters a folder's ``hparams.json`` was written from (its fingerprint is derived)."""
        fields = {k: v for k, v in stored.items() if k != "task_fingerprint"}
        return cls(**{**fields, "compute": Compute(**fields.get("compute", {}))})

    def identity(self) -> dict[str, Any]:
        """What names the base run: these fields and what the task resolves to (``harness.core.identity``)."""
        out = non_defaults(self)
        if (fingerprint := base_identity(self)) is not None:
            out["task_fingerprint"] = fingerprint
        return out


@dataclass(frozen=True)
class RetrainHparams:
    """One round of PRUNE + RETRAIN.

    ``pruning`` names the strategy (``methods/pruning.py``). Its target is declared: ``densities``, the
    chain of target densities of the rounds that led here, or, for a structured configuration, ``level``
    k. A cell gives one of them; the gate (``harness.engine.gate``) refuses one that gives neither or
    both, or the one its strategy does not prune to.
    """

    base: BaseHparams
    method: str
    retrain_epochs: float
    densities: tuple[float, ...] = ()
    pruning: str = DEFAULT_PRUNING
    level: int | None = None
    method_params: tuple[tuple[str, float], ...] = ()  # overrides of the method's declared defaults
    variant: str | None = None  # a named (method, parameters) pair, e.g. one saved by `harness tune`
    pruning_params: tuple[tuple[str, float], ...] = ()  # overrides of the strategy's declared defaults
    # declared, not inferred from the round: an iterative chain's first round is iterative. Not part of the
    # name, since a one-shot run to a density and that first round are one computation (``computation``)
    iterative: bool = False

    @classmethod
    def from_stored(cls, stored: dict[str, Any]) -> RetrainHparams:
        """The hyperparameters a cell folder's ``hparams.json`` was written from."""
        fields = dict(stored)
        if "structured" in fields:
            fields["pruning"] = fields.pop("structured")
            fields["level"] = fields.get("level", LEGACY_DEFAULT_LEVEL)
        pairs = {k: tuple((str(n), float(v)) for n, v in fields[k]) for k in ("method_params", "pruning_params")
                 if k in fields}
        return cls(**{**fields, **pairs, "base": BaseHparams.from_stored(fields["base"]),
                      "densities": tuple(fields.get("densities", ()))})

    def identity(self) -> dict[str, Any]:
        """What names the cell. Cells of a structured configuration were stored, before every strategy
        was one kind, with the configuration under ``structured``; they keep that name, and so their
        folders."""
        out = non_defaults(self)
        out.pop("iterative", None)
        if self.structured:
            out.pop("pruning", None)
            out["structured"] = self.pruning
            if self.level == LEGACY_DEFAULT_LEVEL:
                out.pop("level")
        return out

    @property
    def schedule(self) -> str:
        return "iterative" if self.iterative or self.round > 1 else "one-shot"

    @property
    def computation(self) -> RetrainHparams:
        """The cell as the store holds it: one-shot and iterative cells of one chain are one folder."""
        return dataclasses.replace(self, iterative=False) if self.iterative else self

    @property
    def structured(self) -> bool:
        """Whether the declared target is a configuration's level rather than a density chain."""
        return self.level is not None

    @property
    def method_label(self) -> str:
        """The method as tables and plots name it: a variant by its name."""
        return self.variant or self.method

    @property
    def density(self) -> float | None:
        return self.densities[-1] if self.densities else None

    @property
    def round(self) -> int:
        return len(self.densities) or 1

    @property
    def label(self) -> str:
        if self.structured:
            return f"{self.pruning} k={self.level}"
        return f"density {self.densities[-1]:.3g}" if self.densities else "no target"

    def previous(self) -> RetrainHparams | None:
        if self.round == 1:
            return None
        return dataclasses.replace(self, densities=self.densities[:-1])
