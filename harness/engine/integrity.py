"""A finished cell's stored tensors, checked against the digests its record holds."""

from __future__ import annotations

from pathlib import Path

import torch

from harness.core import masks
from harness.core.errors import DamagedFile
from harness.core.tensor_digest import digest
from harness.storage import paths, store
from harness.storage.record import CellRecord


def stored_weights(folder: Path, record: CellRecord) -> tuple[dict[str, torch.Tensor], masks.Mask]:
    """A finished cell's ``weights.pt`` and ``mask.pt``, checked against the digests its record
    holds; a file that fails takes the result with it, so that the cell is computed again."""
    loaded = []
    for name, key in ((paths.WEIGHTS, "weights_sha256"), (paths.MASK, "mask_sha256")):
        path = folder / name
        try:
            tensors = store.load(path)
            if getattr(record, key) and digest(tensors) != getattr(record, key):
                raise DamagedFile(path, f"its digest differs from the {key} in result.json")
        except FileNotFoundError:
            raise DamagedFile(path, "missing", invalidates=(folder / paths.RESULT,)) from None
        except DamagedFile as e:
            raise DamagedFile(path, e.reason, invalidates=(folder / paths.RESULT,)) from None
        loaded.append(tensors)
    return loaded[0], loaded[1]

