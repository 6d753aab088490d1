"""hf-causal-lm: a pretrained causal LM that ``transformers`` loads from a folder (OPT, GPT-2, Pythia,
Llama-family), on WikiText-2 raw or C4-style JSON lines from ``--data-dir``, tokenized by the model's own
tokenizer, scored in perplexity over windows of the model's context length.

A checkpoint has no training run of ours: no T, no schedule S, no rewind points. Its base network is the
checkpoint itself (T = 0), so only the methods that start from W_T with their own schedule apply
(fine-tuning, SLR, CLR, LLR, ALLR); their t is in epochs of the retraining data (the training split).
The checkpoint's files and the data's files enter the base network's identity by their SHA-256, so a
store folder's name says which weights and which text its numbers came from.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import torch
from torch import nn

from harness.core.declared import identified_as
from harness.core.errors import HarnessError
from harness.core.hparams import BaseHparams
from harness.core.schedule import Schedule
from harness.data.token_data import TokenData, causal_lm_loss
from tasks.lm import corpus, models
from tasks.spec import DataOptions, OptimizerSpec, Task, register_task

NAME = "hf-causal-lm"
LR = 5e-5  # AdamW's retraining rate: fine-tuning's S[T], and the peak of SLR, CLR, LLR and ALLR
BATCH = 8  # sequences of the context length a step
NEEDS = f"{NAME} needs --model PATH (a folder saved by save_pretrained) and --data-dir (WikiText-2 raw or JSON lines)"
CHECKPOINT_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                    "special_tokens_map.json", "vocab.json", "merges.txt", "tokenizer.model")


def local_folder(model: str) -> str:
    """``--model`` as a local folder: the folder itself, or a hub name's files, downloaded where the network
    allows (into the Hugging Face cache) and read from there."""
    if Path(model).exists():
        return str(Path(model).resolve())
    try:
        from huggingface_hub import snapshot_download  # start-up: only for a hub name

        return snapshot_download(repo_id=model, allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model"])
    except Exception as e:  # no network, no such repository, a malformed name: all one answer
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise HarnessError(f"--model {model} is neither a folder nor a hub model that could be downloaded "
                           f"({first[:160]}); valid: a folder saved by save_pretrained") from None


@functools.cache
def checkpoint_digest(folder: str) -> str:
    """SHA-256 of the checkpoint's config, tokenizer and weight files."""
    return corpus.files_digest(sorted(p for p in Path(folder).iterdir() if p.name in CHECKPOINT_FILES
                                      or p.suffix in (".safetensors", ".bin")
                                      or p.name.endswith(".safetensors.index.json")))


@functools.cache
def config_of(folder: str) -> object:
    try:
        return models.transformers().AutoConfig.from_pretrained(folder, trust_remote_code=False, local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise HarnessError(f"--model {folder} is not a model folder transformers can read: {first}") from None


@identified_as("tasks.hf_causal_lm.architecture")
def architecture(folder: str) -> nn.Module:
    """The checkpoint's network, randomly initialized from its config (weights come from the base run)."""
    model = models.transformers().AutoModelForCausalLM.from_config(config_of(folder), dtype=torch.float32)
    model.config.use_cache = False
    return model


@functools.cache  # asked at every cell's check: read and digested once per folder
def corpus_of(data_dir: str) -> corpus.Corpus:
    return corpus.from_folder(Path(data_dir))


@functools.cache
def tokenized(folder: str, data_dir: str) -> dict[str, torch.Tensor]:
    text = corpus_of(data_dir)
    try:
        tokenizer = models.transformers().AutoTokenizer.from_pretrained(folder, trust_remote_code=False,
                                                                        local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        raise HarnessError(f"--model {folder} has no tokenizer transformers can load: {e}") from None
    return {split: torch.tensor(tokenizer(text.text(split), add_special_tokens=False)["input_ids"], dtype=torch.long)
            for split in corpus.SPLITS}


@identified_as("tasks.hf_causal_lm.load")
def load(folder: str, data_dir: str, seqlen: int, options: DataOptions) -> TokenData:
    try:
        return TokenData(tokenized(folder, data_dir), seqlen, options.batch_size, models.logits,
                         device=options.device)
    except ValueError as e:
        raise HarnessError(f"--data-dir {data_dir}: {e}") from None


def unbound(options: DataOptions) -> TokenData:
    raise HarnessError(NEEDS)


def no_model() -> nn.Module:
    raise HarnessError(NEEDS)


lm_loss = identified_as("tasks.hf_causal_lm.lm_loss")(causal_lm_loss(models.logits))


def bind(task: Task, hp: BaseHparams) -> Task:
    """The task on the run's checkpoint and data folder."""
    if hp.checkpoint is None or hp.data_dir is None:
        raise HarnessError(NEEDS)
    folder, data_dir = hp.checkpoint, hp.data_dir
    if not Path(folder).is_dir():
        raise HarnessError(f"--model {folder} is not a folder; valid: a folder saved by save_pretrained")
    config = config_of(folder)
    with torch.device("meta"):
        seqlen = models.context_length(architecture(folder))
    text = corpus_of(data_dir)
    return dataclasses.replace(
        task,
        description=f"{type(config).__name__.removesuffix('Config')} from {folder}",
        make_model=functools.partial(architecture, folder),
        load_data=functools.partial(load, folder, data_dir, seqlen),
        input_shape=(seqlen,),
        pretrained=functools.partial(models.load_checkpoint, Path(folder)),
        data_definition=f"checkpoint sha256 {checkpoint_digest(folder)}; {text.definition}; the checkpoint's "
                        f"tokenizer, windows of {seqlen}",
        bind=None,
        locate=None,
    )


@register_task(NAME)
def hf_causal_lm() -> Task:
    return Task(
        name=NAME,
        description="a pretrained causal LM (--model PATH) on WikiText-2 raw or C4-style JSON lines (--data-dir)",
        schedule=Schedule(lr=LR, epochs=0.0),
        batch_size=BATCH,
        optimizer=OptimizerSpec("adamw", betas=(0.9, 0.999), weight_decay=0.0),
        make_model=no_model,
        load_data=unbound,
        input_shape=(),
        criterion=lm_loss,
        bind=bind,
        locate=local_folder,
        **models.LANGUAGE_MODEL,
    )
