"""Causal language models, all built or loaded by ``transformers``: the embedded tiny Llama and any
checkpoint ``AutoModelForCausalLM`` loads from a folder, through one code path (``LANGUAGE_MODEL``: what
every task of the family declares alike).

Prunable (``block_linears``): the linear layers inside the decoder blocks (attention projections and the
MLP); the embeddings, the LM head and layers outside the blocks stay dense, as in Wanda and SparseGPT.
GPT-2's ``Conv1D`` holds its weight as (in, out); ``layers.out_by_in`` gives every weight as (out, in).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from harness.core.declared import identified_as
from harness.core.errors import HarnessError
from harness.core.flops import flops, weight_layer
from harness.core.masks import Mask
from harness.core.metrics import Metric, register_metric
from harness.data.token_data import causal_lm_predictions

# the embedded model: a pre-norm decoder (RMSNorm, causal self-attention with rotary positions, SwiGLU MLP)
TINY = {"vocab_size": 256, "hidden_size": 128, "intermediate_size": 336, "num_hidden_layers": 4,
        "num_attention_heads": 4, "num_key_value_heads": 4, "max_position_embeddings": 128}


def transformers() -> Any:
    """The ``transformers`` package, or a one-line error saying how to install it."""
    try:
        import transformers  # start-up: transformers takes seconds to import, only the language-model tasks need it
    except ImportError:
        raise HarnessError("the language-model tasks need transformers: pip install -c constraints.txt -e '.[lm]'") \
            from None
    return transformers


def tiny_llama() -> nn.Module:
    hf = transformers()
    config = hf.LlamaConfig(**TINY, tie_word_embeddings=False, use_cache=False, attn_implementation="sdpa",
                         bos_token_id=None, eos_token_id=None, pad_token_id=None)
    return hf.LlamaForCausalLM(config)


def load_checkpoint(path: Path) -> nn.Module:
    """A causal LM saved with ``save_pretrained`` (config and weights), in float32, never running code of its own."""
    try:
        model = transformers().AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, trust_remote_code=False,
                                                     use_safetensors=None, local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise HarnessError(f"--model {path} is not a causal LM transformers can load: {first}") from None
    model.config.use_cache = False
    return model


def logits(model: Any, ids: torch.Tensor) -> torch.Tensor:
    return model(input_ids=ids, use_cache=False).logits


def feed(model: Any, ids: torch.Tensor) -> None:
    """Run a calibration batch through the model (pruning reads its layers' inputs on the way)."""
    model(input_ids=ids, use_cache=False)


def decoder_blocks(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """The model's list of decoder blocks: the module list with one entry per hidden layer."""
    layers = getattr(model.config, "num_hidden_layers", None)
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == layers:
            return name, module
    raise HarnessError(f"cannot find the {layers} decoder blocks of {type(model).__name__}")


def block_names(model: nn.Module) -> list[str]:
    prefix, blocks = decoder_blocks(model)
    return [f"{prefix}.{i}" for i in range(len(blocks))]


@identified_as("tasks.lm.block_linears")
def block_linears(model: nn.Module) -> list[str]:
    prefix, blocks = decoder_blocks(model)
    return [f"{prefix}.{name}.weight" for name, module in blocks.named_modules() if name and weight_layer(module)]


def context_length(model: nn.Module) -> int:
    config = model.config
    for key in ("max_position_embeddings", "n_positions", "n_ctx"):
        if isinstance(getattr(config, key, None), int):
            return int(getattr(config, key))
    raise HarnessError(f"{type(model).__name__} declares no context length")


def lm_flops(model: nn.Module, mask: Mask | None = None) -> tuple[int, int]:
    """FLOPs of the weight layers (the LM head included) for one sequence of the context length."""
    ids = torch.zeros(1, context_length(model), dtype=torch.long, device=next(model.parameters()).device)
    return flops(model, (), mask, x=ids)


@identified_as("tasks.lm.lm_head")
def lm_head(model: nn.Module) -> list[str]:
    """The LM head's weight under its parameter name: the input embedding's where the two are tied."""
    head = model.get_output_embeddings().weight
    return [name for name, p in model.named_parameters() if p is head][:1]


PERPLEXITY_DEFINITION = ("perplexity: exp of the mean next-token negative log-likelihood over the split cut into "
                         "non-overlapping windows of seqlen tokens (each window predicted from its own start)")
PERPLEXITY = register_metric(Metric("perplexity", "", higher_is_better=False, low=1.0, label="perplexity"))

# the Task fields every language-model task shares
LANGUAGE_MODEL: dict[str, Any] = {
    "metric": "perplexity", "metric_definition": PERPLEXITY_DEFINITION, "prunable": block_linears, "head": lm_head,
    "grad_clip": 1.0, "count_flops": lm_flops, "calibration": feed, "predictor": causal_lm_predictions(logits),
    "blocks": block_names,
}
