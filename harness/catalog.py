"""What is registered, as plain data: tasks, methods (and recipes), pruning strategies, study presets,
and the method variants a store holds.

``harness list`` draws its tables from these entries, and ``harness list --json`` prints them as they are.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any

import torch

from harness.core.errors import HarnessError
from harness.core.names import did_you_mean
from harness.core.registry import load_plugins
from harness.storage import paths
from harness.sweep import variants as saved
from methods.lr import Replay
from methods.pruning import PRUNING, Target, get_pruning
from methods.recipes import RECIPES
from methods.spec import METHODS, Start, get_method
from tasks.spec import TASKS, get_task

KINDS = ("tasks", "methods", "pruning", "presets", "variants")


def parameters(declared: dict[str, Any]) -> list[dict[str, Any]]:
    """Each declared parameter: its range in words (``range``) and as fields (``low``, ``high``, ``log``,
    ``integer``, ``choices``; None where the parameter has none)."""
    return [{"name": name, "default": p.default, "range": p.describe(), "low": p.low, "high": p.high,
             "log": p.log, "integer": p.integer, "choices": list(p.choices) or None, "description": p.help}
            for name, p in declared.items()]


def learning_rate(m: Any) -> str:
    """A method's rate over its t epochs. A replayed S depends on where the run starts on S's clock."""
    if not m.minimizes.trains_by_steps:
        return "Adam at its own rate (parameter lr), layer by layer"
    if isinstance(m.lr, Replay):
        return {Start.T: "S[T], S's final rate, constant", Start.T_MINUS_t: "S's last t epochs, replayed",
                Start.ZERO: "S from its start, replayed"}[m.start_at]
    return m.lr.describe()


def tasks() -> list[dict[str, Any]]:

    entries = []
    for name in TASKS.names():
        t = get_task(name)
        count: int | None = None
        if t.bind is not None:  # a checkpoint's task: its network is the checkpoint's
            missing: str | None = "the checkpoint's (--model)"
        else:
            try:
                with torch.device("meta"):  # counted without allocating (the full GNMT has 160M)
                    count = sum(p.numel() for p in t.make_model().parameters())
                missing = None
            except HarnessError as e:  # a task of an extra that is not installed
                missing = str(e).split(":")[0]
        entries.append({"name": name, "parameters": count, "unavailable": missing, "T": t.epochs,
                        "batch_size": t.batch_size, "optimizer": t.optimizer.describe(),
                        "schedule": t.schedule.describe(), "metric": t.metric,
                        "documented_unpruned": t.documented_unpruned, "description": t.description})
    return entries


def methods() -> list[dict[str, Any]]:

    entries = []
    for name in METHODS.names():
        m = get_method(name)
        entries.append({"name": name, "kind": "method", "runs": m.formula,
                        "t": "0 <= t <= T" if m.max_t(1.0) is not None else "t >= 0", "learning_rate": learning_rate(m),
                        "trains": m.trains.name, "minimizes": m.minimizes.name, "budget": m.budget.value,
                        "paper": m.cite.split(",")[0], "description": m.summary, "parameters": parameters(m.params)})
    for name in RECIPES.names():
        r = RECIPES.get(name)
        entries.append({"name": name, "kind": "recipe", "method": r.method,
                        "pruning": "iterative 20%" if r.iterative else "one-shot", "description": r.summary})
    return entries


def pruning() -> list[dict[str, Any]]:

    entries = []
    for name in PRUNING.names():
        g = get_pruning(name)
        target = f"level k in {g.levels[0]}..{g.levels[-1]}" if g.target is Target.LEVEL else g.target.value
        if g.target is Target.DENSITY and g.fixed_density is not None:
            target += ", or one its parameters fix"
        entries.append({"name": name, "removes": g.prunes.value, "target": target, "iterative": g.iterative,
                        "gradual": g.gradual, "task": g.task, "calibrated": g.calibrated,
                        "updates_weights": g.updates_weights, "description": g.summary,
                        "parameters": parameters(g.params)})
    return entries


def presets() -> list[dict[str, Any]]:
    # start-up: pydantic and yaml only when presets are listed
    from harness.sweep.study import load_study
    from harness.sweep.study import presets as files

    entries = []
    for name, path in sorted(files().items()):
        spec = load_study(name)
        entries.append({"name": name, "task": spec.task, "cells": spec.count(), "description": leading_comment(path)})
    return entries


def leading_comment(path: Path) -> str:
    """A preset's description: the first paragraph of the comment it opens with, whole."""
    lines = []
    for line in path.read_text().splitlines():
        text = line.lstrip("#").strip()
        if not line.startswith("#") or (not text and lines):
            break
        lines.append(text)
    return " ".join(line for line in lines if line)


def variants(store: Path) -> list[dict[str, Any]]:
    """The method variants saved in a store (`harness tune --save-as`), each checked as it is read."""

    return [{"name": v.name, "method": v.method, "params": dict(v.params), "retrain_fraction": v.retrain_fraction,
             "file": str(paths.variant(store, v.name))} for v in saved.load_all(store).values()]


def catalog(kinds: tuple[str, ...] = KINDS, store: Path = Path("results"),
            names: tuple[str, ...] = ()) -> dict[str, list[dict[str, Any]]]:
    """The entries of each kind asked for (``variants``: those of ``store``); with ``names`` (names or
    globs, any case), only the entries one of them matches."""

    load_plugins()
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise HarnessError(f"unknown kind {unknown[0]!r}; valid: {', '.join(KINDS)}{did_you_mean(unknown[0], KINDS)}")
    makers = {"tasks": tasks, "methods": methods, "pruning": pruning, "presets": presets,
              "variants": lambda: variants(store)}
    found = {kind: makers[kind]() for kind in kinds}
    if names:
        every = [e["name"] for entries in found.values() for e in entries]
        found = {kind: [e for e in entries if any(fnmatch.fnmatch(e["name"].casefold(), n.casefold()) for n in names)]
                 for kind, entries in found.items()}
        plain = [n for n in names if not set(n) & set("*?[")]
        if plain and not any(found.values()):  # a word that is neither a kind nor a name: a mistyped kind
            raise HarnessError(f"unknown kind {plain[0]!r}; valid: {', '.join(KINDS)}, or names and globs of "
                               f"what they list{did_you_mean(plain[0], [*KINDS, *every])}")
    return found
