"""Distillation retraining: every weight trained for t epochs from W_T to match the dense network W_T's
softened outputs, mixed with the task loss (Hinton et al. 2015; as retraining after pruning, Minitron and
SquareHead). LLR's schedule, so that it differs from ``llr`` in what it minimizes only."""

from methods.lr import LinearDecay
from methods.objective import Distillation
from methods.restarting import knobs
from methods.spec import Length, Retraining, Start, Weights, register_method

HINTON = "Hinton, Vinyals & Dean, Distilling the Knowledge in a Neural Network, 2015"

register_method(Retraining(
    name="distillation", formula="TRAIN^t(W_T, m, T) on KL(W_T || W)",
    weights=Weights.TRAINED, start_at=Start.T, length=Length.t, lr=LinearDecay(), params=knobs(0.1),
    minimizes=Distillation(),
    summary="retrain every weight to match the dense W_T's softened outputs (with LLR's schedule)",
    cite=HINTON, label="distillation", color="#f7b6d2",
))
