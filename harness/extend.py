"""What a plugin writes against: register a task (and the metric it reports), a retraining method, a
pruning strategy, a recipe or an executor, and the types they are made of. A new learning-rate rule
is a class with the ``LearningRate`` protocol's ``__call__``, named in a method's ``lr``.

A plugin is an installed distribution with an entry point in the group ``pruning_harness.plugins`` naming
the module that registers (see ``docs/plugin-example``); the built-in methods and tasks are two such entry
points, so they and a plugin register the same way. Everything a plugin needs is importable from here,
so the harness's internal modules can move without breaking it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from harness.core.declared import identified_as
from harness.core.masks import Mask
from harness.core.metrics import Metric, register_metric
from harness.core.registry import EXECUTORS, METHODS, PRUNING, RECIPES, TASKS
from harness.core.schedule import Schedule
from harness.data.tensor_data import TensorData
from methods.lr import LR_SCALE, WARMUP, Compressed, LearningRate, LinearDecay, OneCycle, Replay, Window
from methods.pruning import (
    Prunes,
    PruningInput,
    PruningStrategy,
    Target,
    keep_largest_across,
    keep_largest_per_layer,
    register_pruning,
)
from methods.recipes import Recipe, register_recipe
from methods.spec import Length, Param, Retraining, Start, Weights, register_method
from tasks.spec import DataOptions, OptimizerSpec, Task, register_task

__all__ = [
    "EXECUTORS", "LR_SCALE", "METHODS", "PRUNING", "RECIPES", "TASKS", "WARMUP", "Compressed", "DataOptions",
    "LearningRate", "Length", "LinearDecay", "Mask", "Metric", "OneCycle", "OptimizerSpec", "Param", "Prunes",
    "PruningInput", "PruningStrategy", "Recipe", "Replay", "Retraining", "Schedule", "Start", "Target", "Task",
    "TensorData", "Weights", "Window", "identified_as", "keep_largest_across", "keep_largest_per_layer",
    "register_executor", "register_method", "register_metric", "register_pruning", "register_recipe", "register_task",
]


F = TypeVar("F", bound=Callable[..., Any])


def register_executor(name: str) -> Callable[[F], F]:
    """Register an executor factory, ``(WorkerContext, ExecutorOptions) -> Executor``, under ``name`` for
    ``harness sweep --executor NAME``."""
    return EXECUTORS.register(name)
