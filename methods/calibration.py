"""What the pruning strategies that read activations share: calibration data, each prunable layer's weight
as (out, in), and the sequential pass that prunes layer after layer, each layer's inputs computed by the
layers before it as already pruned.

Layers are visited in the order the forward pass reaches them. Layers that receive the very same input
tensor (a block's query, key and value projections; the MLP's gate and up projections) form one stage:
their inputs do not depend on one another, so they are read in one pass and pruned together. Each pass
stops once the stage's layers have been reached, so a stage costs a pass through the blocks before it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from harness.core.errors import HarnessError
from harness.core.flops import weight_layer
from harness.core.seeding import MAX_SEED
from methods.spec import Param

SAMPLES, SEED, HEAD = "samples", "calibration_seed", "head"
# Wanda's and SparseGPT's defaults: 128 sequences of the model's context length, seed 0
CALIBRATION_PARAMS = {
    SAMPLES: Param(128, 1, 4096, integer=True, search=False,
                   help="calibration sequences drawn from the training split"),
    SEED: Param(0, 0, MAX_SEED, integer=True, search=False, help="the seed the calibration sequences are drawn with"),
}
BATCH = 8  # calibration sequences per forward pass
# kept dense by default, as in Wanda and SparseGPT; the engine adds the task's ``head`` weights when set
HEAD_PARAM = {HEAD: Param(0, 0, 1, integer=True, search=False,
                          help="1: prune the LM head too (and the input embedding where the two are tied)")}


@dataclass(frozen=True)
class Calibration:
    """The calibration inputs (one tensor of ``samples`` sequences) and how to run the model on a batch."""

    inputs: torch.Tensor
    feed: Callable[[nn.Module, torch.Tensor], Any]

    @property
    def tokens(self) -> int:
        return self.inputs.numel()

    def batches(self) -> list[torch.Tensor]:
        return list(self.inputs.split(BATCH))


def transposed(module: nn.Module) -> bool:
    """Whether the module stores its weight as (in, out): transformers' ``Conv1D`` (GPT-2) does."""
    return type(module).__name__ == "Conv1D"


def out_by_in(module: nn.Module, tensor: torch.Tensor) -> torch.Tensor:
    """A weight-shaped tensor of ``module`` as (out, in); a view, so writing it writes the original."""
    return tensor.t() if transposed(module) else tensor.reshape(tensor.shape[0], -1)


