"""WMT16 EN-DE with GNMT (the paper's translation task), on data binarized by ``fairseq-preprocess``.

The schedule is design.md's: Adam (0.9, 0.999) at 0.002 after an exponential warmup from 0.002 x 0.01
over the first 0.125 epochs, halved at epochs 3.75, 4.165 and 4.58 of T = 5. Batches hold at most
``batch_size`` sentences and ``batch_size x 32`` tokens (2048 sentences: the paper's batch); pairs
longer than 50 tokens are left out of training, as in the MLPerf reference. Validation is the
``valid`` split (newstest2014), test the ``test`` split (newstest2015), both scored in BLEU.

Pruned tensors (``prunable``): every weight matrix, i.e. the shared embedding, the LSTMs' input and
recurrent weights (both directions), the attention's query and key projections and the classifier;
biases and the attention's score vector and scale stay dense. The pruning strategy
``global-magnitude-no-attention`` keeps the attention dense, as Zhu & Gupta (2018) did.

Requires the ``nmt`` extra (fairseq); without it the tasks are listed but say what to install.
"""

from __future__ import annotations

import functools
from typing import Any

from torch import nn

from harness.core.declared import identified_as
from harness.core.errors import HarnessError
from harness.core.schedule import Schedule
from tasks.spec import DataOptions, OptimizerSpec, Task, register_task

EPOCHS = 5.0
VOCAB = 32320  # the MLPerf reference's shared BPE vocabulary (32,317 symbols, padded to a multiple of 8)
TOKENS_PER_SENTENCE = 32  # the token budget of a batch, per sentence of its nominal size
MAX_LENGTH = 50
SOURCE, TARGET = "en", "de"
BLEU_DEFINITION = ("BLEU points (0-100): sacrebleu corpus_bleu, 13a tokenization, of beam-search output with BPE "
                   "removed and Moses-detokenized (sacremoses), against references treated the same way")


@functools.cache  # the criterion asks at every step
def fairseq_modules() -> tuple[Any, Any]:
    try:
        from tasks.nmt import data, gnmt
    except ImportError as e:
        raise HarnessError(f"the translation tasks need fairseq ({e.name} is missing): "
                           "pip install -c constraints.txt -e '.[nmt]'") from None
    return gnmt, data


def gnmt_schedule() -> Schedule:
    return Schedule(lr=0.002, epochs=EPOCHS, drops=((3.75, 0.001), (4.165, 0.0005), (4.58, 0.00025)),
                    warmup_epochs=0.125, warmup_from=0.01, exponential_warmup=True)


@identified_as("tasks.wmt16.weight_matrices")
def weight_matrices(model: nn.Module) -> list[str]:
    """Every 2-D parameter (a shared embedding once)."""
    return [name for name, p in model.named_parameters() if p.dim() == 2]


def gnmt_flops(model: nn.Module, mask: Any = None) -> tuple[int, int]:
    """FLOPs per translated token (one source and one target token): a multiply-add per weight of every
    matrix but the embedding, which is a lookup; the attention's per-source-position work is not counted."""
    sparse = dense = 0
    params = dict(model.named_parameters())
    for name in weight_matrices(model):
        if "embed_tokens" in name:
            continue
        p = params[name]
        dense += 2 * p.numel()
        sparse += 2 * (int(mask[name].sum().item()) if mask is not None and name in mask else p.numel())
    return sparse, dense


def translation_task(name: str, description: str, hidden: int, layers: int, dropout: float, batch: int,
                     beam: int, documented: float | None = None) -> Task:
    def make_model() -> nn.Module:
        gnmt, _ = fairseq_modules()
        # start-up: fairseq only when a translation task is built
        from fairseq.data import Dictionary

        return gnmt.build_gnmt(Dictionary(), VOCAB, hidden, layers, dropout)

    @identified_as("tasks.wmt16.translation_task.<locals>.load")
    def load(options: DataOptions) -> Any:
        _, data = fairseq_modules()
        if options.data_dir is None:
            raise HarnessError(f"{name} needs --data-dir: a folder written by fairseq-preprocess "
                               f"(--source-lang {SOURCE} --target-lang {TARGET} --joined-dictionary)")
        return data.TranslationData(options.data_dir, SOURCE, TARGET, VOCAB, options.batch_size,
                                    options.batch_size * TOKENS_PER_SENTENCE, MAX_LENGTH, beam, options.device)

    @identified_as("tasks.wmt16.translation_task.<locals>.criterion")
    def criterion(forward: Any, sample: Any) -> Any:
        return fairseq_modules()[1].label_smoothed_loss(forward, sample)

    return Task(
        name=name, description=description, schedule=gnmt_schedule(), batch_size=batch,
        optimizer=OptimizerSpec("adam", betas=(0.9, 0.999)), make_model=make_model, load_data=load,
        input_shape=(), metric="bleu", metric_definition=BLEU_DEFINITION, prunable=weight_matrices,
        criterion=criterion, grad_clip=5.0, count_flops=gnmt_flops, documented_unpruned=documented,
    )


@register_task("wmt16-gnmt")
def wmt16_gnmt() -> Task:
    return translation_task("wmt16-gnmt", "WMT16 EN-DE, GNMT 4x1024 (MLPerf 0.5), fairseq-preprocessed data",
                            hidden=1024, layers=4, dropout=0.2, batch=2048, beam=5,
                            documented=26.87)  # BLEU on newstest2015, the paper's table 2


@register_task("wmt16-gnmt-tiny")
def wmt16_gnmt_tiny() -> Task:
    return translation_task("wmt16-gnmt-tiny", "GNMT 4x64 on any fairseq-preprocessed EN-DE folder: tests, "
                            "quick studies", hidden=64, layers=4, dropout=0.1, batch=64, beam=4)
