"""Parameter-efficient retraining after pruning (Zimmer et al., "PERP"): retrain only the biases and the
normalization layers, or LoRA adapters whose merge keeps the mask.

- ``biases-norms``: PERP's selective retraining (``train_head=1`` adds the LM head); the "BN recalibration"
  baseline on a vision task.
- ``masklora``: W + s (BA ⊙ m), masked in training and merged so (MaskLoRA).
- ``scalelora``: W ⊙ BA, BA starting at all ones (ScaleLoRA).
- ``lora``: plain LoRA, W + s BA: a labelled baseline, which densifies the pruned network when merged; its
  record reports the density after the merge.

Each trains for t epochs from W_T with LLR's schedule: warm-up, then linear decay to 0.
"""

from methods.lr import LinearDecay
from methods.restarting import knobs
from methods.spec import Length, Retraining, Start, Weights, register_method
from methods.trainable import Adapters, Subset

PERP = ("Zimmer, Andoni, Spiegel & Pokutta, PERP: Rethinking the Prune-Retrain Paradigm in the Era of LLMs, "
        "arXiv:2312.15230, 2023")
HU = "Hu et al., LoRA: Low-Rank Adaptation of Large Language Models, ICLR 2022"

register_method(Retraining(
    name="biases-norms", formula="TRAIN^t(W_T, m, T) of the biases and norms",
    weights=Weights.TRAINED, start_at=Start.T, length=Length.t, lr=LinearDecay(), params=knobs(0.1),
    trains=Subset(("biases", "norms")),
    summary="retrain only the biases and normalization layers (PERP's selective retraining)",
    cite=PERP, label="biases+norms", color="#ff7f0e",
))

register_method(Retraining(
    name="masklora", formula="TRAIN^t(W_T + s(BA ⊙ m), m, T)",
    weights=Weights.TRAINED, start_at=Start.T, length=Length.t, lr=LinearDecay(), params=knobs(0.1),
    trains=Adapters("mask"),
    summary="LoRA adapters whose update is masked, in training and when merged (MaskLoRA)",
    cite=PERP, label="MaskLoRA", color="#393b79",
))

register_method(Retraining(
    name="scalelora", formula="TRAIN^t(W_T ⊙ BA, m, T)",
    weights=Weights.TRAINED, start_at=Start.T, length=Length.t, lr=LinearDecay(), params=knobs(0.1),
    trains=Adapters("scale"),
    summary="LoRA adapters that scale each kept weight (ScaleLoRA)",
    cite=PERP, label="ScaleLoRA", color="#98df8a",
))

register_method(Retraining(
    name="lora", formula="TRAIN^t(W_T + sBA, T), densifying",
    weights=Weights.TRAINED, start_at=Start.T, length=Length.t, lr=LinearDecay(), params=knobs(0.1),
    trains=Adapters("dense"),
    summary="plain LoRA, a baseline: merging fills in the pruned weights (its density after merging is reported)",
    cite=HU, label="LoRA (dense merge)", color="#c5b0d5",
))
