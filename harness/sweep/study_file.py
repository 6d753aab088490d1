"""A study file's schema: a pydantic model of its keys, whose errors become one line naming the key.

Each constrained value is a pydantic type (strict numbers with bounds, names from a registry, lists
without repeats); a ``WrapValidator`` around it turns pydantic's report into one sentence built from
the same bounds, so a message always states the valid range it was checked against. Values that may
be a scalar or a list are told apart by a callable ``Discriminator``, so an error speaks of the shape
the user wrote, not of every shape the key accepts.
"""

# no ``from __future__ import annotations``: the field types below are built by calls, evaluated here
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    WrapValidator,
    model_validator,
)

from harness.core.errors import HarnessError
from harness.core.hparams import EPOCHS_SCALE
from harness.core.names import canonical, did_you_mean, unknown
from harness.core.protocol import SCHEDULES, as_fraction
from harness.core.registry import METHODS, PRUNING, TASKS
from harness.core.seeding import MAX_SEED
from harness.sweep.variants import NAME
from methods.pruning import Target
from methods.spec import get_method

MAX_CELLS = 100_000  # a grid is counted before it is built; past this it is refused (its plan takes ~30 s)
MAX_RETRAIN_POINTS = 1000
MAX_EXPONENT = 100  # 0.8^100 keeps 2e-10 of the weights


def _described(message: Callable[[Any], str]) -> WrapValidator:
    """Pydantic's own check, reported as ``message(value)``."""

    def wrap(value: Any, handler: Callable[[Any], Any]) -> Any:
        try:
            return handler(value)
        except ValidationError:
            raise ValueError(message(value)) from None

    return WrapValidator(wrap)


def Integer(low: int, high: int | None = None) -> Any:  # a type, so named as one
    span = f">= {low}" if high is None else f"in [{low}, {high}]"
    return Annotated[int, Field(strict=True, ge=low, le=high),
                     _described(lambda v: f"must be an integer {span}, got {v!r}")]


def Number(low: float, high: float | None = None, low_open: bool = False,
           hint: Callable[[Any], str] = lambda v: "") -> Any:
    bounds = {"gt" if low_open else "ge": low, "le": high}
    span = f"{'(' if low_open else '['}{low:g}, {'inf' if high is None else f'{high:g}'}]"
    return Annotated[float, Field(strict=True, allow_inf_nan=False, **bounds),
                     _described(lambda v: f"must be a number in {span}, got {v!r}{hint(v)}")]


def percent_hint(value: Any) -> str:
    """A density written as a percentage (20 for 0.20) is offered as the fraction."""
    plain = isinstance(value, (int, float)) and not isinstance(value, bool)
    return as_fraction(float(value)) if plain else ""


def _one_of(names: Callable[[ValidationInfo], list[str]], what: str) -> AfterValidator:
    def check(value: Any, info: ValidationInfo) -> Any:
        valid = names(info)
        found = canonical(value, valid) if isinstance(value, str) else None
        if found is None:
            raise ValueError(unknown(what, value, valid))
        return found

    return AfterValidator(check)


def Choice(names: Callable[[ValidationInfo], list[str]], what: str) -> Any:
    return Annotated[Any, _one_of(names, what)]


def _as_list(value: Any) -> Any:
    return value if isinstance(value, list) else [value]


def _distinct(what: str) -> AfterValidator:
    def check(items: list[Any]) -> tuple[Any, ...]:
        if not items:
            raise ValueError(f"must list at least one {what}")
        keys = [item.model_dump_json() if isinstance(item, BaseModel) else item for item in items]
        if len(set(keys)) != len(keys):
            raise ValueError(f"lists a {what} twice: {items}")
        return tuple(items)

    return AfterValidator(check)


def ListOf(item: Any, what: str) -> Any:
    """One ``item`` or a list of them, none twice."""
    return Annotated[list[item], BeforeValidator(_as_list), _distinct(what)]


def _count_or_list(value: Any) -> str:
    return "list" if isinstance(value, list) else "count"


def _range_or_list(value: Any) -> str:
    return "range" if isinstance(value, dict) else "list"


def _tasks(_: ValidationInfo) -> list[str]:
    return TASKS.names()


def _methods(info: ValidationInfo) -> list[str]:
    return METHODS.names() + sorted((info.context or {}).get("variants", ()))


