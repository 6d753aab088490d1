"""What a retraining method trains: every weight, a named subset of the parameters, or low-rank adapters.

A scope turns the network to retrain into the module TRAIN optimizes (``prepare``: the parameters it does
not train have ``requires_grad`` off, and TRAIN's optimizer holds only those it trains) and back into the
network's own weights once trained (``merged``). Pruned weights stay exactly zero under each: TRAIN masks
the prepared module's weights after every step, and an adapter's merge keeps the mask (or, for plain LoRA,
the labelled baseline, is declared to densify).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from torch import nn

from harness.core.errors import HarnessError
from harness.core.masks import Mask
from methods.params import Param

NORMALIZATION = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.RMSNorm)


@dataclass
class Prepared:
    module: nn.Module  # what TRAIN optimizes
    mask: Mask  # the mask under the module's parameter names


class Scope(Protocol):
    name: str
    params: Mapping[str, Param]

    @property
    def densifies(self) -> bool:
        """Whether merging may make pruned weights nonzero (then the record reports the density after it)."""
        ...

    @property
    def initializes(self) -> bool:
        """Whether it adds parameters of its own, drawn at random (from the cell's seed)."""
        ...

    def prepare(self, model: nn.Module, mask: Mask, params: Mapping[str, float]) -> Prepared: ...

    def merged(self, prepared: Prepared, model: nn.Module) -> nn.Module:
        """The network of ``model``'s architecture holding what ``prepared`` was trained to."""
        ...


def trainable_count(prepared: Prepared) -> int:
    """Parameters the optimizer changes: those with ``requires_grad``, less their pruned entries."""
    params = dict(prepared.module.named_parameters())
    count = sum(p.numel() for p in params.values() if p.requires_grad)
    pruned = sum(int((~keep).sum()) for name, keep in prepared.mask.items() if params[name].requires_grad)
    return count - pruned


@dataclass(frozen=True)
class EveryWeight:
    """Every parameter of the network (the paper's methods and the LR schedules after it)."""

    name: str = "every weight"
    densifies: bool = False
    initializes: bool = False

    @property
    def params(self) -> Mapping[str, Param]:
        return {}

    def prepare(self, model: nn.Module, mask: Mask, params: Mapping[str, float]) -> Prepared:
        return Prepared(model, mask)

    def merged(self, prepared: Prepared, model: nn.Module) -> nn.Module:
        return prepared.module


HEAD = "train_head"


def is_normalization(module: nn.Module) -> bool:
    # transformers' RMSNorms (LlamaRMSNorm, ...) predate torch's and do not subclass it
    return isinstance(module, NORMALIZATION) or type(module).__name__.endswith("RMSNorm")


def subset_names(model: nn.Module, parts: Sequence[str], head: bool) -> set[str]:
    chosen: set[str] = set()
    for prefix, module in model.named_modules():
        for name, _ in module.named_parameters(recurse=False):
            full = f"{prefix}.{name}" if prefix else name
            if ("biases" in parts and name == "bias") or ("norms" in parts and is_normalization(module)):
                chosen.add(full)
    if head:
        output = getattr(model, "get_output_embeddings", lambda: None)()
        if output is None:
            raise HarnessError(f"{HEAD}=1 needs a language model's LM head; {type(model).__name__} has none")
        chosen |= {n for n, p in model.named_parameters() if p is output.weight}
    return chosen


@dataclass(frozen=True)
class Subset:
    """A named subset of the parameters (``biases``, ``norms``: every normalization layer's scale and shift),
    and the LM head where ``train_head`` is 1; everything else is frozen."""

    parts: tuple[str, ...]
    densifies: bool = False
    initializes: bool = False

    @property
    def name(self) -> str:
        return " and ".join(self.parts)

    @property
    def params(self) -> Mapping[str, Param]:
        return {HEAD: Param(0, 0, 1, integer=True, search=False, help="1: train the LM head too")}

    def prepare(self, model: nn.Module, mask: Mask, params: Mapping[str, float]) -> Prepared:
        chosen = subset_names(model, self.parts, bool(params.get(HEAD, 0)))
        if not chosen:
            raise HarnessError(f"{type(model).__name__} has no {self.name} to train")
        for name, p in model.named_parameters():
            p.requires_grad_(name in chosen)
        return Prepared(model, mask)

    def merged(self, prepared: Prepared, model: nn.Module) -> nn.Module:
        return prepared.module  # as trained (its frozen parameters stay so while a shared run goes on)


RANK, ALPHA = "rank", "alpha"
MERGES = ("mask", "scale", "dense")


@dataclass(frozen=True)
class Adapters:
    """LoRA adapters of rank r on every prunable layer (``peft``), the network's own weights frozen.

    ``merge`` says how the trained adapters enter the weights: ``mask``, W + s (BA ⊙ m), in training and when
    merged (MaskLoRA); ``scale``, W ⊙ BA, B and A starting at 1/sqrt(r) so that BA starts at 1 (ScaleLoRA);
    ``dense``, W + s BA (plain LoRA), which fills in the pruned weights."""

    merge: str
    name: str = "LoRA adapters"
    initializes: bool = True

    def __post_init__(self) -> None:
        if self.merge not in MERGES:
            raise ValueError(f"merge must be one of {MERGES}")

    @property
    def params(self) -> Mapping[str, Param]:
        return {RANK: Param(8, 1, 256, integer=True, choices=(2.0, 4.0, 8.0, 16.0, 32.0), help="the adapters' rank r"),
                ALPHA: Param(16, 1, 512, search=False, help="LoRA's alpha: the update is scaled by s = alpha / r")}

    @property
    def densifies(self) -> bool:
        return self.merge == "dense"

    def prepare(self, model: nn.Module, mask: Mask, params: Mapping[str, float]) -> Prepared:
        from methods import lora  # start-up: peft imports transformers, only adapter methods need it

        wrapped = lora.inject(model, [name.rsplit(".", 1)[0] for name in mask], int(params[RANK]),
                              float(params[ALPHA]), self.merge, mask)
        return Prepared(wrapped, {lora.base_name(name): keep for name, keep in mask.items()})

    def merged(self, prepared: Prepared, model: nn.Module) -> nn.Module:
        from methods import lora

        return lora.merged_into(prepared.module, model, self.merge)
