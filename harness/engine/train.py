"""TRAIN^t(W, m, g): train W ⊙ m for t epochs following the task's schedule S from epoch g.

The one training loop of the harness: every retraining method and the original run call it.
Epochs may be fractional; position is counted in optimizer steps, ``step = epoch * steps_per_epoch``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from harness.core import distributed
from harness.core.masks import BoundMask, Mask
from harness.core.progress import Advance
from harness.storage import store
from harness.storage.record import EpochRecord, history_from_json, history_to_json
from methods.spec import MaskUpdate
from tasks.spec import Data, Task

Checkpoint = Callable[[int, nn.Module, torch.optim.Optimizer, list[dict[str, float]]], None]


@dataclass
class TrainOutcome:
    history: list[EpochRecord] = field(default_factory=list)
    final_step: int = 0
    executed_steps: int = 0  # steps run by this call (a resumed run skips what it had done)
    mask: Mask | None = None  # the final mask (it changes during training under gradual pruning)
    resumed_step: int | None = None  # the step a killed run was continued from, if it was


def to_step(epoch: float, steps_per_epoch: int) -> int:
    return round(epoch * steps_per_epoch)


Loss = Callable[[Callable[..., torch.Tensor], Any], torch.Tensor]


def trained_parameters(model: nn.Module) -> list[nn.Parameter]:
    """What the optimizer holds: the parameters the method trains (all, unless its scope froze some)."""
    return [p for p in model.parameters() if p.requires_grad]


def step(model: nn.Module, forward: Callable[..., torch.Tensor], optimizer: torch.optim.Optimizer, loss_of: Loss,
         batch: Any, bound: BoundMask | None, grad_clip: float | None, bf16: bool, device: str) -> torch.Tensor:
    """One optimizer step of TRAIN on one batch; pruned weights (and their gradients) stay exactly zero."""
    with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
        loss = loss_of(forward, batch)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if bound is not None:
        bound.mask_gradients()
    if grad_clip is not None:
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    if bound is not None:
        bound.apply()
    return loss


def train(
    model: nn.Module,
    mask: Mask | None,
    task: Task,
    data: Data,
    *,
    start_epoch: float,
    epochs: float,
    seed: int,
    optimizer_state: dict[str, Any] | None = None,
    checkpoint_steps: frozenset[int] = frozenset(),
    on_checkpoint: Checkpoint | None = None,
    eval_steps: frozenset[int] = frozenset(),
    mask_update: MaskUpdate | None = None,
    resume_path: Path | None = None,
    progress: Advance | None = None,
    bf16: bool = False,
    lr_at: Callable[[int], float] | None = None,
    loss: Loss | None = None,
) -> TrainOutcome:
    """TRAIN^t(W, m, g) with W the model's weights, m ``mask``, g ``start_epoch``, t ``epochs``.

    Pruned weights are exactly zero after every optimizer step whatever the optimizer's state.
    The data order of an epoch depends only on (seed, epoch). With ``resume_path`` the training
    state is saved at each epoch's end and a killed run continues from there.

    ``eval_steps`` adds evaluations (history records) mid-epoch without touching the training, so a
    run evaluated at step s holds the same record as a run that ends at s. ``on_checkpoint`` is called
    at ``checkpoint_steps`` after that step's record. ``mask_update`` may replace the mask before a
    step (and once after the last): gradual pruning. ``lr_at`` gives the learning rate of each step
    (by default S at the step's epoch); ``loss`` the loss of a batch (by default the task's). Only the
    parameters with ``requires_grad`` are trained: a method's scope may freeze the others.
    """
    spe = data.steps_per_epoch
    device = next(model.parameters()).device.type
    if task.channels_last:
        model.to(memory_format=torch.channels_last)
    first, last = to_step(start_epoch, spe), to_step(start_epoch + epochs, spe)
    if lr_at is None:
        lr_at = lambda s: task.schedule(s / spe)  # noqa: E731
    optimizer = task.optimizer.build(trained_parameters(model), lr_at(first))
    loss_of = loss or task.loss
    if optimizer_state is not None:
        optimizer.load_state_dict(optimizer_state)
    outcome = TrainOutcome(final_step=last)
    at = first
    if resume_path is not None and resume_path.exists():
        state = store.load(resume_path)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        outcome.history, at = history_from_json(state["history"]), state["step"]
        outcome.resumed_step = at
        if "mask" in state:
            mask = state["mask"]
    bound = BoundMask(model, mask) if mask is not None else None
    if bound is not None:
        bound.apply()
    resumed_at = at

    def checkpoint_if_due(s: int) -> None:
        if on_checkpoint is not None and s in checkpoint_steps:
            on_checkpoint(s, model, optimizer, outcome.history)

    def update_mask(s: int) -> None:
        nonlocal mask, bound
        if mask_update is not None and mask is not None:
            new = mask_update(s, model, mask)
            if new is not None:
                mask, bound = new, BoundMask(model, new)
                bound.apply()

    checkpoint_if_due(at)
    forward = distributed.wrap(model)
    model.train()
    loss_sum, loss_count = 0.0, 0
    while at < last:
        update_mask(at)
        epoch, index = divmod(at, spe)
        lr = lr_at(at)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss_value = step(model, forward, optimizer, loss_of, data.batch(seed, epoch, index), bound, task.grad_clip,
                          bf16, device)
        at += 1
        loss_sum, loss_count = loss_sum + loss_value.item(), loss_count + 1
        epoch_end = at % spe == 0
        if epoch_end or at == last or at in checkpoint_steps or at in eval_steps:
            distributed.sync_buffers(model)
        if epoch_end or at == last or at in eval_steps:
            if at == last:
                update_mask(at)
            record = EpochRecord(epoch=at / spe, val_acc=data.evaluate(model, "val"),
                                 test_acc=data.evaluate(model, "test"), lr=lr, train_loss=loss_sum / loss_count)
            outcome.history.append(record)
            if epoch_end:
                loss_sum, loss_count = 0.0, 0
            if resume_path is not None and epoch_end and at < last:
                state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                         "history": history_to_json(outcome.history), "step": at}
                if mask_update is not None:
                    state["mask"] = mask
                store.atomic_save(resume_path, state)
            if progress is not None:
                progress(at - first, record)
        elif progress is not None:
            progress(at - first, {})
        checkpoint_if_due(at)
    if at == first and first == last:
        update_mask(at)
    if resume_path is not None:
        resume_path.unlink(missing_ok=True)
    outcome.executed_steps = last - resumed_at
    outcome.mask = mask
    return outcome
