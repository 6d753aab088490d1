"""LoRA adapters on the prunable layers through ``peft``, with a merge that keeps the mask (``trainable.Adapters``).

peft builds and initializes the adapters (A Kaiming-uniform, B zero) and computes their update
``get_delta_weight`` in each layer's own weight layout (GPT-2's ``Conv1D`` included); the forward pass of
the masked and scaled variants is this module's, as in Zimmer et al.'s MaskLoRA and ScaleLoRA.
"""

from __future__ import annotations

import math
import types
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from harness.core.errors import HarnessError
from harness.core.masks import Mask

ADAPTER = "default"


def base_name(weight: str) -> str:
    """A prunable weight's name once peft has wrapped its layer (``a.b.weight`` -> ``a.b.base_layer.weight``)."""
    module, leaf = weight.rsplit(".", 1)
    return f"{module}.base_layer.{leaf}"


KEEP = "harness_keep"  # the layer's mask, an attribute of the wrapped layer (not a buffer: not in its state)


def _effective(layer: Any, merge: str) -> torch.Tensor:
    weight = layer.base_layer.weight
    delta = layer.get_delta_weight(ADAPTER)
    if merge == "dense":
        return weight + delta
    if merge == "mask":
        return weight + delta * getattr(layer, KEEP)
    return weight * (delta / layer.scaling[ADAPTER])  # scale: W ⊙ BA, zero wherever W is


def _forward(merge: str) -> Any:
    def forward(layer: Any, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return torch.func.functional_call(layer.base_layer, {"weight": _effective(layer, merge)}, (x, *args), kwargs)

    return forward


def inject(model: nn.Module, modules: Sequence[str], rank: int, alpha: float, merge: str, mask: Mask) -> nn.Module:
    """``model`` with adapters on ``modules`` (in place); the network's own parameters frozen."""
    try:
        import peft  # start-up: peft imports transformers
    except ImportError:
        raise HarnessError("the LoRA methods need peft: pip install -c constraints.txt -e '.[lm]'") from None

    config = peft.LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0, target_modules=list(modules), bias="none")
    with warnings.catch_warnings():  # GPT-2's Conv1D: peft sets fan_in_fan_out itself, and says so
        warnings.simplefilter("ignore")
        peft.inject_adapter_in_model(config, model, adapter_name=ADAPTER)
    for name, p in model.named_parameters():
        p.requires_grad_(".lora_" in name)
    for module_name in modules:
        layer = model.get_submodule(module_name)
        setattr(layer, KEEP, mask[f"{module_name}.weight"].to(layer.base_layer.weight.device))
        if merge == "scale":
            with torch.no_grad():  # BA starts at all ones: the network starts as it was pruned
                for part in (layer.lora_A[ADAPTER].weight, layer.lora_B[ADAPTER].weight):
                    part.fill_(1.0 / math.sqrt(rank))
        if merge != "dense":
            layer.forward = types.MethodType(_forward(merge), layer)
    return model


def layers(model: nn.Module) -> dict[str, Any]:
    return {name: m for name, m in model.named_modules() if hasattr(m, "lora_A") and hasattr(m, "base_layer")}


@torch.no_grad()
def merged_into(wrapped: nn.Module, model: nn.Module, merge: str) -> nn.Module:
    """``model`` (a fresh network of the same architecture) holding the wrapped network's weights with the
    adapters merged: masked, scaled or, for plain LoRA, added densely."""
    state = {k.replace(".base_layer.", "."): v for k, v in wrapped.state_dict().items() if ".lora_" not in k}
    for name, layer in layers(wrapped).items():
        state[f"{name}.weight"] = _effective(layer, merge).detach().clone()
    model.load_state_dict(state)
    return model.to(next(wrapped.parameters()).device)
