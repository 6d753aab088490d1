"""A folder binarized by ``fairseq-preprocess`` as the harness's ``Data``: token-based batches in an
order fixed by (seed, epoch), and BLEU by beam search.

Expected files (``fairseq-preprocess --source-lang en --target-lang de --joined-dictionary
--trainpref train --validpref newstest2014 --testpref newstest2015``): ``dict.{en,de}.txt`` and
``{train,valid,test}.en-de.{en,de}.{bin,idx}``.

BLEU: the best beam's tokens with the BPE continuation marker "@@ " removed, Moses-detokenized
(sacremoses), scored by sacrebleu's ``corpus_bleu`` with its standard 13a tokenization against the
references treated the same way; the score is in BLEU points (0-100).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sacrebleu
import torch
from fairseq import utils
from fairseq.data import Dictionary, LanguagePairDataset, data_utils
from fairseq.sequence_generator import SequenceGenerator
from torch import nn

from harness.core.errors import HarnessError
from harness.data.tensor_data import epoch_order

SPLITS = {"train": "train", "val": "valid", "test": "test"}  # the harness's names -> fairseq-preprocess's


def padded_dictionary(path: Path, size: int) -> Dictionary:
    """The dictionary, filled up to the model's fixed vocabulary with placeholder symbols."""
    d = Dictionary.load(str(path))
    if len(d) > size:
        raise HarnessError(f"{path} has {len(d)} symbols but this task's model has a vocabulary of {size}; "
                           "valid: a joined BPE dictionary of at most that size")
    while len(d) < size:
        d.add_symbol(f"<unused{len(d)}>", n=0)
    return d


@dataclass(frozen=True)
class Pair:
    source: str
    target: str

    def prefix(self, split: str) -> str:
        return f"{split}.{self.source}-{self.target}"


def find_pair(folder: Path, source: str, target: str) -> Pair:
    if not folder.is_dir():
        raise HarnessError(f"--data-dir {folder} is not a folder; valid: a folder written by fairseq-preprocess")
    pair = Pair(source, target)
    needed = [f"dict.{source}.txt", f"dict.{target}.txt"] + [
        f"{pair.prefix(split)}.{lang}.{ext}" for split in SPLITS.values() for lang in (source, target)
        for ext in ("bin", "idx")]
    missing = [name for name in needed if not (folder / name).exists()]
    if missing:
        raise HarnessError(f"--data-dir {folder} lacks {', '.join(missing[:3])}"
                           f"{' and more' if len(missing) > 3 else ''}; valid: the output of fairseq-preprocess "
                           f"--source-lang {source} --target-lang {target} --joined-dictionary "
                           "--trainpref ... --validpref ... --testpref ...")
    return pair


class TranslationData:
    """Training batches of at most ``max_tokens`` tokens (and ``max_sentences`` sentences) of length
    at most ``max_length``; evaluation by beam search on the whole valid or test split."""

    def __init__(self, folder: Path, source: str, target: str, vocab: int, max_sentences: int, max_tokens: int,
                 max_length: int, beam: int, device: str = "cpu") -> None:
        self.pair = find_pair(folder, source, target)
        self.dictionary = padded_dictionary(folder / f"dict.{source}.txt", vocab)
        if padded_dictionary(folder / f"dict.{target}.txt", vocab).symbols != self.dictionary.symbols:
            raise HarnessError(f"{folder}: dict.{source}.txt and dict.{target}.txt differ; GNMT shares one "
                               "vocabulary: preprocess with --joined-dictionary")
        self.device = torch.device(device)
        self.beam = beam
        self.max_tokens = max_tokens
        self.splits = {name: self._load(folder, self.pair.prefix(split)) for name, split in SPLITS.items()}
        train = self.splits["train"]
        indices = train.ordered_indices()
        indices, dropped = train.filter_indices_by_size(indices, (max_length, max_length))
        self.dropped = len(dropped)
        self.batches = [np.asarray(b) for b in train.batch_by_size(indices, max_tokens=max_tokens,
                                                                    max_sentences=max_sentences)]
        if not self.batches:
            raise HarnessError(f"{folder}: no training pair of at most {max_length} tokens")
        self.steps_per_epoch = len(self.batches)

    def _load(self, folder: Path, prefix: str) -> LanguagePairDataset:
        src, tgt = (data_utils.load_indexed_dataset(str(folder / f"{prefix}.{lang}"), self.dictionary)
                    for lang in (self.pair.source, self.pair.target))
        if src is None or tgt is None or len(src) != len(tgt):
            raise HarnessError(f"{folder}: {prefix} is not a readable pair of binarized files of equal length")
        # right padding: the encoder packs sequences, so the padding never enters its recurrences
        return LanguagePairDataset(src, src.sizes, self.dictionary, tgt, tgt.sizes, self.dictionary,
                                   left_pad_source=False, left_pad_target=False)

    def _collate(self, dataset: LanguagePairDataset, ids: Any) -> dict[str, Any]:
        sample = dataset.collater([dataset[int(i)] for i in ids])
        return utils.apply_to_sample(lambda t: t.to(self.device), sample)

    def batch(self, seed: int, epoch: int, index: int) -> dict[str, Any]:
        order = epoch_order(len(self.batches), seed, epoch)
        return self._collate(self.splits["train"], self.batches[int(order[index])])

    def eval_batches(self, split: str) -> Iterator[dict[str, Any]]:
        dataset = self.splits[split]
        for ids in dataset.batch_by_size(dataset.ordered_indices(), max_tokens=self.max_tokens):
            yield self._collate(dataset, ids)

    def evaluate(self, model: nn.Module, split: str) -> float:
        return bleu(model, self.eval_batches(split), self.dictionary, self.beam)


def detokenized(dictionary: Dictionary, detok: Any, tokens: torch.Tensor) -> str:
    """Token ids -> the sentence as written: padding and EOS dropped, BPE joined, Moses-detokenized."""
    words = dictionary.string(utils.strip_pad(tokens, dictionary.pad()), bpe_symbol="subword_nmt")
    return detok.detokenize(words.split())


def bleu(model: nn.Module, batches: Iterator[dict[str, Any]], dictionary: Dictionary, beam: int) -> float:
    """Corpus BLEU of the model's beam-search translations (see the module's docstring)."""
    # start-up: the detokenizer only when BLEU is computed
    from sacremoses import MosesDetokenizer

    detok = MosesDetokenizer()
    generator = SequenceGenerator([model], dictionary, beam_size=beam, max_len_a=1.5, max_len_b=10)
    hypotheses, references = {}, {}
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for sample in batches:
            outputs = generator.generate([model], sample)
            for i, sid in enumerate(sample["id"].tolist()):
                hypotheses[sid] = detokenized(dictionary, detok, outputs[i][0]["tokens"])
                references[sid] = detokenized(dictionary, detok, sample["target"][i])
    model.train(was_training)
    order = sorted(references)
    return float(sacrebleu.corpus_bleu([hypotheses[i] for i in order], [[references[i] for i in order]]).score)


def label_smoothed_loss(forward: Any, sample: dict[str, Any], pad: int = 1, smoothing: float = 0.1) -> torch.Tensor:
    """Cross-entropy per target token with label smoothing, padding (fairseq's index 1) ignored, as GNMT
    trains."""
    logits = forward(**sample["net_input"])[0]
    return nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), sample["target"].reshape(-1),
                                       ignore_index=pad, label_smoothing=smoothing)
