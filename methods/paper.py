"""The retraining methods compared by Renda, Frankle & Carbin (ICLR 2020), as in their table."""

from methods.spec import LR_SCALE, Length, Param, Retraining, Start, Weights, register_method

RENDA = "Renda, Frankle & Carbin, Comparing Rewinding and Fine-tuning in Neural Network Pruning, ICLR 2020"

# Fine-tuning at S[T] is the paper's baseline; a search may give it a learning rate of its own, up to
# the schedule's initial rate (S[T] is 1/100 of it on the vision tasks), to give it its best shot.
OWN_LR = {LR_SCALE: Param(1.0, 0.1, 100.0, log=True, help="the constant retraining rate as a multiple of S[T]")}

register_method(Retraining(
    name="fine-tuning", formula="TRAIN^t(W_T, m, T)",
    weights=Weights.TRAINED, start_at=Start.T, length=Length.t,
    summary="keep training the pruned network at the final learning rate",
    params=OWN_LR, cite=RENDA, color="#1f77b4",
))

register_method(Retraining(
    name="weight-rewinding", formula="TRAIN^t(W_{T-t}, m, T-t)",
    weights=Weights.REWOUND, start_at=Start.T_MINUS_t, length=Length.t,
    summary="rewind weights and schedule to epoch T-t (lottery-ticket rewinding)",
    cite=RENDA, color="#2ca02c",
))

register_method(Retraining(
    name="lr-rewinding", formula="TRAIN^t(W_T, m, T-t)",
    weights=Weights.TRAINED, start_at=Start.T_MINUS_t, length=Length.t,
    summary="keep the final weights, replay the last t epochs of the schedule",
    cite=RENDA, color="#d62728",
))

register_method(Retraining(
    name="low-lr-rewinding", formula="TRAIN^t(W_{T-t}, m, T)",
    weights=Weights.REWOUND, start_at=Start.T, length=Length.t,
    summary="rewind weights to epoch T-t but train at the final learning rate (appendix E)",
    params=OWN_LR, cite=RENDA, color="#9467bd",
))

register_method(Retraining(
    name="reinit", formula="TRAIN^{T+t}(W'_0, m, 0)",
    weights=Weights.FRESH, start_at=Start.ZERO, length=Length.T_PLUS_t,
    summary="fresh random initialization with the same mask (Liu et al. 2019)",
    cite=RENDA, color="#8c564b",
))
