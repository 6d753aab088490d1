"""GNMT (Wu et al. 2016) as the MLPerf 0.5 reference cut it to 4 layers, registered with fairseq.

Encoder: embedding, a bidirectional LSTM, then unidirectional LSTMs; residual connections from the
third layer on. Decoder: the first LSTM layer's output queries a normalized Bahdanau attention over
the encoder's output; every later layer takes [its input, the attention context]; residual
connections from the third layer on; a linear classifier over the shared vocabulary. The encoder
and decoder share one embedding (one BPE vocabulary for both languages). Every parameter starts
uniform in [-s, s]: s = 0.1 at the reference's 1024 units, s = 0.1 sqrt(1024 / units) at other widths,
so that each layer passes its input's signal on as the reference's do (at 64 units and s = 0.1 the
encoder's output varies across sentences by 2% of its size, and the decoder learns as if it had no
source at all).

``fairseq-train --user-dir tasks/nmt --arch gnmt`` finds it too; the harness builds it through
``build_gnmt``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from fairseq.models import (
    FairseqEncoder,
    FairseqEncoderDecoderModel,
    FairseqIncrementalDecoder,
    register_model,
    register_model_architecture,
)
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

RESIDUAL_FROM = 3  # the first layer (1-based) whose input is added to its output
MAX_POSITIONS = 1024


class NormalizedBahdanauAttention(nn.Module):
    """score(q, k) = g * v/|v| . tanh(W_q q + W_k k + b), softmax over the source (Bahdanau et al. 2015;
    the weight normalization of Salimans & Kingma 2016, as GNMT's reference uses it)."""

    def __init__(self, query_size: int, key_size: int, units: int) -> None:
        super().__init__()
        self.linear_q = nn.Linear(query_size, units, bias=False)
        self.linear_k = nn.Linear(key_size, units, bias=False)
        self.v = nn.Parameter(torch.empty(units))
        self.g = nn.Parameter(torch.empty(()))
        self.b = nn.Parameter(torch.empty(units))

    def reset_normalization(self) -> None:
        nn.init.constant_(self.g, 1.0 / math.sqrt(self.v.numel()))
        nn.init.zeros_(self.b)

    def forward(self, query: torch.Tensor, keys: torch.Tensor, padding: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """query (Tq, B, Q), keys (Tk, B, K), padding (B, Tk) -> context (Tq, B, K), weights (B, Tq, Tk)."""
        q = self.linear_q(query).transpose(0, 1).unsqueeze(2)  # B, Tq, 1, U
        k = self.linear_k(keys).transpose(0, 1).unsqueeze(1)  # B, 1, Tk, U
        v = self.g * self.v / self.v.norm()
        scores = torch.tanh(q + k + self.b) @ v  # B, Tq, Tk
        scores = scores.masked_fill(padding.unsqueeze(1), float("-inf"))
        weights = F.softmax(scores.float(), dim=-1).type_as(scores)
        context = weights @ keys.transpose(0, 1)  # B, Tq, K
        return context.transpose(0, 1), weights


def run_lstm(lstm: nn.LSTM, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    packed = pack_padded_sequence(x, lengths.cpu(), enforce_sorted=False)
    out, _ = lstm(packed)
    return pad_packed_sequence(out, total_length=x.size(0))[0]


class GNMTEncoder(FairseqEncoder):
    def __init__(self, dictionary: Any, embed: nn.Embedding, hidden: int, layers: int, dropout: float) -> None:
        super().__init__(dictionary)
        self.embed_tokens = embed
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList([nn.LSTM(embed.embedding_dim, hidden, bidirectional=True)])
        self.layers.append(nn.LSTM(2 * hidden, hidden))
        self.layers.extend(nn.LSTM(hidden, hidden) for _ in range(layers - 2))

    def forward(self, src_tokens: torch.Tensor, src_lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.embed_tokens(src_tokens).transpose(0, 1)  # T, B, C
        for i, lstm in enumerate(self.layers, start=1):
            out = run_lstm(lstm, self.dropout(x), src_lengths)
            x = out + x if i >= RESIDUAL_FROM else out
        return {"encoder_out": x, "padding_mask": src_tokens.eq(self.dictionary.pad())}

    def reorder_encoder_out(self, encoder_out: dict[str, torch.Tensor], new_order: torch.Tensor) -> dict:
        return {"encoder_out": encoder_out["encoder_out"].index_select(1, new_order),
                "padding_mask": encoder_out["padding_mask"].index_select(0, new_order)}

    def max_positions(self) -> int:
        return MAX_POSITIONS


class GNMTDecoder(FairseqIncrementalDecoder):
    def __init__(self, dictionary: Any, embed: nn.Embedding, hidden: int, layers: int, dropout: float) -> None:
        super().__init__(dictionary)
        self.embed_tokens = embed
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList([nn.LSTM(embed.embedding_dim, hidden)])
        self.layers.extend(nn.LSTM(2 * hidden, hidden) for _ in range(layers - 1))
        self.attention = NormalizedBahdanauAttention(hidden, hidden, hidden)
        self.classifier = nn.Linear(hidden, embed.num_embeddings)

    def forward(self, prev_output_tokens: torch.Tensor, encoder_out: dict[str, torch.Tensor],
                incremental_state: dict | None = None, **kwargs: Any) -> tuple[torch.Tensor, dict]:
        if incremental_state is not None:
            prev_output_tokens = prev_output_tokens[:, -1:]
        cached = self.get_incremental_state(incremental_state, "state") if incremental_state is not None else None
        x = self.embed_tokens(prev_output_tokens).transpose(0, 1)  # T, B, C
        states: dict[str, torch.Tensor | None] = {}
        context = weights = None
        for i, lstm in enumerate(self.layers, start=1):
            inputs = x if context is None else torch.cat([x, context], dim=-1)
            before = (cached[f"h{i}"], cached[f"c{i}"]) if cached is not None else None
            out, (h, c) = lstm(self.dropout(inputs), before)
            states[f"h{i}"], states[f"c{i}"] = h, c
            if context is None:  # the first layer's output asks where to look
                context, weights = self.attention(out, encoder_out["encoder_out"], encoder_out["padding_mask"])
            x = out + x if i >= RESIDUAL_FROM else out
        if incremental_state is not None:
            self.set_incremental_state(incremental_state, "state", states)
        return self.classifier(self.dropout(x)).transpose(0, 1), {"attn": [weights]}

    def reorder_incremental_state(self, incremental_state: dict, new_order: torch.Tensor) -> None:
        cached = self.get_incremental_state(incremental_state, "state")
        if cached is not None:
            reordered = {k: v.index_select(1, new_order) for k, v in cached.items() if v is not None}
            self.set_incremental_state(incremental_state, "state", reordered)

    def max_positions(self) -> int:
        return MAX_POSITIONS


@register_model("gnmt")
class GNMT(FairseqEncoderDecoderModel):
    @staticmethod
    def add_args(parser: Any) -> None:
        parser.add_argument("--hidden-size", type=int, help="LSTM units, embedding and attention size")
        parser.add_argument("--layers", type=int, help="LSTM layers of the encoder and of the decoder")
        parser.add_argument("--dropout", type=float, help="dropout before every LSTM layer and the classifier")

    @classmethod
    def build_model(cls, args: Any, task: Any) -> GNMT:
        gnmt(args)
        if task.source_dictionary != task.target_dictionary:
            raise ValueError("GNMT shares one embedding: preprocess with --joined-dictionary")
        return build_gnmt(task.source_dictionary, len(task.source_dictionary), args.hidden_size, args.layers,
                          args.dropout)


REFERENCE_UNITS, REFERENCE_INIT = 1024, 0.1


def build_gnmt(dictionary: Any, vocab: int, hidden: int = 1024, layers: int = 4, dropout: float = 0.2) -> GNMT:
    """A GNMT over ``vocab`` entries (at least ``len(dictionary)``: the harness fixes a task's size)."""
    if layers < 2:
        raise ValueError(f"GNMT needs at least 2 layers (a bidirectional one, then the rest), got {layers}")
    embed = nn.Embedding(vocab, hidden, padding_idx=dictionary.pad())
    model = GNMT(GNMTEncoder(dictionary, embed, hidden, layers, dropout),
                 GNMTDecoder(dictionary, embed, hidden, layers, dropout))
    scale = REFERENCE_INIT * math.sqrt(REFERENCE_UNITS / hidden)
    for p in model.parameters():
        nn.init.uniform_(p, -scale, scale)
    model.decoder.attention.reset_normalization()
    return model


@register_model_architecture("gnmt", "gnmt")
def gnmt(args: Any) -> None:
    """The paper's GNMT: 4 layers of 1024 units."""
    args.hidden_size = getattr(args, "hidden_size", None) or 1024
    args.layers = getattr(args, "layers", None) or 4
    args.dropout = getattr(args, "dropout", 0.2)


@register_model_architecture("gnmt", "gnmt_tiny")
def gnmt_tiny(args: Any) -> None:
    """For tests and quick studies: the same 4 layers, of 64 units."""
    args.hidden_size = getattr(args, "hidden_size", None) or 64
    args.layers = getattr(args, "layers", None) or 4
    args.dropout = getattr(args, "dropout", 0.1)