def as_stored(module: nn.Module, tensor: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """An (out, in) tensor back in the layout of the module's weight ``like``."""
    return tensor.t().contiguous() if transposed(module) else tensor.reshape(like.shape)


def modules_of(model: nn.Module, names: Sequence[str]) -> dict[str, nn.Module]:
    """The linear layer that multiplies by each prunable weight (``a.b.weight`` -> module ``a.b``; a weight
    tied to another module's, such as an input embedding tied to the LM head, -> the linear one)."""
    params = dict(model.named_parameters())
    out = {}
    for name in names:
        users = [m for m in model.modules() if getattr(m, "weight", None) is params.get(name) and weight_layer(m)]
        if not users:
            raise HarnessError(f"{name} is not a linear layer's weight; the calibrated strategies prune linear layers")
        out[name] = users[0]
    return out


class _Reached(Exception):
    """Raised inside the forward pass once a stage's layers have all been reached: the rest is not needed."""


def stages(model: nn.Module, layers: Mapping[str, nn.Module], calibration: Calibration) -> list[list[str]]:
    """The prunable layers in the order the forward pass reaches them, grouped by shared input tensor."""
    calls: list[tuple[str, torch.Tensor]] = []
    handles = [module.register_forward_pre_hook(lambda m, args, name=name: calls.append((name, args[0])))
               for name, module in layers.items()]
    try:
        with torch.no_grad():
            calibration.feed(model, calibration.inputs[:1])
    finally:
        for h in handles:
            h.remove()
    grouped: list[list[str]] = []
    seen: set[str] = set()
    last: torch.Tensor | None = None
    for name, x in calls:
        if name in seen:
            continue  # a layer called twice (shared weights) is pruned where it is first reached
        seen.add(name)
        if grouped and x is last:
            grouped[-1].append(name)
        else:
            grouped.append([name])
        last = x
    missing = [n for n in layers if n not in seen]
    if missing:
        raise HarnessError(f"the forward pass never reaches {', '.join(missing)}: they cannot be calibrated")
    return grouped


def sequential(model: nn.Module, names: Sequence[str], calibration: Calibration,
               read: Callable[[str, torch.Tensor], None], prune: Callable[[str, nn.Module], None]) -> None:
    """For each stage in order: ``read(name, x)`` every calibration input ``x`` (tokens x in) of the stage's
    layers, with the layers before it already pruned, then ``prune(name, module)`` each of them."""
    layers = modules_of(model, names)
    was_training = model.training
    model.eval()
    try:
        for stage in stages(model, layers, calibration):
            pending: set[str] = set()

            def reading(module: nn.Module, args: tuple[Any, ...], name: str, pending: set[str] = pending) -> None:
                x = args[0]
                read(name, x.reshape(-1, x.shape[-1]).float())
                pending.discard(name)
                if not pending:
                    raise _Reached

            handles = [layers[n].register_forward_pre_hook(lambda m, a, n=n: reading(m, a, n)) for n in stage]
            try:
                with torch.no_grad():
                    for batch in calibration.batches():
                        pending.update(stage)
                        try:
                            calibration.feed(model, batch)
                        except _Reached:
                            pass
            finally:
                for h in handles:
                    h.remove()
            with torch.no_grad():
                for name in stage:
                    prune(name, layers[name])
    finally:
        model.train(was_training)


def keep_per_row(scores: torch.Tensor, keep: torch.Tensor, density: float) -> torch.Tensor:
    """Within each row of (out, in) ``scores``, keep the ``density`` share of its inputs that score highest
    among those ``keep`` still holds (ties to the lower index)."""
    count = round(density * scores.shape[1])
    masked = torch.where(keep, scores, torch.full_like(scores, -1.0))
    top = torch.sort(masked, dim=1, descending=True, stable=True).indices[:, :count]
    return torch.zeros_like(keep).scatter_(1, top, True) & keep


def keep_n_of_m(scores: torch.Tensor, keep: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """In every group of ``m`` consecutive inputs of each row, keep the ``n`` that score highest."""
    rows, columns = scores.shape
    if columns % m:
        raise HarnessError(f"N:M pruning needs each layer's inputs in groups of m = {m}; a layer has {columns}")
    masked = torch.where(keep, scores, torch.full_like(scores, -1.0)).view(rows, columns // m, m)
    top = torch.sort(masked, dim=-1, descending=True, stable=True).indices[..., :n]
    return torch.zeros_like(masked, dtype=torch.bool).scatter_(-1, top, True).view(rows, columns) & keep


def n_and_m(params: Mapping[str, float]) -> tuple[int, int]:
    """(n, m) of an N:M strategy's parameters; (0, 0) when it prunes unstructured."""
    n, m = int(params.get("n", 0)), int(params.get("m", 0))
    if (n == 0) != (m == 0):
        raise HarnessError(f"N:M pruning takes both n and m (n=2, m=4 for 2:4), or neither; got n={n}, m={m}")
    if n > m:
        raise HarnessError(f"N:M pruning keeps n of every m weights, so n <= m; got n={n}, m={m}")
    return n, m


def nm_fixed_density(params: Mapping[str, float]) -> float | None:
    n, m = n_and_m(params)
    return n / m if m else None


NM_PARAMS = {"n": Param(0, 0, 16, integer=True, search=False, help="weights kept in each group of m (0: unstructured)"),
             "m": Param(0, 0, 32, integer=True, search=False,
                        help="weights in each group along a layer's inputs (0: unstructured)")}
