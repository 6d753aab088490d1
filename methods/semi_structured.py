"""N:M semi-structured magnitude pruning: in every group of M consecutive weights of a row (an output
unit's inputs, a convolution's flattened input channels and kernel taps; GPT-2's ``Conv1D``, stored as
(in, out), grouped along its inputs too), keep the N of largest |w|.
2:4 is the pattern sparse tensor cores execute. A layer whose rows do not split into groups of M stays
dense, as NVIDIA's automatic sparsity leaves such layers."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from harness.core.errors import HarnessError
from harness.core.masks import Mask
from methods.calibration import transposed
from methods.pruning import Prunes, PruningInput, PruningStrategy, Target, register_pruning
from methods.spec import Param


def groups_of(weight: torch.Tensor, m: int) -> torch.Tensor | None:
    """``weight`` as (rows, groups, m), or None when its rows do not split into groups of m."""
    rows = weight.reshape(weight.shape[0], -1)
    return rows.view(rows.shape[0], -1, m) if rows.shape[1] % m == 0 else None


def nm_density(params: Mapping[str, float]) -> float:
    n, m = int(params["n"]), int(params["m"])
    if n > m:
        raise HarnessError(f"N:M pruning keeps n of every m weights, so n <= m; got n={n}, m={m}")
    return n / m


def nm_magnitude(p: PruningInput) -> Mask:
    n, m = int(p.params["n"]), int(p.params["m"])
    nm_density(p.params)
    owners = dict(p.model.named_modules())
    out = {}
    for name, keep in p.mask.items():
        owner = owners.get(name.rpartition(".")[0])
        scores = torch.where(keep, p.weights[name].detach().abs().float(), -1.0)
        if owner is not None and transposed(owner):  # stored (in, out): group along the inputs all the same
            scores = scores.t()
        grouped = groups_of(scores, m)
        if grouped is None:
            out[name] = keep.clone()
            continue
        top = torch.sort(grouped, dim=-1, descending=True, stable=True).indices[..., :n]
        chosen = torch.zeros_like(grouped, dtype=torch.bool).scatter_(-1, top, True).view_as(scores)
        out[name] = (chosen.t() if owner is not None and transposed(owner) else chosen) & keep
    return out


register_pruning(PruningStrategy(
    name="nm-magnitude", summary="the N largest |w| of every M consecutive weights of a row (2:4 by default)",
    prunes=Prunes.GROUPS, target=Target.FIXED, select=nm_magnitude, fixed_density=nm_density,
    params={"n": Param(2, 1, 16, integer=True, help="weights kept in each group"),
            "m": Param(4, 2, 32, integer=True, help="weights in each group")},
    iterative=False, gradual=False,
    cite="Mishra et al., Accelerating sparse deep neural networks, 2021",
))
