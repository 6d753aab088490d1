"""Named method variants: a registered method with chosen parameters, kept in the results store.

`harness tune --save-as NAME` writes one; `harness run NAME TASK` and a study's ``methods`` list take
its name wherever a method name is accepted. Its cells are the method's cells with the variant's
parameters, labelled with the variant's name in every table and plot.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError
from harness.core.names import canonical, did_you_mean
from harness.core.registry import METHODS, RECIPES
from harness.storage import paths, store

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class Variant:
    name: str
    method: str
    params: tuple[tuple[str, float], ...]  # overrides of the method's defaults
    retrain_fraction: float | None = None  # the t/T it was chosen with; `harness run` uses it by default
    origin: dict[str, Any] = field(default_factory=dict, compare=False)  # how it was found (the search)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "method": self.method, "params": dict(self.params),
                "retrain_fraction": self.retrain_fraction, "origin": self.origin}


@dataclass(frozen=True)
class MethodChoice:
    """What a method name on the command line or in a study stands for."""

    method: str
    iterative: bool | None = None  # forced one-shot/iterative, or None: the caller's choice
    retrain_epochs: Callable[[float], float] | None = None  # T -> the default t
    params: tuple[tuple[str, float], ...] = ()
    variant: str | None = None


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise HarnessError(f"variant name {name!r} is not valid; valid: letters, digits, '.', '_', '-', "
                           "starting with a letter or digit")
    if name in METHODS or name in RECIPES:
        raise HarnessError(f"variant name {name!r} is taken by a registered method or recipe; choose another")
    return name


def save(root: Path, variant: Variant) -> Path:
    path = paths.variant(root, check_name(variant.name))
    store.atomic_write_json(path, variant.as_dict())
    return path


def load_all(root: Path) -> dict[str, Variant]:
    """The variants saved in a store, by name; a file that is not a valid variant is one line naming it."""
    out = {}
    for path in sorted(paths.variants(root).glob("*.json")):
        variant = parse_file(path)
        out[variant.name] = variant
    return out


def parse_file(path: Path) -> Variant:
    def bad(why: str) -> HarnessError:
        return HarnessError(f"{path}: not a valid variant ({why}); fix or delete the file")

    try:
        raw = store.read_json(path)
    except (OSError, store.DamagedFile) as e:
        raise bad(getattr(e, "reason", None) or str(e)) from None
    if not isinstance(raw, dict):
        raise bad(f"a JSON object with name, method and params, not {type(raw).__name__}")
    name, method, params = raw.get("name"), raw.get("method"), raw.get("params", {})
    if not isinstance(name, str) or not NAME.fullmatch(name) or name != path.stem:
        raise bad(f"its name must be the file's, {path.stem!r}, got {name!r}")
    if method not in METHODS:
        raise bad(f"method {method!r} is not registered; valid: {', '.join(METHODS.names())}")
    if not isinstance(params, dict):
        raise bad(f"params must be a mapping of parameter to number, got {params!r}")
    fraction = raw.get("retrain_fraction")
    if fraction is not None and (isinstance(fraction, bool) or not isinstance(fraction, int | float)
                                 or not 0 < fraction <= 1):
        raise bad(f"retrain_fraction must be a number in (0, 1] or null, got {fraction!r}")
    try:
        METHODS.get(method).overrides(params)  # names and values checked; stored as saved (cells are named by them)
    except (HarnessError, TypeError, ValueError) as e:
        raise bad(" ".join(str(e).split())) from None
    origin = raw.get("origin", {})
    return Variant(name, method, tuple(sorted(params.items())), fraction, origin if isinstance(origin, dict) else {})


def resolve(name: str, root: Path) -> MethodChoice:
    """A method, a recipe or a variant saved in the store at ``root``."""
    name = canonical(name, [*METHODS.names(), *RECIPES.names()]) or name
    if name in METHODS:
        return MethodChoice(name)
    if name in RECIPES:
        recipe = RECIPES.get(name)
        return MethodChoice(recipe.method, recipe.iterative, recipe.retrain_epochs)
    saved = load_all(root)  # read only for a name that is no registered method or recipe
    name = canonical(name, list(saved)) or name
    if name in saved:
        v = saved[name]
        fraction = v.retrain_fraction
        return MethodChoice(v.method, None, (lambda T: fraction * T) if fraction is not None else None,
                            v.params, v.name)
    variants = f"; variants in {root}: {', '.join(saved)}" if saved else ""
    raise HarnessError(f"unknown method {name!r}; valid: {', '.join(METHODS.names())}; "
                       f"recipes: {', '.join(RECIPES.names())}{variants}"
                       f"{did_you_mean(name, [*METHODS.names(), *RECIPES.names(), *saved])}")
