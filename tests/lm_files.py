"""Real files in the released formats for the language-model tests: tiny randomly initialized causal LMs
saved with ``save_pretrained`` (with a tokenizer trained here by ``tokenizers``), WikiText-2 raw files and
C4-style JSON lines."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import harness  # noqa: F401  (transformers importable next to torchaudio)

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "A pruned network keeps a fraction of its weights.",
    "Rewinding the learning rate helps retraining after pruning.",
    "Perplexity is the exponential of the mean negative log-likelihood.",
    "Sparse tensor cores run two of every four weights.",
    "Calibration data are drawn from the training split.",
]


def paragraphs(count: int, offset: int = 0) -> list[str]:
    return [" ".join(SENTENCES[(i + j + offset) % len(SENTENCES)] for j in range(4)) for i in range(count)]


def write_wikitext(folder: Path, train: int = 120, held_out: int = 30) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, count, offset in (("wiki.train.raw", train, 0), ("wiki.valid.raw", held_out, 1),
                                ("wiki.test.raw", held_out, 2)):
        (folder / name).write_text("\n = Heading = \n\n" + "\n\n".join(paragraphs(count, offset)) + "\n",
                                   encoding="utf-8")
    return folder


def write_json_lines(folder: Path, gzipped: bool = True, train: int = 120, held_out: int = 40) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, count, offset in (("c4-train.00000-of-01024.json", train, 0),
                                ("c4-validation.00000-of-00008.json", held_out, 3)):
        lines = "".join(json.dumps({"text": t, "timestamp": "2019-04-25", "url": "x"}) + "\n"
                        for t in paragraphs(count, offset))
        if gzipped:
            with gzip.open(folder / f"{name}.gz", "wt", encoding="utf-8") as f:
                f.write(lines)
        else:
            (folder / name).write_text(lines, encoding="utf-8")
    return folder


def tokenizer(folder: Path, vocab: int = 96):
    """A byte-level BPE tokenizer trained deterministically on the test sentences, as transformers saves one."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=["<eos>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(SENTENCES * 4, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<eos>")
    fast.save_pretrained(folder)
    return fast


def save_model(folder: Path, kind: str = "opt", seed: int = 0) -> Path:
    """A tiny randomly initialized causal LM of ``kind`` (opt, gpt2, pythia or llama), saved with save_pretrained."""
    import torch
    from transformers import (
        GPT2Config,
        GPT2LMHeadModel,
        GPTNeoXConfig,
        GPTNeoXForCausalLM,
        LlamaConfig,
        LlamaForCausalLM,
        OPTConfig,
        OPTForCausalLM,
    )

    folder.mkdir(parents=True, exist_ok=True)
    vocab = len(tokenizer(folder))
    torch.manual_seed(seed)
    if kind == "opt":
        config = OPTConfig(vocab_size=vocab, hidden_size=32, ffn_dim=64, num_hidden_layers=2, num_attention_heads=2,
                           max_position_embeddings=32, word_embed_proj_dim=32, pad_token_id=0, bos_token_id=0,
                           eos_token_id=0)
        model = OPTForCausalLM(config)
    elif kind == "pythia":  # Pythia is GPT-NeoX
        model = GPTNeoXForCausalLM(GPTNeoXConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64,
                                                 num_hidden_layers=2, num_attention_heads=2,
                                                 max_position_embeddings=32, bos_token_id=0, eos_token_id=0))
    elif kind == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(vocab_size=vocab, n_positions=32, n_embd=32, n_layer=2, n_head=2,
                                           bos_token_id=0, eos_token_id=0))
    else:
        model = LlamaForCausalLM(LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64,
                                             num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                                             max_position_embeddings=32, bos_token_id=0, eos_token_id=0))
    model.save_pretrained(folder)
    return folder
