"""Learning-rate restarting: retrain the pruned W_T with a fresh schedule fitted to the budget t.

- ``slr``, scaled learning-rate restarting, and ``clr``, cyclic learning-rate restarting: Le & Hua,
  "Network Pruning That Matters: A Case Study on Retraining Variants", ICLR 2021.
- ``llr``, linear learning-rate restarting, and ``allr``, its adaptive form: Zimmer, Spiegel &
  Pokutta, "How I Learned to Stop Worrying and Love Retraining", ICLR 2023.

Each runs TRAIN^t(W_T, m, T), its data continuing after T as fine-tuning's does, with a learning
rate of its own over the t epochs (``methods/lr.py``); the first ``warmup`` of them ramp the rate up
along half a cosine.
"""

from methods.lr import WARMUP, Compressed, LinearDecay, OneCycle
from methods.spec import LR_SCALE, Length, Param, Retraining, Start, Weights, register_method

LE_HUA = "Le & Hua, Network Pruning That Matters: A Case Study on Retraining Variants, ICLR 2021"
ZIMMER = "Zimmer, Spiegel & Pokutta, How I Learned to Stop Worrying and Love Retraining, ICLR 2023"


def knobs(warmup: float) -> dict[str, Param]:
    return {
        WARMUP: Param(warmup, 0.0, 0.5, help="fraction of the t epochs spent warming up"),
        LR_SCALE: Param(1.0, 0.1, 10.0, log=True, help="multiplies every rate of the schedule"),
    }


register_method(Retraining(
    name="slr", formula="TRAIN^t(W_T, m, T)",
    weights=Weights.TRAINED, start_at=Start.T, length=Length.t, lr=Compressed(), params=knobs(0.1),
    summary="scaled LR restarting: warm up to S's peak, then S's whole schedule squeezed into t",
    cite=LE_HUA, label="SLR", color="#17becf",
))

register_method(Retraining(
    name="clr", formula="TRAIN^t(W_T, m, T)",
    weights=Weights.TRAINED, start_at=Start.T, length=Length.t, lr=OneCycle(), params=knobs(0.1),
    summary="cyclic LR restarting: one cycle, up to S's peak and cosine down",
    cite=LE_HUA, label="CLR", color="#bcbd22",
))

register_method(Retraining(
    name="llr", formula="TRAIN^t(W_T, m, T)",
    weights=Weights.TRAINED, start_at=Start.T, length=Length.t, lr=LinearDecay(), params=knobs(0.1),
    summary="linear LR restarting: warm up to S's peak, then decay linearly to 0",
    cite=ZIMMER, label="LLR", color="#e377c2",
))

register_method(Retraining(
    name="allr", formula="TRAIN^t(W_T, m, T)",
    weights=Weights.TRAINED, start_at=Start.T, length=Length.t, lr=LinearDecay(adaptive=True), params=knobs(0.1),
    summary="adaptive linear LR restarting: LLR from a peak set by the pruning's norm drop",
    cite=ZIMMER, label="ALLR", color="#7f7f7f",
))
