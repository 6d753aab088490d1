"""Small data sets written in the real on-disk formats, for testing the real loaders."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np


def cifar10_folder(root: Path, per_batch: int = 20, test: int = 50, seed: int = 0) -> Path:
    """A ``cifar-10-batches-py`` folder: five training pickles and a test pickle, as CIFAR ships."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, n in [*((f"data_batch_{i}", per_batch) for i in range(1, 6)), ("test_batch", test)]:
        entry = {
            b"batch_label": name.encode(),
            b"labels": rng.integers(0, 10, n).tolist(),
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"filenames": [f"{name}_{i}.png".encode() for i in range(n)],
        }
        with open(folder / name, "wb") as f:
            pickle.dump(entry, f)
    return root
