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


def image_folder(root: Path, classes: int = 3, train_per_class: int = 4, val_per_class: int = 5) -> Path:
    """An ImageFolder tree (train/<class>/*, val/<class>/*) of small PNG and JPEG images."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", train_per_class), ("val", val_per_class)):
        for c in range(classes):
            folder = root / split / f"n{c:08d}"
            folder.mkdir(parents=True)
            for i in range(n):
                pixels = rng.integers(0, 256, (30 + 7 * i, 40, 3), dtype=np.uint8)
                ext = "JPEG" if i % 2 else "png"
                Image.fromarray(pixels).save(folder / f"img_{i}.{ext}", format="JPEG" if i % 2 else "PNG")
    return root
