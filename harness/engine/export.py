"""A finished cell's pruned network outside the store: its weights, its mask and a JSON that says
what it is, in a form that loads without running code (``weights_only`` torch files, or safetensors).

Where whole filters were removed the network is written compacted: a thinner dense network that
computes the same function. Its shape is not a registered model's, so the mask of the network as
trained goes with it: ``load_exported`` builds the task's model and thins it by that mask, which
gives the architecture the weights belong to.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from harness.core.errors import DamagedFile, HarnessError
from harness.core.hparams import BaseHparams
from harness.core.masks import Mask
from harness.engine.integrity import stored_weights
from harness.storage import paths, store
from harness.storage.record import CellRecord
from methods.compaction import compact
from methods.pruning import Prunes, get_pruning
from tasks.spec import get_task

FORMATS = ("torch", "safetensors")
DESCRIPTION = "model.json"
SUFFIX = {"torch": ".pt", "safetensors": ".safetensors"}
FORMAT_VERSION = 1


@dataclass(frozen=True)
class PrunedModel:
    model: nn.Module  # in eval mode on the CPU; compacted where filters were removed
    mask: Mask  # of the network as trained, before any compaction
    record: CellRecord
    compacted: bool


def task_of(record: CellRecord) -> Any:

    return get_task(record.task).resolved(BaseHparams(record.task, record.seed, record.epochs_scale,
                                                      record.batch_size))


def removes_filters(pruning: str) -> bool:

    return get_pruning(pruning).prunes is Prunes.FILTERS


def pruned_model(folder: Path) -> PrunedModel:
    """The pruned network of the finished cell in ``folder`` (``Store.cell_dir`` finds it by name)."""

    record = store.read_record(folder / paths.RESULT)
    if record is None:
        raise HarnessError(f"cell {folder.name} has not finished: it has no {paths.RESULT}; rerun its command")
    weights, mask = stored_weights(folder, record)
    model = task_of(record).make_model()
    model.load_state_dict(weights)
    compacted = removes_filters(record.pruning)
    if compacted:
        model = compact(model, mask)
    return PrunedModel(model.eval(), mask, record, compacted)


def export(folder: Path, out: Path, fmt: str = "safetensors") -> PrunedModel:
    """Write the pruned network of the cell in ``folder`` to the folder ``out``: weights, mask and ``model.json``."""
    if fmt not in FORMATS:
        raise HarnessError(f"--format {fmt!r} is not valid; valid: {', '.join(FORMATS)}")
    pruned = pruned_model(folder)
    files = {"weights": f"weights{SUFFIX[fmt]}", "mask": f"mask{SUFFIX[fmt]}"}
    state = {k: v.detach().cpu().clone().contiguous() for k, v in pruned.model.state_dict().items()}
    write_tensors(out / files["weights"], state, fmt)
    write_tensors(out / files["mask"], {k: v.cpu().contiguous() for k, v in pruned.mask.items()}, fmt)
    record = pruned.record
    store.atomic_write_json(out / DESCRIPTION, {
        "format_version": FORMAT_VERSION, "format": fmt, "files": files, "compacted": pruned.compacted,
        # one sample's shape (a batch is (N, *input_shape)); the task's network takes token ids when it is a
        # translation task, whose shape is its sentence's
        "input_shape": list(task_of(record).input_shape),
        # the exported tensors' element count, pruned zeros included; ``record.remaining_weights`` counts
        # the prunable weights that are non-zero, ``record.parameters`` the network's parameters before pruning
        "stored_parameters": sum(p.numel() for p in pruned.model.parameters()),
        "nonzero_parameters": sum(int((p != 0).sum()) for p in pruned.model.parameters()),
        "how_to_load": "harness.engine.export.load_exported(FOLDER), or the task's model thinned by the mask "
                       "(methods.compaction.compact) when compacted, then load_state_dict(weights)",
        "record": record.to_json(),
    })
    return pruned


def write_tensors(path: Path, tensors: dict[str, torch.Tensor], fmt: str) -> None:
    if fmt == "torch":
        store.atomic_save(path, tensors, digest=False)
    else:
        # start-up: safetensors only when a file of that format is written
        from safetensors.torch import save

        store.atomic_write_bytes(path, save(tensors))


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == SUFFIX["torch"]:
        return store.load(path)
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        return load(path.read_bytes())
    except (SafetensorError, ValueError) as e:
        raise DamagedFile(path, f"not a safetensors file: {' '.join(str(e).split())[:100]}") from None


def load_exported(folder: str | os.PathLike) -> nn.Module:
    """The network ``export`` wrote to ``folder``, in eval mode on the CPU."""

    folder = Path(folder)
    try:
        description = store.read_json(folder / DESCRIPTION)
        files, record = description["files"], CellRecord.from_json(description["record"])
    except FileNotFoundError:
        raise HarnessError(f"{folder} holds no {DESCRIPTION}: not a model written by `harness export`") from None
    except (KeyError, TypeError) as e:
        raise DamagedFile(folder / DESCRIPTION, f"not an export's description (lacks {e})") from None
    weights, mask = read_tensors(folder / files["weights"]), read_tensors(folder / files["mask"])
    model = task_of(record).make_model()
    if description.get("compacted"):
        model = compact(model, mask)  # the architecture; its weights are loaded next
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        raise DamagedFile(folder / files["weights"], f"does not fit {record.task}'s network: "
                                                     f"{' '.join(str(e).split())[:120]}") from None
    return model.eval()
