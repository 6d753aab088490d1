"""A search's space: each method's declared parameters (and a strategy's, under ``pruning.NAME``)
and the retraining time t, as Optuna distributions, narrowed by ``--space``."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import Trial

from harness.core.errors import HarnessError
from harness.core.protocol import paper_retraining_times
from methods.pruning import PruningStrategy
from methods.spec import Param, Retraining

T_NAME = "t"  # the retraining time, searched next to the method's own parameters
PRUNING_PREFIX = "pruning."  # the pruning strategy's parameters, searched under pruning.NAME


# -- the search space -------------------------------------------------------------------------------


def distribution(param: Param) -> BaseDistribution:
    if param.choices:
        return CategoricalDistribution(param.choices)
    if param.integer:
        return IntDistribution(int(param.low), int(param.high), log=param.log)
    return FloatDistribution(param.low, param.high, log=param.log)


def retrain_time_param(method: Retraining, T: float) -> Param:
    """t as a search dimension: the paper's ten times over (0, T], each one a stored rewind point.
    The default is the one closest to T/2, `harness run`'s default."""
    times = tuple(paper_retraining_times(T))
    default = min(times, key=lambda t: (abs(t - T / 2), t))
    return Param(default, help="retraining epochs", choices=times)


def declared_space(method: Retraining, T: float, pruning: PruningStrategy | None = None) -> dict[str, Param]:
    """What a search over ``method`` explores unless told otherwise: its searchable parameters, those of
    the pruning strategy (``pruning.NAME``), and t."""
    space = {n: p for n, p in method.params.items() if p.searchable}
    if pruning is not None:
        space |= {PRUNING_PREFIX + n: p for n, p in pruning.params.items() if p.searchable}
    return {**space, T_NAME: retrain_time_param(method, T)}


def split_values(values: Mapping[str, float]) -> tuple[dict[str, float], dict[str, float], float]:
    """A trial's values as (the method's parameters, the strategy's parameters, t)."""
    method = {k: v for k, v in values.items() if k != T_NAME and not k.startswith(PRUNING_PREFIX)}
    pruning = {k[len(PRUNING_PREFIX):]: v for k, v in values.items() if k.startswith(PRUNING_PREFIX)}
    return method, pruning, float(values[T_NAME])


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise HarnessError(f"--space {what}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise HarnessError(f"--space {what}: {text!r} is not a finite number")
    return value


def _within(method: Retraining, T: float, name: str, param: Param, entry: str, value: float) -> float:
    """A value of a --space entry, inside what the method declares valid for it."""
    if name == T_NAME:
        if value <= 0:
            raise HarnessError(f"--space {entry!r}: t must be > 0")
        method.validate(T, value)
        return value
    try:
        return Param(param.default, param.low, param.high, param.log, param.integer).check(method.name, name, value)
    except HarnessError as e:
        raise HarnessError(f"--space {entry!r}: {e}") from None


def parse_space(
    method: Retraining, T: float, entries: Sequence[str], pruning: PruningStrategy | None = None
) -> tuple[dict[str, BaseDistribution], dict[str, float]]:
    """The declared space narrowed by ``--space`` entries: NAME=LOW:HIGH (a range inside the declared
    one), NAME=A,B,C (choices) or NAME=VALUE (fixed). Returns (searched dimensions, fixed values)."""
    declared = declared_space(method, T, pruning)
    searched: dict[str, BaseDistribution] = {n: distribution(p) for n, p in declared.items()}
    fixed: dict[str, float] = {}
    valid = ", ".join(declared)
    for entry in entries:
        name, sep, text = entry.partition("=")
        name = name.strip()
        if not sep or not text.strip():
            raise HarnessError(f"--space {entry!r}: expected NAME=LOW:HIGH, NAME=A,B,C or NAME=VALUE; "
                               f"searchable: {valid}")
        if name not in declared:
            raise HarnessError(f"--space {entry!r}: {method.name} has no searchable parameter {name!r}; "
                               f"searchable: {valid}")
        param = declared[name]

        def check(x: str, entry: str = entry, name: str = name, param: Param = param) -> float:
            return _within(method, T, name, param, entry, _number(x, entry))

        if ":" in text:
            low, high = (check(x) for x in text.split(":", 1))
            if not low < high:
                raise HarnessError(f"--space {entry!r}: low must be below high")
            if name == T_NAME:
                searched[name] = FloatDistribution(low, high)
            elif param.integer:
                searched[name] = IntDistribution(int(low), int(high), log=param.log)
            else:
                searched[name] = FloatDistribution(low, high, log=param.log)
        elif "," in text:
            choices = tuple(dict.fromkeys(check(x) for x in text.split(",")))
            searched[name] = CategoricalDistribution(choices)
        else:
            fixed[name] = check(text)
            searched.pop(name)
    if not searched:
        raise HarnessError(f"--space fixes every dimension of {method.name}; nothing is left to search "
                           f"(searchable: {valid})")
    return searched, fixed


def describe_space(searched: Mapping[str, BaseDistribution]) -> dict[str, str]:
    def one(d: BaseDistribution) -> str:
        if isinstance(d, CategoricalDistribution):
            return "one of " + ", ".join(f"{c:g}" for c in d.choices)
        kind = "integer" if isinstance(d, IntDistribution) else "real"
        return f"{kind} in [{d.low:g}, {d.high:g}]" + (", log scale" if d.log else "")

    return {n: one(d) for n, d in searched.items()}


def holds(d: BaseDistribution, value: float) -> bool:
    if isinstance(d, CategoricalDistribution):
        return value in d.choices
    return d.low <= value <= d.high


def suggest(trial: Trial, name: str, d: BaseDistribution) -> float:
    if isinstance(d, CategoricalDistribution):
        return trial.suggest_categorical(name, d.choices)
    if isinstance(d, IntDistribution):
        return trial.suggest_int(name, d.low, d.high, log=d.log)
    return trial.suggest_float(name, d.low, d.high, log=d.log)


def defaults(method: Retraining, T: float, searched: Mapping[str, BaseDistribution],
             pruning: PruningStrategy | None = None) -> dict[str, float]:
    """The method's defaults, where the searched space holds them (the sampler picks the rest)."""
    declared = declared_space(method, T, pruning)
    return {n: declared[n].default for n, d in searched.items() if holds(d, declared[n].default)}
