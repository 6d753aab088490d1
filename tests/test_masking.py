"""Pruned weights stay exactly zero after every optimizer step, whatever the optimizer state."""

import pytest
import torch

from harness.core.masks import full_mask
from harness.engine.train import train
from methods.magnitude import global_magnitude
from tasks.spec import OptimizerSpec
from tests.conftest import tiny_data, tiny_task

OPTIMIZERS = {
    "nesterov-sgd-wd": OptimizerSpec("sgd", momentum=0.9, nesterov=True, weight_decay=1e-2),
    "sgd": OptimizerSpec("sgd", momentum=0.0, nesterov=False, weight_decay=0.0),
    "adam-wd": OptimizerSpec("adam", weight_decay=1e-2),
    "adamw": OptimizerSpec("adamw", weight_decay=1e-1),
}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_pruned_weights_are_exactly_zero_after_every_step(name):
    task = tiny_task(OPTIMIZERS[name])
    data = tiny_data()
    torch.manual_seed(0)
    model = task.make_model()
    # Warm the optimizer state (momentum, Adam moments) on the dense network first.
    optimizer = task.optimizer.build(model.parameters(), 0.1)
    x, y = data.batch(0, 0, 0)
    for _ in range(3):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    prunable = task.prunable(model)
    mask = global_magnitude(dict(model.named_parameters()), full_mask(model, prunable), 0.3)
    params = dict(model.named_parameters())
    violations = []

    def check(step, record):
        for n, keep in mask.items():
            pruned = params[n].detach()[~keep]
            if not torch.equal(pruned, torch.zeros_like(pruned)):
                violations.append((step, n))

    train(model, mask, task, data, start_epoch=0, epochs=2, seed=0,
          optimizer_state=optimizer.state_dict(), progress=check)
    assert not violations
    # and the surviving weights did train
    assert all(params[n].detach()[keep].abs().sum() > 0 for n, keep in mask.items())
    if name != "sgd":
        assert optimizer.state_dict()["state"], "the optimizer state was warmed up"


def test_training_without_mask_changes_every_weight():
    task = tiny_task()
    torch.manual_seed(0)
    model = task.make_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train(model, None, task, tiny_data(), start_epoch=0, epochs=1, seed=0)
    assert not torch.equal(before["0.weight"], model.state_dict()["0.weight"])
