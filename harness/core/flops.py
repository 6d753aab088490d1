"""Theoretical inference FLOPs counting only non-zero weights (Renda et al., appendix F).

One definition throughout: a multiply-add is 2 FLOPs. The dense graph is measured with
``torch.utils.flop_counter`` (convolutions and matrix products; the cheap elementwise work of
normalization, activations and pooling is not counted), and each layer's count is scaled by the
fraction of its weights the mask keeps.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from harness.core.masks import Mask


def weight_layer(module: nn.Module) -> bool:
    """A convolution or a linear layer (transformers' ``Conv1D``, GPT-2's linear layer, included)."""
    return isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)) or type(module).__name__ == "Conv1D"


def layer_flops(model: nn.Module, input_shape: tuple[int, ...], x: torch.Tensor | None = None) -> dict[str, int]:
    """Dense FLOPs of one input sample (zeros of ``input_shape``, or ``x``), per weight-bearing layer
    (keyed by its weight's name)."""
    layers = {name: m for name, m in model.named_modules() if weight_layer(m)}
    param = next(model.parameters())
    if x is None:
        x = torch.zeros(1, *input_shape, device=param.device, dtype=param.dtype)
    counter = FlopCounterMode(display=False)
    was_training = model.training
    model.eval()
    with torch.no_grad(), counter:
        model(x)
    model.train(was_training)
    counts = counter.get_flop_counts()
    out = {}
    for name in layers:
        # the counter names modules by their path from the root, prefixed by the root's class
        matches = [v for key, v in counts.items() if key.split(".", 1)[-1] == name]
        out[f"{name}.weight"] = int(sum(matches[0].values())) if matches else 0
    return out


def flops(model: nn.Module, input_shape: tuple[int, ...], mask: Mask | None = None,
          x: torch.Tensor | None = None) -> tuple[int, int]:
    """(FLOPs with the mask's zeros skipped, dense FLOPs) for one input sample."""
    per_layer = layer_flops(model, input_shape, x)
    dense = sum(per_layer.values())
    if mask is None:
        return dense, dense
    sparse = sum(
        count * (mask[name].float().mean().item() if name in mask else 1.0) for name, count in per_layer.items()
    )
    return round(sparse), dense
