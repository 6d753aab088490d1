"""The one gate: whether a cell can run. A cell names a method, a pruning strategy, a target (a density
chain, or a structured configuration's level), a task and its schedule; ``check_cell`` refuses, in one
line and before any training, every combination that cannot run. ``harness run``, studies, ``tune``,
the Python API and the runner itself all ask it, so they refuse the same things."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from harness.core.declared import identity_name
from harness.core.errors import HarnessError
from harness.core.hparams import RetrainHparams
from harness.core.registry import METHODS as METHOD_REGISTRY
from harness.core.registry import PRUNING as PRUNING_REGISTRY
from harness.core.registry import TASKS
from methods.pruning import Target, get_pruning
from methods.spec import get_method
from tasks.spec import get_task


class CellRefused(HarnessError):
    """A cell that cannot run; ``part`` names what is wrong with it, so a study file can name its key."""

    def __init__(self, message: str, part: str) -> None:
        super().__init__(message)
        self.part = part


RETRAINING_TIME, METHOD_PARAMS, PRUNING, DENSITY = "retraining time", "method parameters", "pruning", "density"
METHOD = "method"


@contextmanager
def refusing(part: str) -> Iterator[None]:
    try:
        yield
    except CellRefused:
        raise
    except HarnessError as e:
        raise CellRefused(str(e), part) from None


def check_cell(hp: RetrainHparams, flag: str = "--density") -> None:
    """``flag`` is how the user gave the density, for the message (--density, --rounds, densities)."""
    method = get_method(hp.method)
    registered = get_task(hp.base.task)
    if registered.bind is None and (hp.base.checkpoint is not None or hp.base.data_dir is not None):
        raise CellRefused(f"--model is for the tasks that load a checkpoint ({', '.join(checkpoint_tasks())}), "
                          f"not {hp.base.task}", METHOD)
    task = registered.resolved(hp.base)
    if (reason := refusal(method, task)) is not None:
        raise CellRefused(f"{reason}; valid: {', '.join(applicable_methods(task))}", METHOD)
    with refusing(RETRAINING_TIME):
        method.validate(task.epochs, hp.retrain_epochs)
    with refusing(METHOD_PARAMS):
        method.resolve_params(dict(hp.method_params))
    with refusing(PRUNING):
        check_target(hp, method.name if method.during is not None else None)
        check_calibration(hp, task)
    if hp.density is not None:
        with refusing(DENSITY):
            check_keeps_weights(task, hp.density, flag)


def refusal(method: Any, task: Any) -> str | None:
    """Why ``method`` cannot run on the (resolved) ``task`` at all, from what each declares; None: it can."""
    if task.pretrained is not None and method.needs_training_run:
        return (f"{task.name} starts from a pretrained checkpoint, with no training run of ours (no T, no schedule S, "
                f"no rewind points), which {method.name} needs")
    if method.minimizes.needs_predictions and not task.predicts:
        return (f"{method.name} minimizes {method.minimizes.name}, which reads logits and targets that {task.name} "
                "does not declare (Task.predictor)")
    if method.minimizes.needs_blocks and task.blocks is None:
        return f"{method.name} reconstructs the network's blocks, and {task.name} declares none (Task.blocks)"
    return None


def applicable_methods(task: Any) -> list[str]:
    """The registered methods that can run on the (resolved) ``task``: a study's default methods."""
    return [n for n in METHOD_REGISTRY.names() if refusal(get_method(n), task) is None]


def checkpoint_tasks() -> list[str]:
    return [n for n in TASKS.names() if get_task(n).bind is not None]


def check_target(hp: RetrainHparams, during_training: str | None) -> None:
    """The cell's strategy with its declared target: a density chain or a level, as the strategy prunes."""
    strategy = get_pruning(hp.pruning)
    if hp.densities and hp.level is not None:
        raise HarnessError(f"a cell prunes to a density chain or to a level, not both; it has densities "
                           f"{list(hp.densities)} and level {hp.level}")
    if strategy.target is Target.DENSITY and not hp.densities:
        raise HarnessError(f"pruning strategy {hp.pruning} needs a target density; the cell has "
                           + ("a level, which is for structured configurations" if hp.structured else "none"))
    if strategy.target is Target.LEVEL and hp.densities:
        raise HarnessError(f"pruning strategy {hp.pruning} is pruned at a level k, not to a density; "
                           f"valid: level {', '.join(map(str, strategy.levels))}")
    strategy.check(hp.base.task, iterative=hp.iterative or hp.round > 1, during_training=during_training,
                   density=hp.density, levels=(hp.level,) if hp.structured else (), params=dict(hp.pruning_params))
    if strategy.target is Target.LEVEL and not hp.structured:
        raise HarnessError(f"pruning strategy {hp.pruning} is pruned at a level k; the cell has none; "
                           f"valid: level {', '.join(map(str, strategy.levels))}")


def check_calibration(hp: RetrainHparams, task: Any) -> None:
    """A strategy that reads activations needs a task with calibration data."""
    if get_pruning(hp.pruning).calibrated and task.calibration is None:
        valid = [n for n in PRUNING_REGISTRY.names()
                 if not get_pruning(n).calibrated and get_pruning(n).task in (None, task.name)]
        raise HarnessError(f"pruning strategy {hp.pruning} reads calibration data, which {task.name} has none of; "
                           f"valid for {task.name}: {', '.join(valid)}")


def check_keeps_weights(task: Any, density: float, flag: str) -> None:
    """A target density that keeps less than one prunable weight of the task's network is refused."""
    total = prunable_weights(task)
    if density * total < 1:
        raise HarnessError(f"{flag} asks for density {density:.3g}, which keeps less than one of the "
                           f"{total:,} prunable weights of {task.name}; valid: density >= {1 / total:.3g}")


_PRUNABLE: dict[tuple[str, str | None], int] = {}  # by task and model: a study checks every cell


def prunable_weights(task: Any) -> int:
    """How many weights of the task's network its strategy may prune, counted on the meta device."""
    key = (task.name, identity_name(task.make_model))
    if key not in _PRUNABLE:
        with torch.device("meta"):  # counted without allocating
            model = task.make_model()
        params = dict(model.named_parameters())
        _PRUNABLE[key] = sum(params[n].numel() for n in task.prunable(model))
    return _PRUNABLE[key]
