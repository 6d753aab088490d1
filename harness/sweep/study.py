"""A study: the grid a researcher describes once (a YAML file or a named preset) and its cells.

A cell is one (seed, one-shot/iterative, pruning kind, method, density or level, retraining time):
one ``RetrainHparams``, content-addressed in the store by its hash. Every key has the paper's
default and can be narrowed:

    task: mnist1d                  # required
    methods: [fine-tuning, lr-rewinding]    # default: every registered method
    retrain_points: 10             # t_k evenly spread over (0, T]  (or retrain_epochs: [1.5, 3])
    density_k: {first: 1, last: 20}   # densities 0.8^k; or a list [3, 6, 9]; or densities: [0.5, 0.1]
    seeds: 3                       # 0, 1, 2; or a list [0, 5]
    schedules: [one-shot]          # and/or iterative (20% of the remaining weights per round)
    pruning: [global-magnitude]    # or {structured: resnet56-A, levels: [1, 2]}
    epochs_scale: 1.0
    batch_size: null               # the task's standard batch
    method_params: {gradual: {span: 0.75}}

``methods`` may also name variants saved in the store (`harness tune --save-as NAME`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from harness.core.canonical import content_hash
from harness.core.errors import HarnessError
from harness.core.hparams import CPU, EPOCHS_SCALE, BaseHparams, Compute, RetrainHparams
from harness.core.protocol import (
    DEFAULT_PRUNING,
    ITERATIVE_RATE,
    PAPER_GRID_POINTS,
    SCHEDULES,
    density_chain,
    paper_retraining_times,
)
from harness.core.registry import METHODS, TASKS
from harness.engine.gate import check_keeps_weights
from harness.sweep.variants import NAME, Variant
from methods.pruning import PRUNING, Target, get_pruning
from methods.spec import get_method
from tasks.spec import get_task

MAX_CELLS = 100_000  # a grid is counted before it is built; past this it is refused (its plan takes ~30 s)
MAX_RETRAIN_POINTS = 1000
MAX_EXPONENT = 100  # 0.8^100 keeps 2e-10 of the weights
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class PruningKind:
    """A registered pruning strategy with its parameters (a structured configuration: at levels k)."""

    strategy: str = DEFAULT_PRUNING
    levels: tuple[int, ...] = (1,)
    params: tuple[tuple[str, float], ...] = ()  # overrides of the strategy's declared defaults

    @property
    def spec(self) -> Any:

        return get_pruning(self.strategy)


@dataclass(frozen=True)
class Study:
    name: str
    task: str
    methods: tuple[str, ...]
    retrain_points: int = PAPER_GRID_POINTS
    retrain_epochs: tuple[float, ...] = ()  # explicit t; empty: retrain_points evenly over (0, T]
    density_k: tuple[int, ...] = tuple(range(1, 21))
    densities: tuple[float, ...] = ()  # explicit densities; empty: 0.8^k for k in density_k
    seeds: tuple[int, ...] = (0, 1, 2)
    schedules: tuple[str, ...] = ("one-shot",)
    pruning: tuple[PruningKind, ...] = (PruningKind(),)
    epochs_scale: float = 1.0
    batch_size: int | None = None
    method_params: tuple[tuple[str, tuple[tuple[str, float], ...]], ...] = ()
    variants: tuple[tuple[str, str, tuple[tuple[str, float], ...]], ...] = ()  # (name, method, params) in use
    compute: Compute = CPU  # set by the command that runs the study (--device, --bf16, --threads-per-job)

    @property
    def hash(self) -> str:
        return content_hash(dataclasses.replace(self, name=""))

    def base(self, seed: int) -> BaseHparams:
        return BaseHparams(self.task, seed=seed, epochs_scale=self.epochs_scale, batch_size=self.batch_size,
                           compute=self.compute)

    @property
    def T(self) -> float:
        return get_task(self.task).resolved(self.base(0)).epochs

    def times(self) -> list[float]:
        return list(self.retrain_epochs) or paper_retraining_times(self.T, self.retrain_points)

    def target_densities(self) -> list[float]:
        return list(self.densities) or [(1.0 - ITERATIVE_RATE) ** k for k in self.density_k]

    def method_of(self, name: str) -> tuple[str, tuple[tuple[str, float], ...], str | None]:
        """A name in ``methods`` -> (registered method, its parameters, the variant's name or None)."""
        for variant, method, params in self.variants:
            if variant == name:
                return method, params, variant
        return name, dict(self.method_params).get(name, ()), None

    def count(self) -> int:
        """How many cells ``cells()`` would build, computed without building them."""
        shapes = sum(len(list(self._shapes(kind))) for kind in self.pruning)
        times = len(self.retrain_epochs) or self.retrain_points
        return len(self.seeds) * shapes * len(self.methods) * times

    def cells(self) -> list[RetrainHparams]:
        """Every cell the study reports, in a stable order (rounds an iterative chain passes
        through on its way to a reported density are dependencies, not cells)."""
        out = []
        for seed in self.seeds:
            for kind in self.pruning:
                for shape in self._shapes(kind):
                    for name in self.methods:
                        method, params, variant = self.method_of(name)
                        for t in self.times():
                            out.append(RetrainHparams(self.base(seed), method, t, **shape,
                                                      method_params=params, variant=variant))
        return out

    def _shapes(self, kind: PruningKind) -> Iterator[dict[str, Any]]:
        """What each cell of ``kind`` prunes to: a level k, or a chain of densities per schedule (the
        study's densities, or the one the strategy's parameters fix)."""

        strategy = kind.spec
        common = {"pruning": kind.strategy, "pruning_params": kind.params}
        if strategy.target is Target.LEVEL:
            for level in kind.levels:
                yield {**common, "level": level}
            return
        fixed = strategy.density_for(dict(kind.params), None)
        for schedule in self.schedules:
            for d in [fixed] if fixed is not None else self.target_densities():
                yield {**common, "densities": density_chain(d, iterative=schedule == "iterative"),
                       "iterative": schedule == "iterative"}


# -- reading a study --------------------------------------------------------------------------


class StudyError(HarnessError):
    pass


def presets() -> dict[str, Path]:
    folder = resources.files("harness") / "presets"
    return {Path(p.name).stem: Path(str(p)) for p in folder.iterdir() if p.name.endswith(".yaml")}


def load_study(spec: str, variants: Mapping[str, Variant] | None = None,
               narrowed: Mapping[str, Any] | None = None) -> Study:
    """A study from a YAML file, or a preset by name; ``variants`` are the names its methods may use
    besides the registered methods; ``narrowed`` keys replace the file's own (checked as its keys are)."""
    path = Path(spec)
    if not path.exists():
        known = presets()
        if spec not in known:
            raise StudyError(f"{spec}: no such study file or preset; presets: {', '.join(sorted(known))}")
        path = known[spec]
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        raise StudyError(f"{path.name}: not valid YAML{at}: {getattr(e, 'problem', e)}") from None
    except UnicodeDecodeError:
        raise StudyError(f"{path.name}: not a text file; a study is a YAML file of keys (task, methods, ...)") from None
    except OSError as e:
        raise StudyError(f"{spec}: cannot read ({e.strerror})") from None
    if not isinstance(raw, dict):
        raise StudyError(f"{path.name}: a study is a mapping of keys (task, methods, ...), got {type(raw).__name__}")
    if narrowed:
        raw = {**raw, **narrowed}
    return parse_study(raw, path.name, default_name=path.stem, variants=variants)


def parse_study(raw: dict[str, Any], source: str, default_name: str = "study",
                variants: Mapping[str, Variant] | None = None) -> Study:
    unknown = sorted(set(map(str, raw)) - set(PARSERS))
    if unknown:
        raise StudyError(f"{source}: key {unknown[0]!r} is not valid; valid keys: {', '.join(PARSERS)}")
    if "task" not in raw:
        raise StudyError(f"{source}: key 'task' is required; valid: {', '.join(task_names())}")
    if "retrain_points" in raw and "retrain_epochs" in raw:
        raise StudyError(f"{source}: give retrain_points or retrain_epochs, not both")
    if "density_k" in raw and "densities" in raw:
        raise StudyError(f"{source}: give density_k or densities, not both")
    values: dict[str, Any] = {"name": default_name}
    variants = variants or {}
    parsers = {**PARSERS, "methods": lambda v: parse_methods(v, variants)}
    for key, value in raw.items():
        try:
            values[key] = parsers[key](value)
        except HarnessError as e:
            raise StudyError(f"{source}: {key}: {e}") from None
    values.setdefault("methods", tuple(method_names()))
    values["variants"] = tuple((n, variants[n].method, variants[n].params) for n in values["methods"] if n in variants)
    study = Study(**values)
    if (n := study.count()) > MAX_CELLS:
        raise StudyError(f"the grid has {n:,} cells, more than {MAX_CELLS:,}; narrow seeds ({len(study.seeds)}), "
                         f"methods ({len(study.methods)}), retrain_points/retrain_epochs "
                         f"({len(study.retrain_epochs) or study.retrain_points}), density_k/densities "
                         f"({len(study.target_densities())}), schedules or pruning")
    try:
        check_against_task(study)
    except StudyError as e:
        raise StudyError(f"{source}: {e}") from None
    return study


def task_names() -> list[str]:
    return TASKS.names()


def method_names() -> list[str]:
    return METHODS.names()


def _list(value: Any, item: Callable[[Any], Any], what: str) -> tuple[Any, ...]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise StudyError(f"must list at least one {what}")
    out = tuple(item(v) for v in items)
    if len(set(out)) != len(out):
        raise StudyError(f"lists a {what} twice: {list(items)}")
    return out


def _number(low: float, high: float | None = None, low_open: bool = False) -> Callable[[Any], float]:
    def parse(v: Any) -> float:
        bad = isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
        if bad or v < low or (low_open and v == low) or (high is not None and v > high):
            bracket = "(" if low_open else "["
            raise StudyError(f"must be a number in {bracket}{low:g}, {'inf' if high is None else f'{high:g}'}], "
                             f"got {v!r}")
        return float(v)
    return parse


def _integer(low: int, high: int | None = None) -> Callable[[Any], int]:
    def parse(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or v < low or (high is not None and v > high):
            span = f">= {low}" if high is None else f"in [{low}, {high}]"
            raise StudyError(f"must be an integer {span}, got {v!r}")
        return v
    return parse


def _choice(valid: Sequence[Any], what: str) -> Callable[[Any], Any]:
    def parse(v: Any) -> Any:
        if isinstance(v, bool) or v not in valid:
            raise StudyError(f"unknown {what} {v!r}; valid: {', '.join(map(str, valid))}")
        return v
    return parse


def parse_seeds(v: Any) -> tuple[int, ...]:
    if isinstance(v, int) and not isinstance(v, bool):
        return tuple(range(_integer(1, MAX_CELLS)(v)))
    return _list(v, _integer(0, MAX_SEED), "seed")


def parse_density_k(v: Any) -> tuple[int, ...]:
    if isinstance(v, dict):
        extra = sorted(set(v) - {"first", "last", "step"})
        if extra or "first" not in v or "last" not in v:
            raise StudyError(f"a range is {{first: K, last: K, step: 1}}, got {v!r}")
        first, last = _integer(0, MAX_EXPONENT)(v["first"]), _integer(0, MAX_EXPONENT)(v["last"])
        step = _integer(1)(v.get("step", 1))
        if last < first:
            raise StudyError(f"last must be >= first, got {v!r}")
        return tuple(range(first, last + 1, step))
    return _list(v, _integer(0, MAX_EXPONENT), "exponent k")


def parse_pruning(v: Any) -> tuple[PruningKind, ...]:
    """Entries: a strategy's name, ``{strategy: NAME, params: {n: 1, m: 4}}``, or a structured
    configuration at levels, ``{structured: CONFIG, levels: [1, 2]}`` (``strategy`` works there too)."""

    def one(entry: Any) -> PruningKind:
        if isinstance(entry, str):
            entry = {"strategy": entry}
        keys = {"strategy", "structured", "levels", "params"}
        if not isinstance(entry, dict) or not set(entry) <= keys or len({"strategy", "structured"} & set(entry)) != 1:
            raise StudyError(f"an entry is a strategy ({', '.join(PRUNING.names())}), {{strategy: NAME, params: "
                             f"{{...}}}} or {{structured: CONFIG, levels: [1, 2]}}, got {entry!r}")
        name = _choice(PRUNING.names(), "pruning strategy")(entry.get("strategy", entry.get("structured")))
        strategy = PRUNING.get(name)
        if "levels" in entry and strategy.target is not Target.LEVEL:
            raise StudyError(f"levels are for structured configurations; {name} takes the study's densities")
        levels = _list(entry.get("levels", [1]), _choice(list(strategy.levels) or [1], "level"), "level")
        params = entry.get("params", {})
        if not isinstance(params, dict):
            raise StudyError(f"{name}: params is a mapping {{parameter: value}}, got {params!r}")
        return PruningKind(strategy=name, levels=levels, params=strategy.overrides(params))

    return _list(v, one, "pruning kind")


def parse_methods(v: Any, variants: Iterable[str] = ()) -> tuple[str, ...]:
    return _list(v, _choice(method_names() + sorted(variants), "method"), "method")


def parse_method_params(v: Any) -> tuple[tuple[str, tuple[tuple[str, float], ...]], ...]:

    if not isinstance(v, dict):
        raise StudyError(f"a mapping {{method: {{parameter: value}}}}, got {v!r}")
    out = []
    for method, params in sorted(v.items()):
        spec = get_method(_choice(method_names(), "method")(method))
        if not isinstance(params, dict):
            raise StudyError(f"{method}: a mapping {{parameter: value}}, got {params!r}")
        out.append((method, spec.overrides(params)))
    return tuple(out)


PARSERS: dict[str, Callable[[Any], Any]] = {
    "name": lambda v: parse_name(v),
    "task": lambda v: _choice(task_names(), "task")(v),
    "methods": parse_methods,
    "retrain_points": _integer(1, MAX_RETRAIN_POINTS),
    "retrain_epochs": lambda v: _list(v, _number(0.0), "retraining time"),
    "density_k": parse_density_k,
    "densities": lambda v: _list(v, _number(0.0, 1.0, low_open=True), "density"),
    "seeds": parse_seeds,
    "schedules": lambda v: _list(v, _choice(list(SCHEDULES), "schedule"), "schedule"),
    "pruning": parse_pruning,
    "epochs_scale": _number(EPOCHS_SCALE[0], EPOCHS_SCALE[1]),
    "batch_size": lambda v: None if v is None else _integer(1)(v),
    "method_params": parse_method_params,
}


def _raise(message: str) -> Any:
    raise StudyError(message)


def parse_name(value: Any) -> str:
    """A study's name becomes a folder of the store (``studies/NAME-HASH``): a plain name, never a path."""
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise StudyError(f"must be a name of letters, digits, '.', '_' and '-' starting with a letter or digit, "
                         f"not {value!r}")
    return value


def check_against_task(study: Study) -> None:
    """What only the task can tell: retraining times within each method's range, structured
    configurations made for this task."""

    T = study.T
    for name in study.methods:
        for t in study.times():
            try:
                get_method(study.method_of(name)[0]).validate(T, t)
            except HarnessError as e:
                raise StudyError(f"retrain_epochs: {e}") from None
    for kind in study.pruning:
        strategy = kind.spec
        level = strategy.target is Target.LEVEL
        for name in study.methods:
            method = get_method(study.method_of(name)[0])
            try:
                strategy.check(study.task, iterative="iterative" in study.schedules and not level,
                               during_training=name if method.during is not None else None,
                               density=study.target_densities()[0] if strategy.target is Target.DENSITY else None,
                               levels=kind.levels if level else (), params=dict(kind.params))
            except HarnessError as e:
                raise StudyError(f"pruning: {e}") from None
    if any(kind.spec.target is Target.DENSITY for kind in study.pruning) and study.target_densities():
        try:
            check_keeps_weights(get_task(study.task), min(study.target_densities()), "densities")
        except HarnessError as e:
            raise StudyError(str(e)) from None


def describe(study: Study) -> dict[str, Any]:
    """The study as JSON, for its folder in the store and for the MLflow parent run."""
    return {"name": study.name, "hash": study.hash, **dataclasses.asdict(study),
            "T": study.T, "times": study.times(), "target_densities": study.target_densities()}
