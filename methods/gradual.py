"""Gradual magnitude pruning (Zhu & Gupta 2018): the mask tightens inside TRAIN on a cubic schedule.

From step t0, every dt steps over a span of n*dt steps, the sparsity is raised to

    s(τ) = s_f + (s_i - s_f) * (1 - (τ - t0) / (n dt))^3

(s_i the sparsity the run starts with, s_f the target), pruning the smallest-magnitude weights
globally; training then continues to the end of the schedule. As a retraining method it runs
TRAIN^t(W_T, m(τ), T - t): the last t epochs of the schedule replayed, as learning-rate rewinding
does, so its search cost is t extra epochs over the standard schedule like every other method.
``begin`` and ``span`` are fractions of the t retraining epochs; ``every`` is dt in steps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from harness.core.masks import Mask
from methods.spec import Length, MaskUpdate, Param, Retraining, Start, Weights, register_method


def cubic_sparsity(step: int, t0: int, span: int, s_i: float, s_f: float) -> float:
    """Zhu & Gupta's s(τ): s_i before t0, s_f from t0 + span on, cubic in between."""
    if step <= t0:
        return s_i
    if span <= 0 or step >= t0 + span:
        return s_f
    return s_f + (s_i - s_f) * (1.0 - (step - t0) / span) ** 3


@dataclass(frozen=True)
class CubicSchedule:
    t0: int  # first update step
    span: int  # n * dt steps
    every: int  # dt

    def update_steps(self) -> list[int]:
        steps = list(range(self.t0, self.t0 + self.span, self.every))
        return [*steps, self.t0 + self.span]


@dataclass(frozen=True)
class Gradual:
    def schedule(self, first_step: int, last_step: int, params: Mapping[str, float]) -> CubicSchedule:
        steps = last_step - first_step
        t0 = first_step + round(params["begin"] * steps)
        span = min(round(params["span"] * steps), last_step - t0)
        return CubicSchedule(t0, span, int(params["every"]))

    def mask_update(
        self, first_step: int, last_step: int, params: Mapping[str, float],
        densities: tuple[float, float], prune: Callable[[dict[str, torch.Tensor], Mask, float], Mask],
    ) -> MaskUpdate:
        schedule = self.schedule(first_step, last_step, params)
        updates = set(schedule.update_steps())
        s_i, s_f = 1.0 - densities[0], 1.0 - densities[1]

        def update(step: int, model: torch.nn.Module, mask: Mask) -> Mask | None:
            if step not in updates:
                return None
            density = 1.0 - cubic_sparsity(step, schedule.t0, schedule.span, s_i, s_f)
            return prune(dict(model.named_parameters()), mask, density)

        return update


register_method(Retraining(
    name="gradual", formula="TRAIN^t(W_T, m(τ), T-t), m(τ) on Zhu & Gupta's cubic schedule",
    weights=Weights.TRAINED, start_at=Start.T_MINUS_t, length=Length.t,
    summary="gradual magnitude pruning (Zhu & Gupta 2018) while replaying the last t epochs",
    cite="Zhu & Gupta, To prune, or not to prune: exploring the efficacy of pruning for model compression, 2018",
    color="#ff7f0e",
    params={
        "begin": Param(0.0, 0.0, 0.5, help="pruning starts after this fraction of the t epochs"),
        "span": Param(0.5, 0.05, 1.0, help="fraction of the t epochs over which sparsity rises to the target"),
        "every": Param(10, 1, 1000, log=True, integer=True, help="dt: steps between mask updates"),
    },
    during=Gradual(),
))
