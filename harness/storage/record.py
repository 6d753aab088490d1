"""The typed records the store writes (a finished cell, a finished base run, one evaluation during
training), and their one vocabulary of field names.

The same names are ``result.json``'s keys, ``results.csv``'s columns, the columns of external results
(``harness.analysis.statistics``), MLflow's params and metrics, and the leaderboard's. Results stored before this
vocabulary (``val``, ``base.seed``, ``retrain_epochs``, ...) are read through ``LEGACY_NAMES``.
"""

from __future__ import annotations

import ast
import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.core.errors import HarnessError

if TYPE_CHECKING:
    from harness.core.hparams import RetrainHparams

# old name -> name: the only place the vocabulary of results stored before it is known
LEGACY_NAMES = {
    "base.task": "task", "base.seed": "seed", "base.epochs_scale": "epochs_scale", "base.batch_size": "batch_size",
    "retrain_epochs": "retraining_epochs", "val": "val_acc", "test": "test_acc",
    "base_val": "unpruned_val_acc", "base_test": "unpruned_test_acc",
}
BASE_LEGACY_NAMES = {"epochs": "T", "model_parameters": "parameters"}  # a base run's result.json before its record


IDENTITY = ("task", "seed", "epochs_scale", "batch_size", "method", "variant", "method_params", "pruning",
            "pruning_params", "schedule", "round", "target_density", "densities", "level", "retraining_epochs", "T",
            "start_epoch", "epochs_trained", "metric")
OUTCOME = ("val_acc", "test_acc", "unpruned_val_acc", "unpruned_test_acc", "density", "compression_ratio",
           "remaining_weights", "prunable_weights", "parameters", "flops", "dense_flops", "seconds",
           "val_next_token_accuracy", "test_next_token_accuracy", "seqlen", "pruning_seconds", "pruning_peak_bytes",
           "calibration_tokens", "retraining_samples", "retraining_tokens", "trainable_parameters",
           "retraining_peak_bytes", "retraining_flops", "merged_density")


