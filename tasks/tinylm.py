"""tinylm: a small decoder-only transformer trained here on text every Python install has; the embedded
default of the language-model family (``hf-causal-lm`` is the same code path on real checkpoints).

The model is a ``transformers`` Llama (pre-norm, causal self-attention, SwiGLU MLP) of 4 blocks of width
128, 0.84M parameters, on a byte-level vocabulary (256 ids, nothing to train) with a context of 128
tokens. The corpus is ``pydoc_data.topics`` (``tasks/lm/corpus.py``), split by document. The schedule is a
transformer's: AdamW (0.9, 0.95), weight decay 0.1, linear warm-up over the first half epoch to 3e-3,
then cosine decay to 3e-4 at T = 8 epochs; fine-tuning retrains at that final rate, LR rewinding replays
the decay from T - t. The metric is perplexity on the held-out documents (lower is better), in windows
of 128 tokens; next-token accuracy is recorded beside it.
"""

from __future__ import annotations

from functools import lru_cache

from harness.core.declared import identified_as
from harness.core.schedule import Schedule
from harness.data.token_data import TokenData, causal_lm_loss
from tasks.lm import corpus, models
from tasks.spec import DataOptions, OptimizerSpec, Task, register_task

EPOCHS = 8.0
SEQLEN = models.TINY["max_position_embeddings"]
BATCH = 16  # sequences of SEQLEN tokens: 2,048 tokens a step

@lru_cache(maxsize=1)
def embedded_corpus() -> corpus.Corpus:
    return corpus.python_topics()


@lru_cache(maxsize=1)
def token_splits() -> dict[str, object]:
    text = embedded_corpus()
    return {split: corpus.byte_tokens(text.text(split)) for split in corpus.SPLITS}


@identified_as("tasks.tinylm.load")
def load(options: DataOptions) -> TokenData:
    return TokenData(token_splits(), SEQLEN, options.batch_size, models.logits,  # type: ignore[arg-type]
                     device=options.device)


def unigram_perplexity() -> float:
    """The perplexity of the training split's byte frequencies (add-one smoothed) on the test split: the
    baseline a language model must beat by far."""
    import torch

    splits = token_splits()
    counts = torch.bincount(splits["train"], minlength=256).double() + 1.0  # type: ignore[arg-type]
    logp = (counts / counts.sum()).log()
    return float(torch.exp(-logp[splits["test"]].mean()))  # type: ignore[index]


lm_loss = identified_as("tasks.tinylm.lm_loss")(causal_lm_loss(models.logits))


@register_task("tinylm")
def tinylm() -> Task:
    return Task(
        name="tinylm",
        description="tiny Llama (4x128, 0.84M) on Python's own docs, byte-level, embedded, no download",
        schedule=Schedule(lr=3e-3, epochs=EPOCHS, warmup_epochs=0.5, anneal="cosine", final_lr=3e-4),
        batch_size=BATCH,
        optimizer=OptimizerSpec("adamw", betas=(0.9, 0.95), weight_decay=0.1),
        make_model=models.tiny_llama,
        load_data=load,
        input_shape=(SEQLEN,),
        criterion=lm_loss,
        data_definition=embedded_corpus().definition + f"; byte tokens, windows of {SEQLEN}",
        **models.LANGUAGE_MODEL,
    )