def _strategies(_: ValidationInfo) -> list[str]:
    return PRUNING.names()


def _schedules(_: ValidationInfo) -> list[str]:
    return list(SCHEDULES)


Seeds = Annotated[  # a count n (seeds 0..n-1) or the seeds themselves
    Annotated[Integer(1, MAX_CELLS), Tag("count")] | Annotated[ListOf(Integer(0, MAX_SEED), "seed"), Tag("list")],
    Discriminator(_count_or_list)]


class DensityRange(BaseModel):
    """``density_k: {first: 1, last: 20, step: 1}``: the exponents first..last."""

    model_config = ConfigDict(extra="forbid")
    first: Integer(0, MAX_EXPONENT)
    last: Integer(0, MAX_EXPONENT)
    step: Integer(1) = 1

    @model_validator(mode="before")
    @classmethod
    def _keys(cls, raw: Any) -> Any:
        if not isinstance(raw, dict) or set(raw) - {"first", "last", "step"} or not {"first", "last"} <= set(raw):
            raise ValueError(f"a range is {{first: K, last: K, step: 1}}, got {raw!r}")
        return raw

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.last < self.first:
            raise ValueError(f"last must be >= first, got {self.model_dump()!r}")
        return self

    def exponents(self) -> tuple[int, ...]:
        return tuple(range(self.first, self.last + 1, self.step))


Exponents = Annotated[  # the exponents k of densities 0.8^k: a range or the exponents themselves
    Annotated[DensityRange, Tag("range")] | Annotated[ListOf(Integer(0, MAX_EXPONENT), "exponent k"), Tag("list")],
    Discriminator(_range_or_list)]


class PruningEntry(BaseModel):
    """A strategy by name, ``{strategy: NAME, params: {n: 1, m: 4}}``, or a structured configuration at
    levels, ``{structured: CONFIG, levels: [1, 2]}`` (``strategy`` works there too)."""

    model_config = ConfigDict(extra="forbid")
    strategy: Choice(_strategies, "pruning strategy")
    levels: Any = None  # checked against the strategy's own levels
    params: Any = {}  # checked against the strategy's declared parameters

    @model_validator(mode="before")
    @classmethod
    def _shape(cls, raw: Any) -> Any:
        if isinstance(raw, str):
            raw = {"strategy": raw}
        named = {"strategy", "structured"} & set(raw) if isinstance(raw, dict) else set()
        if not isinstance(raw, dict) or set(raw) - {"strategy", "structured", "levels", "params"} or len(named) != 1:
            raise ValueError(f"an entry is a strategy ({', '.join(PRUNING.names())}), {{strategy: NAME, params: "
                             f"{{...}}}} or {{structured: CONFIG, levels: [1, 2]}}, got {raw!r}")
        if not isinstance(raw.get("params", {}), dict):
            raise ValueError(f"{raw.get('strategy', raw.get('structured'))}: params is a mapping "
                             f"{{parameter: value}}, got {raw['params']!r}")
        return {**{k: v for k, v in raw.items() if k != "structured"}, "strategy": raw.get("strategy",
                                                                                         raw.get("structured"))}

    @model_validator(mode="after")
    def _fits_the_strategy(self) -> Self:
        spec = PRUNING.get(self.strategy)
        if self.levels is not None and spec.target is not Target.LEVEL:
            raise ValueError(f"levels are for structured configurations; {self.strategy} takes the study's densities")
        levels = _as_list(1 if self.levels is None else self.levels)
        valid = list(spec.levels) or [1]
        for k in levels:
            if isinstance(k, bool) or k not in valid:
                raise ValueError(f"unknown level {k!r}; valid: {', '.join(map(str, valid))}")
        if not levels or len(set(levels)) != len(levels):
            raise ValueError(f"must list at least one level, none twice, got {levels}")
        self.levels, self.params = tuple(levels), spec.overrides(self.params)
        return self


