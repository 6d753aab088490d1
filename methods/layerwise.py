"""Layer-wise reconstruction (``objective.Reconstruction``): each prunable layer in turn, its mask fixed, trained
to give the dense network's output of that layer on calibration samples.

Layers are taken in the order the task lists its prunable weights (the order of the forward pass). A layer's
inputs are read by running the network on each calibration batch and stopping once the layer is reached.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from harness.core.masks import BoundMask, Mask


class _Reached(Exception):
    """Raised once the layer's input is read: the rest of the forward pass is not needed."""


def layer_inputs(model: nn.Module, layer: nn.Module, batches: Sequence[Any],
                 feed: Callable[[nn.Module, Any], Any]) -> list[torch.Tensor]:
    """What ``layer`` receives in ``model`` on each batch (its first call of each forward pass)."""
    read: list[torch.Tensor] = []

    def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
        read.append(args[0].detach())
        raise _Reached

    handle = layer.register_forward_pre_hook(hook)
    try:
        with torch.no_grad():
            for batch in batches:
                try:
                    feed(model, batch)
                except _Reached:
                    pass
    finally:
        handle.remove()
    return read


def reconstruct(model: nn.Module, dense: nn.Module, mask: Mask, batches: Sequence[Any],
                feed: Callable[[nn.Module, Any], Any], passes: float, lr: float, dense_inputs: bool,
                progress: Callable[[int], None] | None = None) -> int:
    """Reconstruct every masked layer of ``model`` in place; returns the Adam steps taken per layer."""
    steps = round(passes * len(batches))
    was_training = model.training
    model.eval()
    dense.eval()
    try:
        for done, name in enumerate(mask):
            module_name = name.rsplit(".", 1)[0]
            layer, teacher = model.get_submodule(module_name), dense.get_submodule(module_name)
            seen = layer_inputs(dense, teacher, batches, feed)
            with torch.no_grad():
                targets = [teacher(x) for x in seen]
            inputs = seen if dense_inputs else layer_inputs(model, layer, batches, feed)
            params = [p for p in layer.parameters(recurse=False)]
            optimizer = torch.optim.Adam(params, lr=lr)
            bound = BoundMask(layer, {name.rsplit(".", 1)[1]: mask[name]})
            for s in range(steps):
                loss = nn.functional.mse_loss(layer(inputs[s % len(inputs)]), targets[s % len(inputs)])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                bound.mask_gradients()
                optimizer.step()
                bound.apply()
            if progress is not None:
                progress(done + 1)
    finally:
        model.train(was_training)
    return steps
