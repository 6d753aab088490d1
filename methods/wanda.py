"""Wanda (Sun, Liu, Bair & Kolter, "A simple and effective pruning approach for large language models",
ICLR 2024): score each weight by |W_ij| times the L2 norm of its input feature j over the calibration
tokens, and keep the highest scores within each output row (unstructured), or the n highest of every m
consecutive inputs of a row (N:M). The weights kept are not changed.

Layers are pruned in order, each one's input norms read with the layers before it already pruned
(``methods/calibration.py``), as the reference prunes block after block.
"""

from __future__ import annotations

import torch

from harness.core.masks import Mask
from methods.calibration import (
    CALIBRATION_PARAMS,
    HEAD_PARAM,
    NM_PARAMS,
    as_stored,
    keep_n_of_m,
    keep_per_row,
    n_and_m,
    nm_fixed_density,
    out_by_in,
    sequential,
)
from methods.pruning import Prunes, PruningInput, PruningStrategy, Target, register_pruning


def wanda_scores(weight: torch.Tensor, squared_norms: torch.Tensor) -> torch.Tensor:
    """|W_ij| * ||X_j||_2 for (out, in) ``weight`` and the inputs' per-feature sums of squares."""
    return weight.detach().abs().float() * squared_norms.sqrt().unsqueeze(0)


def wanda(p: PruningInput) -> Mask:
    assert p.calibration is not None  # declared: the engine hands calibrated strategies their data
    n, m = n_and_m(p.params)
    squares: dict[str, torch.Tensor] = {}
    out: Mask = {}

    def read(name: str, x: torch.Tensor) -> None:
        squares[name] = squares.get(name, 0) + x.double().pow(2).sum(0)

    def prune(name: str, module: torch.nn.Module) -> None:
        weight = out_by_in(module, module.weight)
        keep = out_by_in(module, p.mask[name].to(weight.device))
        scores = wanda_scores(weight, squares.pop(name).float())
        kept = keep_n_of_m(scores, keep, n, m) if m else keep_per_row(scores, keep, p.target)
        weight.masked_fill_(~kept, 0.0)  # the layers after it see it pruned
        out[name] = as_stored(module, kept, p.mask[name]).cpu()

    sequential(p.model, list(p.mask), p.calibration, read, prune)
    return out


register_pruning(PruningStrategy(
    name="wanda", summary="|w| times its input's norm on calibration data, within each output row (or N:M)",
    prunes=Prunes.WEIGHTS, target=Target.DENSITY, select=wanda, fixed_density=nm_fixed_density,
    params={**NM_PARAMS, **CALIBRATION_PARAMS, **HEAD_PARAM}, iterative=False, gradual=False, calibrated=True,
    cite="Sun et al., A simple and effective pruning approach for large language models, ICLR 2024",
))