class StudyFile(BaseModel):
    """The keys of a study file, each with the paper's default when absent (``harness.sweep.study``)."""

    model_config = ConfigDict(extra="forbid")
    # None: absent, so the study's default (defaults are not validated; a null the user writes is)
    name: Annotated[Any, AfterValidator(lambda v: parse_name(v))] = None
    task: Choice(_tasks, "task")
    methods: ListOf(Choice(_methods, "method"), "method") = None
    retrain_points: Integer(1, MAX_RETRAIN_POINTS) = None
    retrain_epochs: ListOf(Number(0.0), "retraining time") = None
    density_k: Exponents = None
    densities: ListOf(Number(0.0, 1.0, low_open=True, hint=percent_hint), "density") = None
    seeds: Seeds = None
    # the calibrated strategies' calibration seeds, a count or the seeds, as for ``seeds`` (others ignore it)
    calibration_seeds: Seeds = None
    schedules: ListOf(Choice(_schedules, "schedule"), "schedule") = None
    pruning: ListOf(PruningEntry, "pruning kind") = None
    epochs_scale: Number(*EPOCHS_SCALE) = None
    batch_size: Integer(1) | None = None  # null: the task's standard batch
    method_params: Annotated[Any, AfterValidator(lambda v: method_overrides(v))] = None
    # true: each pruned network as it is, before retraining, as one more method ``no-retraining`` (fine-tuning
    # for t = 0), without every method's t = 0 cell
    no_retraining: Annotated[bool, Field(strict=True), _described(lambda v: f"must be true or false, got {v!r}")] \
        = None
    # a checkpoint task's folders (hf-causal-lm): the model saved by save_pretrained, and its data
    model: Annotated[Any, AfterValidator(lambda v: parse_folder(v))] = None
    data_dir: Annotated[Any, AfterValidator(lambda v: parse_folder(v))] = None

    @model_validator(mode="before")
    @classmethod
    def _exclusive(cls, raw: Any) -> Any:
        for a, b in (("retrain_points", "retrain_epochs"), ("density_k", "densities")):
            if isinstance(raw, dict) and a in raw and b in raw:
                raise ValueError(f"give {a} or {b}, not both")
        return raw


KEYS = tuple(StudyFile.model_fields)


def method_overrides(value: Any) -> tuple[tuple[str, tuple[tuple[str, float], ...]], ...]:
    """``{method: {parameter: value}}`` -> each method's overrides of its declared defaults."""
    if not isinstance(value, dict):
        raise ValueError(f"a mapping {{method: {{parameter: value}}}}, got {value!r}")
    out = []
    for method in sorted(value, key=str):
        name = canonical(method, METHODS.names()) if isinstance(method, str) else None
        if name is None:
            raise ValueError(unknown("method", method, METHODS.names()))
        if not isinstance(value[method], dict):
            raise ValueError(f"{method}: a mapping {{parameter: value}}, got {value[method]!r}")
        out.append((name, get_method(name).overrides(value[method])))
    return tuple(out)


def parse_folder(value: Any) -> str:
    """A folder the study reads (a checkpoint, a data set), as an absolute path."""
    if not isinstance(value, str) or not value or not Path(value).is_dir():
        raise ValueError(f"must be an existing folder, not {value!r}")
    return str(Path(value).resolve())


def parse_name(value: Any) -> str:
    """A study's name becomes a folder of the store (``studies/NAME-HASH``): a plain name, never a path."""
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise ValueError(f"must be a name of letters, digits, '.', '_' and '-' starting with a letter or digit, "
                         f"not {value!r}")
    return value


def read_keys(raw: dict[str, Any], variants: list[str]) -> StudyFile:
    """The file's keys, checked; a ``HarnessError`` naming the first wrong key otherwise."""
    try:
        return StudyFile.model_validate(raw, context={"variants": variants})
    except ValidationError as e:
        raise HarnessError(first_error(e)) from None


def first_error(error: ValidationError) -> str:
    """The one line a user reads: a key the schema lacks, then a missing key, then the first key's value."""
    order = {"extra_forbidden": 0, "missing": 1}
    err = min(error.errors(), key=lambda e: order.get(e["type"], 2))
    key = str(err["loc"][0]) if err["loc"] else None
    if err["type"] == "extra_forbidden" and len(err["loc"]) == 1:
        return f"key {key!r} is not valid; valid keys: {', '.join(KEYS)}{did_you_mean(key, KEYS)}"
    if err["type"] == "missing" and key == "task":
        return f"key 'task' is required; valid: {', '.join(TASKS.names())}"
    if err["type"] in ("value_error", "assertion_error"):
        message = str(err["ctx"]["error"])
    else:
        message = f"{err['msg'][0].lower()}{err['msg'][1:]}, got {err['input']!r}"
    return f"{key}: {message}" if key else message