@dataclass(frozen=True)
class CellRecord:
    """One (cell, seed): what was run, what it reached, and how the result can be checked."""

    run: str  # the cell's folder in the store
    task: str
    seed: int
    method: str
    pruning: str
    schedule: str  # "one-shot" or "iterative"
    round: int
    density: float  # what pruning reached
    retraining_epochs: float  # t
    val_acc: float  # the task's metric (accuracy in %, or BLEU) on the validation split
    test_acc: float
    T: float  # the epochs of the (resolved) schedule
    epochs_scale: float = 1.0
    batch_size: int | None = None  # None: the task's standard one
    variant: str | None = None
    method_params: dict[str, float] = field(default_factory=dict)  # those set apart from the declared defaults
    pruning_params: dict[str, float] = field(default_factory=dict)
    target_density: float | None = None  # what was asked for (None: a structured configuration's level)
    densities: tuple[float, ...] = ()  # target density of each round of the chain
    level: int | None = None
    metric: str = "accuracy"
    metric_definition: str = ""
    unpruned_val_acc: float | None = None
    unpruned_test_acc: float | None = None
    compression_ratio: float = math.nan
    remaining_weights: int = 0
    prunable_weights: int = 0
    parameters: int = 0
    flops: int = 0
    dense_flops: int = 0
    start_epoch: float = 0.0
    epochs_trained: float = 0.0
    seconds: float = 0.0  # wall time of the cell's own training and measurement
    finished_at: float = 0.0  # when it finished, seconds since the epoch (0: stored before this was kept)
    device: str = "cpu"
    torch_threads: int = 0
    weights_sha256: str = ""
    mask_sha256: str = ""
    # a language model's: the window length its perplexity is computed in, and next-token accuracy in %
    seqlen: int | None = None
    val_next_token_accuracy: float | None = None
    test_next_token_accuracy: float | None = None
    # what pruning cost: its wall time, its peak memory (bytes, on the device it ran on) and calibration tokens
    pruning_seconds: float = 0.0
    pruning_peak_bytes: int = 0
    calibration_tokens: int = 0
    # what retraining cost: the samples (sequences, images) it read and, for a language model, their tokens; the
    # parameters it trained (pruned entries excluded); the bytes of tensors live at a step's peak (the networks,
    # gradients, optimizer state, activations); and its FLOPs, counted by torch.utils.flop_counter
    retraining_samples: int = 0
    retraining_tokens: int | None = None
    trainable_parameters: int = 0
    retraining_peak_bytes: int = 0
    retraining_flops: int = 0
    merged_density: float | None = None  # a densifying method's (plain LoRA's) share of nonzero prunable weights
    cached: bool = field(default=False, compare=False)  # read back from the store rather than computed now

    def run_params(self) -> dict[str, Any]:
        """What was run, as MLflow params: the row's fields that name the cell."""
        row = self.row()
        return {k: row[k] for k in IDENTITY}

    def outcome(self) -> dict[str, float]:
        """What it reached, as MLflow metrics."""
        return {k: float(getattr(self, k)) for k in OUTCOME if getattr(self, k) is not None}

    def to_json(self) -> dict[str, Any]:
        """``result.json``: every field but ``cached``, and the kind of run."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "cached"}
        return {"kind": "retrain", **out, "densities": list(self.densities)}

    def row(self) -> dict[str, Any]:
        """A flat row for ``results.csv``: parameters as ``name=value`` lists, the chain comma-joined."""
        out = self.to_json()
        del out["kind"]
        for key in ("method_params", "pruning_params"):
            out[key] = ";".join(f"{k}={v:g}" for k, v in sorted(out[key].items()))
        out["densities"] = ",".join(f"{d:.6g}" for d in self.densities)
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any], cached: bool = True) -> CellRecord:
        """A ``result.json`` of any version: the legacy names are renamed, fields it predates take their defaults."""
        data = {LEGACY_NAMES.get(k, k): v for k, v in raw.items()}
        for key in ("method_params", "pruning_params"):
            data[key] = parameters(data.get(key))
        if raw.get("structured"):  # a structured configuration was named apart from the strategy
            data["pruning"] = raw["structured"]
        if "T" not in data and raw.get("retrain_fraction"):
            data["T"] = data["retraining_epochs"] / raw["retrain_fraction"]
        data["densities"] = chain_of(data.get("densities"))
        if "target_density" not in data:
            data["target_density"] = data["densities"][-1] if data["densities"] else None
        if "level" in data and data["densities"]:
            data["level"] = None
        fields = {f.name: f for f in dataclasses.fields(cls)}
        missing = [f.name for f in fields.values()
                   if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                   and f.name not in data]
        if missing:
            raise HarnessError(f"not a cell's result: it lacks {', '.join(missing)}")
        return cls(**{k: typed(v, str(fields[k].type)) for k, v in data.items() if k in fields and k != "cached"},
                   cached=cached)



def cell_fields(hp: RetrainHparams) -> dict[str, Any]:
    """A cell's hyperparameters under the record's names: the one mapping from ``RetrainHparams`` to the
    vocabulary of records, CSVs, MLflow and the statistics (``retrain_epochs`` is ``retraining_epochs``,
    the base's fields are the cell's own, the last density of the chain is ``target_density``)."""
    return {"task": hp.base.task, "seed": hp.base.seed, "epochs_scale": hp.base.epochs_scale,
            "batch_size": hp.base.batch_size, "method": hp.method, "variant": hp.variant,
            "method_params": dict(hp.method_params), "pruning": hp.pruning, "pruning_params": dict(hp.pruning_params),
            "schedule": hp.schedule, "round": hp.round, "target_density": hp.density, "densities": hp.densities,
            "level": hp.level, "retraining_epochs": hp.retrain_epochs}


@dataclass(frozen=True)
class EpochRecord:
    """One evaluation during TRAIN (an epoch's end, or a shorter run's end inside a shared one):
    ``history.json``'s entries, and ``resume.pt``'s."""

    epoch: float
    val_acc: float
    test_acc: float
    lr: float = math.nan
    train_loss: float = math.nan

    def to_json(self) -> dict[str, float]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> EpochRecord:
        """An entry of any version (``val`` and ``test`` before the record)."""
        data = {LEGACY_NAMES.get(k, k): v for k, v in raw.items()}
        return cls(**{f.name: float(data[f.name]) for f in dataclasses.fields(cls) if f.name in data})


def history_from_json(raw: list[dict[str, Any]]) -> list[EpochRecord]:
    return [EpochRecord.from_json(r) for r in raw]


def history_to_json(history: list[EpochRecord]) -> list[dict[str, float]]:
    return [r.to_json() for r in history]


@dataclass(frozen=True)
class BaseRecord:
    """A finished base run (TRAIN of the original network): its ``result.json``."""

    task: str
    seed: int
    epochs_scale: float
    batch_size: int | None
    T: float  # the epochs of the (resolved) schedule
    steps_per_epoch: int
    val_acc: float
    test_acc: float
    parameters: int = 0
    metric: str = "accuracy"
    metric_definition: str = ""
    task_fingerprint: str = ""
    compute: dict[str, Any] = field(default_factory=dict)  # device, bf16, threads
    seconds: float = 0.0
    finished_at: float = 0.0
    seqlen: int | None = None  # a language model's, as in ``CellRecord``
    val_next_token_accuracy: float | None = None
    test_next_token_accuracy: float | None = None

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        compute = out.pop("compute")
        return {"kind": "base", **out, **{f"compute.{k}": v for k, v in compute.items()}}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> BaseRecord:
        """A base ``result.json`` of any version (``epochs``, ``model_parameters`` before the record)."""
        data = {BASE_LEGACY_NAMES.get(k, k): v for k, v in raw.items()}
        data["compute"] = {k.split(".", 1)[1]: v for k, v in raw.items() if k.startswith("compute.")}
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class SpeedRecord:
    """A compacted network's measured latency against the unpruned one's: ``speed.json``."""

    device: str
    dense_parameters: int
    compact_parameters: int
    dense_flops: int
    compact_flops: int
    latency: dict[int, tuple[float, float]]  # batch size -> (dense, compacted) seconds per forward pass

    def speedup(self, batch: int) -> float:
        dense, compact = self.latency[batch]
        return dense / compact

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: getattr(self, k) for k in
                               ("device", "dense_parameters", "compact_parameters", "dense_flops", "compact_flops")}
        for batch, (dense, compact) in sorted(self.latency.items()):
            out |= {f"dense_s_b{batch}": dense, f"compact_s_b{batch}": compact, f"speedup_b{batch}": dense / compact}
        return out


def parameters(value: Any) -> dict[str, float]:
    """Parameters as a record holds them, from any form they were written in: a mapping, a
    ``results.csv`` cell (``a=1;b=2``), or the tuple of pairs results before the record held
    (``('a', 1)``; read with ``literal_eval``, which never runs code)."""
    if isinstance(value, dict):
        return {str(k): float(v) for k, v in value.items()}
    if value is None or (isinstance(value, float) and math.isnan(value)) or str(value) in ("", "()", "None"):
        return {}
    text = str(value)
    if "=" in text:
        return {k: float(v) for k, _, v in (item.partition("=") for item in text.split(";"))}
    pairs = ast.literal_eval(text)
    if pairs and not isinstance(pairs[0], tuple):
        pairs = (pairs,)
    return {str(k): float(v) for k, v in pairs}


def typed(value: Any, annotation: str) -> Any:
    """A value read from text (MLflow params, CSV cells) as the field's type."""
    if annotation.startswith(("int", "float", "str")) and (value is None or value in ("", "None")
                                                           or (isinstance(value, float) and math.isnan(value))):
        return None if "None" in annotation else value
    if annotation.startswith("int"):
        return int(float(value))
    if annotation.startswith("float"):
        return float(value)
    if annotation.startswith("str"):
        return str(value)
    return value


def chain_of(value: Any) -> tuple[float, ...]:
    """The densities of a chain from a list, a ``results.csv`` cell (``0.8,0.64``) or a lone number."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return ()
    if isinstance(value, (int, float)):
        return (float(value),)
    items = value.split(",") if isinstance(value, str) else value
    return tuple(float(d) for d in items if str(d).strip())
