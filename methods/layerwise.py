"""Layer-wise and block-wise reconstruction (``objective.Reconstruction``): each prunable layer (or each block of
the network) in turn, its masks fixed, trained to give the dense network's output of that layer (block) on
calibration samples.

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


def called_with(model: nn.Module, module: nn.Module, batches: Sequence[Any],
                feed: Callable[[nn.Module, Any], Any]) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    """The arguments and keywords ``module`` is called with in ``model`` on each batch (its first call of each
    forward pass): a layer's input, a decoder block's hidden states, position embeddings and attention mask."""
    read: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def hook(_: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        read.append((tuple(a.detach() if torch.is_tensor(a) else a for a in args), dict(kwargs)))
        raise _Reached

    handle = module.register_forward_pre_hook(hook, with_kwargs=True)
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


def layer_inputs(model: nn.Module, layer: nn.Module, batches: Sequence[Any],
                 feed: Callable[[nn.Module, Any], Any]) -> list[torch.Tensor]:
    """What ``layer`` receives in ``model`` on each batch."""
    return [args[0] for args, _ in called_with(model, layer, batches, feed)]


def reconstruct(model: nn.Module, dense: nn.Module, mask: Mask, batches: Sequence[Any],
                feed: Callable[[nn.Module, Any], Any], steps: int, lr: float, dense_inputs: bool,
                progress: Callable[[int], None] | None = None) -> None:
    """Reconstruct every masked layer of ``model`` in place: ``steps`` Adam steps each, a calibration batch a
    step, taken in turn."""
    layers = [name.rsplit(".", 1)[0] for name in mask]
    reconstruct_units(model, dense, mask, layers, batches, feed, steps, lr, dense_inputs, progress)


def reconstruct_blocks(model: nn.Module, dense: nn.Module, mask: Mask, blocks: Sequence[str], batches: Sequence[Any],
                       feed: Callable[[nn.Module, Any], Any], steps: int, lr: float, dense_inputs: bool,
                       progress: Callable[[int], None] | None = None) -> None:
    """Reconstruct each block of ``model`` in place: every parameter of the block trained, its weights' masks
    fixed, for its output (hidden states) to match the dense block's."""
    reconstruct_units(model, dense, mask, blocks, batches, feed, steps, lr, dense_inputs, progress)


def hidden(output: Any) -> torch.Tensor:
    """A module's output tensor (a decoder block returns a tuple led by its hidden states)."""
    return output[0] if isinstance(output, tuple) else output


def reconstruct_units(model: nn.Module, dense: nn.Module, mask: Mask, units: Sequence[str], batches: Sequence[Any],
                      feed: Callable[[nn.Module, Any], Any], steps: int, lr: float, dense_inputs: bool,
                      progress: Callable[[int], None] | None = None) -> None:
    """Each of ``units`` (module names: layers or blocks) in turn, every parameter of it trained with Adam and the
    masks of its weights fixed, for its output to match the dense network's unit on the same batches."""
    if steps == 0:
        return  # nothing to train: the inputs need not be read
    was_training = model.training
    model.eval()
    dense.eval()
    try:
        for done, name in enumerate(units):
            unit, teacher = model.get_submodule(name), dense.get_submodule(name)
            seen = called_with(dense, teacher, batches, feed)
            with torch.no_grad():
                targets = [hidden(teacher(*args, **kwargs)) for args, kwargs in seen]
            inputs = seen if dense_inputs else called_with(model, unit, batches, feed)
            bound = BoundMask(unit, {n[len(name) + 1:]: keep for n, keep in mask.items() if n.startswith(f"{name}.")})
            optimizer = torch.optim.Adam(unit.parameters(), lr=lr)
            for s in range(steps):
                args, kwargs = inputs[s % len(inputs)]
                loss = nn.functional.mse_loss(hidden(unit(*args, **kwargs)), targets[s % len(inputs)])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                bound.mask_gradients()
                optimizer.step()
                bound.apply()
            if progress is not None:
                progress(done + 1)
    finally:
        model.train(was_training)
