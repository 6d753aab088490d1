"""A plugin for pruning-harness: one retraining method, one task, one pruning strategy.

Installed (``pip install ./docs/plugin-example``), they appear in ``harness list`` and run in
``harness run``, ``harness sweep`` and ``harness tune`` like the built-in ones.
"""

from __future__ import annotations

import torch
from torch import nn

from harness.extend import (
    LR_SCALE,
    WARMUP,
    DataOptions,
    Length,
    LinearDecay,
    Mask,
    OptimizerSpec,
    Param,
    Prunes,
    PruningInput,
    PruningStrategy,
    Retraining,
    Schedule,
    Start,
    Target,
    Task,
    TensorData,
    Weights,
    identified_as,
    keep_largest_across,
    register_method,
    register_pruning,
    register_task,
)

# A method: W_T retrained with a linear decay from half of S's peak, no warm-up. Its rate depends on
# t, so the harness never serves one t from another's run.
register_method(Retraining(
    name="half-peak-linear", formula="TRAIN^t(W_T, m, T), linear from S's peak / 2 to 0",
    weights=Weights.TRAINED, start_at=Start.T, length=Length.t, lr=LinearDecay(),
    params={LR_SCALE: Param(0.5, 0.05, 1.0, log=True, help="the starting rate as a multiple of S's peak"),
            WARMUP: Param(0.0, 0.0, 0.5, help="fraction of the t epochs spent warming up")},
    summary="linear learning-rate restarting from half the peak, without warm-up",
    cite="an example plugin", label="half-peak LLR", color="#000000",
))


# A pruning strategy: keep the weights of smallest |w|, the opposite of magnitude pruning (a sanity check
# that the criterion matters). One declaration: what it removes, how its target is given, where it applies.
def smallest_magnitude(p: PruningInput) -> Mask:
    magnitudes = {n: p.weights[n].detach().abs() for n in p.mask}
    top = max(float(m.max()) for m in magnitudes.values())
    return keep_largest_across({n: top - m for n, m in magnitudes.items()}, p.mask, p.target)


register_pruning(PruningStrategy(
    name="smallest-magnitude", summary="the smallest |w| across layers (a sanity check)",
    prunes=Prunes.WEIGHTS, target=Target.DENSITY, select=smallest_magnitude,
))


# A task: two Gaussian blobs in 16 dimensions, a small 1-D CNN, a CIFAR-shaped schedule over 8 epochs.
# The loader declares the name it enters base networks' identity under, so moving it renames nothing.
@identified_as("harness_plugin_example.blobs_data")
def blobs_data(options: DataOptions) -> TensorData:
    generator = torch.Generator().manual_seed(0)

    def sample(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(0, 2, (n,), generator=generator)
        x = torch.randn(n, 1, 16, generator=generator) + (2 * y - 1).view(-1, 1, 1) * 0.5
        return x, y

    return TensorData(sample(512), sample(256), options.batch_size, device=options.device)


@register_task("blobs")
def blobs() -> Task:
    return Task(
        name="blobs", description="two Gaussian blobs, a 1-D CNN (an example plugin's task)",
        schedule=Schedule(lr=0.1, epochs=8, drops=((4, 0.01), (6, 0.001))),
        batch_size=64,
        optimizer=OptimizerSpec("sgd", momentum=0.9, nesterov=True, weight_decay=1e-4),
        make_model=lambda: nn.Sequential(nn.Conv1d(1, 8, 3, padding=1), nn.BatchNorm1d(8), nn.ReLU(),
                                         nn.Flatten(), nn.Linear(8 * 16, 2)),
        load_data=blobs_data,
        input_shape=(1, 16),
    )
