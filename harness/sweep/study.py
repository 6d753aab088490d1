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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from harness.core.canonical import content_hash
from harness.core.errors import HarnessError
from harness.core.hparams import CPU, BaseHparams, Compute, RetrainHparams
from harness.core.names import did_you_mean
from harness.core.protocol import (
    DEFAULT_PRUNING,
    ITERATIVE_RATE,
    PAPER_GRID_POINTS,
    density_chain,
    paper_retraining_times,
)
from harness.engine import gate
from harness.sweep.study_file import MAX_CELLS, DensityRange, StudyFile, read_keys
from harness.sweep.variants import Variant
from methods.calibration import SEED
from methods.pruning import Target, get_pruning
from tasks.spec import get_task


@dataclass(frozen=True)
class PruningKind:
    """A registered pruning strategy with its parameters (a structured configuration: at levels k)."""

    strategy: str = DEFAULT_PRUNING
    levels: tuple[int, ...] = (1,)
    params: tuple[tuple[str, float], ...] = ()  # overrides of the strategy's declared defaults

    @property
    def spec(self) -> Any:

        return get_pruning(self.strategy)


NO_RETRAINING, NO_RETRAINING_METHOD = "no-retraining", "fine-tuning"  # TRAIN^0(W_T, m, T): the pruned W_T itself


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
    checkpoint: str | None = None  # a checkpoint task's model folder and data folder (absolute)
    data_dir: str | None = None
    no_retraining: bool = False  # also each pruned network as it is: fine-tuning for t = 0, named NO_RETRAINING

    @property
    def hash(self) -> str:
        return content_hash(dataclasses.replace(self, name=""))

    def base(self, seed: int) -> BaseHparams:
        return BaseHparams(self.task, seed=seed, epochs_scale=self.epochs_scale, batch_size=self.batch_size,
                           compute=self.compute, checkpoint=self.checkpoint, data_dir=self.data_dir)

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
        return len(self.seeds) * shapes * (len(self.methods) * times + self.no_retraining)

    def cells(self) -> list[RetrainHparams]:
        """Every cell the study reports, in a stable order (rounds an iterative chain passes
        through on its way to a reported density are dependencies, not cells)."""
        out = []
        for seed in self.seeds:
            for kind in self.pruning:
                for shape in self._shapes(kind):
                    if self.no_retraining:
                        out.append(RetrainHparams(self.base(seed), NO_RETRAINING_METHOD, 0.0, **shape,
                                                  variant=NO_RETRAINING))
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
            raise StudyError(f"{spec}: no such study file or preset; presets: {', '.join(sorted(known))}"
                             f"{did_you_mean(spec, sorted(known))}")
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
    """A study from a file's keys (``harness.sweep.study_file``), checked against its task."""
    variants = variants or {}
    try:
        keys = read_keys(raw, sorted(variants))
    except HarnessError as e:
        raise StudyError(f"{source}: {e}") from None
    values = study_values(keys, default_name)
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


def with_calibration_seeds(kind: PruningKind, seeds: tuple[int, ...]) -> tuple[PruningKind, ...]:
    """A calibrated strategy once per calibration seed (the seed a pruning parameter, so a cell's identity);
    any other strategy as it is."""
    if not kind.spec.calibrated:
        return (kind,)
    given = dict(kind.params)
    return tuple(PruningKind(kind.strategy, kind.levels, kind.spec.overrides({**given, SEED: s})) for s in seeds)


def study_values(keys: StudyFile, default_name: str) -> dict[str, Any]:
    """The ``Study`` fields the file gives; the rest keep the paper's defaults."""
    given = {k: getattr(keys, k) for k in keys.model_fields_set}
    if "density_k" in given and isinstance(given["density_k"], DensityRange):
        given["density_k"] = given["density_k"].exponents()
    if isinstance(given.get("seeds"), int):
        given["seeds"] = tuple(range(given["seeds"]))
    if "pruning" in given:
        given["pruning"] = tuple(PruningKind(e.strategy, e.levels, e.params) for e in given["pruning"])
    if "calibration_seeds" in given:
        seeds = given.pop("calibration_seeds")
        seeds = tuple(range(seeds)) if isinstance(seeds, int) else tuple(seeds)
        given["pruning"] = tuple(kind for k in given.get("pruning", (PruningKind(),))
                                 for kind in with_calibration_seeds(k, seeds))
    if "epochs_scale" in given:
        given["epochs_scale"] = float(given["epochs_scale"])
    if "model" in given:
        given["checkpoint"] = given.pop("model")
    for key in ("retrain_epochs", "densities"):
        if key in given:
            given[key] = tuple(map(float, given[key]))
    if "methods" not in given:  # every registered method that can run on the task
        given["methods"] = tuple(gate.applicable_methods(get_task(keys.task)))
    return {"name": default_name, **given}


# the study file's key for each part of a cell the gate can refuse (a density's message names its key)
KEY_OF = {gate.RETRAINING_TIME: "retrain_epochs: ", gate.METHOD_PARAMS: "method_params: ", gate.PRUNING: "pruning: ",
          gate.DENSITY: "", gate.METHOD: "methods: "}


def check_against_task(study: Study) -> None:
    """What only the task can tell, asked of the gate (``harness.engine.gate``) for cells that stand for
    the grid: each method at each retraining time with each pruning kind, at its smallest density per
    schedule (the planner then asks it of every cell)."""
    for cell in representative_cells(study):
        try:
            gate.check_cell(cell, "densities")
        except gate.CellRefused as e:
            raise StudyError(f"{KEY_OF[e.part]}{e}") from None


def representative_cells(study: Study) -> Iterator[RetrainHparams]:
    base = study.base(study.seeds[0])
    for kind in study.pruning:
        smallest: dict[bool, dict[str, Any]] = {}
        levels = []
        for shape in study._shapes(kind):
            if "level" in shape:
                levels.append(shape)
            elif shape["iterative"] not in smallest or shape["densities"][-1] < smallest[shape["iterative"]][
                    "densities"][-1]:
                smallest[shape["iterative"]] = shape
        for shape in [*smallest.values(), *levels]:
            for name in study.methods:
                method, params, variant = study.method_of(name)
                for t in study.times():
                    yield RetrainHparams(base, method, t, **shape, method_params=params, variant=variant)


def describe(study: Study) -> dict[str, Any]:
    """The study as JSON, for its folder in the store and for the MLflow parent run."""
    return {"name": study.name, "hash": study.hash, **dataclasses.asdict(study),
            "T": study.T, "times": study.times(), "target_densities": study.target_densities()}
