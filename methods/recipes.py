"""Named recipes: a method run in a fixed way, callable wherever a method name is accepted."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from harness.core.registry import RECIPES


@dataclass(frozen=True)
class Recipe:
    name: str
    method: str
    iterative: bool
    retrain_epochs: Callable[[float], float]  # T -> t
    summary: str




def register_recipe(recipe: Recipe) -> Recipe:
    return RECIPES.register(recipe.name)(recipe)


register_recipe(Recipe(
    name="algorithm1", method="lr-rewinding", iterative=True, retrain_epochs=lambda T: T,
    summary="paper's Algorithm 1: prune 20%, retrain with LR rewinding for T epochs, repeat",
))
