"""SparseGPT (Frantar & Alistarh, "SparseGPT: massive language models can be accurately pruned in one-shot",
ICML 2023): prune each layer so that its outputs on the calibration data change least, and update the
weights it keeps to make up for the ones it removes.

For a layer with inputs X, H = X^T X (plus 1% of its mean diagonal as dampening) gives the inverse
Hessian of the layer's squared reconstruction error ||WX - W'X||^2. Columns are visited in blocks of
128: within a block the weights to prune are those whose removal costs least (w^2 / [H^-1]_jj^2, over
the block for unstructured pruning, per group of m for N:M), each pruned weight's error is spread
over the columns after it through H^-1, and the block's accumulated error is carried to the rest of
the row. Layers are pruned in order, each one's inputs computed by the layers before it as already
pruned and updated (``methods/calibration.py``).
"""

from __future__ import annotations

import torch

from harness.core.errors import HarnessError
from methods.calibration import (
    CALIBRATION_PARAMS,
    HEAD_PARAM,
    NM_PARAMS,
    as_stored,
    n_and_m,
    nm_fixed_density,
    out_by_in,
    sequential,
)
from methods.pruning import Pruned, Prunes, PruningInput, PruningStrategy, Target, register_pruning
from methods.spec import Param

BLOCK = 128  # columns per lazy batch, the reference's


def inverse_hessian_factor(hessian: torch.Tensor, damp: float) -> torch.Tensor:
    """The upper Cholesky factor of (H + damp * mean(diag H) * I)^-1."""
    H = hessian.clone()
    H += damp * torch.mean(torch.diag(H)) * torch.eye(H.shape[0], dtype=H.dtype, device=H.device)
    try:
        return torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True)
    except torch.linalg.LinAlgError:
        raise HarnessError("SparseGPT's Hessian is not positive definite even after dampening; valid: more "
                           "calibration samples, or a larger damp") from None


def reconstruct(weight: torch.Tensor, hessian: torch.Tensor, keep: torch.Tensor, density: float = 1.0,
                n: int = 0, m: int = 0, damp: float = 0.01, block: int = BLOCK) -> tuple[torch.Tensor, torch.Tensor]:
    """(W', kept) for an (out, in) ``weight`` and its inputs' (in, in) ``hessian`` = X^T X: unstructured to
    ``density`` (each block of columns to it), or ``n`` of every ``m`` inputs kept. Weights ``keep``
    already removes are pruned first."""
    W = weight.detach().float().clone(memory_format=torch.contiguous_format)
    H = hessian.clone().float()
    columns = W.shape[1]
    if m and (columns % m or block % m):
        raise HarnessError(f"N:M pruning needs each layer's inputs in groups of m = {m}; a layer has {columns}")
    dead = torch.diag(H) == 0  # inputs that are always zero: their weights do nothing
    H[dead, dead] = 1.0
    W[:, dead] = 0.0
    Hinv = inverse_hessian_factor(H, damp)
    pruned = torch.zeros_like(W, dtype=torch.bool)
    for i1 in range(0, columns, block):
        i2 = min(i1 + block, columns)
        W1, Hinv1, keep1 = W[:, i1:i2].clone(), Hinv[i1:i2, i1:i2], keep[:, i1:i2]
        Q1, Err1 = torch.zeros_like(W1), torch.zeros_like(W1)
        cost = W1.pow(2) / torch.diag(Hinv1).pow(2).unsqueeze(0)
        cost = torch.where(keep1, cost, torch.full_like(cost, -1.0))
        mask1 = torch.zeros_like(W1, dtype=torch.bool)
        if not m:
            count = round((1.0 - density) * cost.numel())
            mask1.view(-1)[torch.sort(cost.flatten(), stable=True).indices[:count]] = True
        for i in range(i2 - i1):
            if m and i % m == 0:
                group = W1[:, i : i + m].pow(2) / torch.diag(Hinv1)[i : i + m].pow(2).unsqueeze(0)
                group = torch.where(keep1[:, i : i + m], group, torch.full_like(group, -1.0))
                mask1.scatter_(1, i + torch.sort(group, dim=1, stable=True).indices[:, : m - n], True)
            w, d = W1[:, i], Hinv1[i, i]
            q = torch.where(mask1[:, i], torch.zeros_like(w), w)
            Q1[:, i] = q
            err = (w - q) / d
            W1[:, i:] -= err.unsqueeze(1) @ Hinv1[i, i:].unsqueeze(0)
            Err1[:, i] = err
        W[:, i1:i2] = Q1
        pruned[:, i1:i2] = mask1
        W[:, i2:] -= Err1 @ Hinv[i1:i2, i2:]
    return W, ~pruned


def sparsegpt(p: PruningInput) -> Pruned:
    assert p.calibration is not None  # declared: the engine hands calibrated strategies their data
    n, m = n_and_m(p.params)
    hessians: dict[str, torch.Tensor] = {}
    mask = {}

    def read(name: str, x: torch.Tensor) -> None:
        hessians[name] = hessians.get(name, 0) + x.t() @ x

    def prune(name: str, module: torch.nn.Module) -> None:
        weight = out_by_in(module, module.weight)
        keep = out_by_in(module, p.mask[name].to(weight.device))
        updated, kept = reconstruct(weight, hessians.pop(name), keep, p.target, n, m, p.params["damp"])
        weight.copy_(updated.to(weight.dtype))  # the layers after it see it pruned and updated
        mask[name] = as_stored(module, kept, p.mask[name]).cpu()

    sequential(p.model, list(p.mask), p.calibration, read, prune)
    return Pruned(mask, {k: v.detach().cpu().clone() for k, v in p.model.state_dict().items()})


register_pruning(PruningStrategy(
    name="sparsegpt", summary="prune each layer by its inverse Hessian on calibration data and update the weights kept",
    prunes=Prunes.WEIGHTS, target=Target.DENSITY, select=sparsegpt, fixed_density=nm_fixed_density,
    params={**NM_PARAMS, **CALIBRATION_PARAMS, **HEAD_PARAM,
            "damp": Param(0.01, 1e-4, 1.0, log=True, help="dampening, a share of the Hessian's mean diagonal")},
    iterative=False, gradual=False, calibrated=True, updates_weights=True,
    cite="Frantar & Alistarh, SparseGPT: massive language models can be accurately pruned in one-shot, ICML 2023",
))
