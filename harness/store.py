"""The local results store: content-addressed run folders, the source of truth (MLflow mirrors it)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from harness import distributed
from harness.errors import HarnessError
from harness.hparams import BaseHparams, RetrainHparams, canonical, content_hash


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    if not distributed.is_main():  # ranks of one DDP run hold the same results: rank 0 writes them
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a result is as readable as any file written here
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def atomic_save(path: Path, obj: Any) -> None:
    """``torch.save`` that never leaves a half-written file behind."""
    if not distributed.is_main():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: Path) -> Any:
    return torch.load(path, map_location="cpu", weights_only=True)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def probe_writable(folder: Path) -> None:
    """Create ``folder`` and a file in it, so a place that cannot be written fails (OSError) before any work."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-probe-"):
        pass


class Store:
    """``base/<task>-s<seed>-<hash>/`` and ``retrain/<task>-<method>-r<round>-<hash>/`` folders.

    ``bases`` puts the base networks in another store's root: a search keeps its trials apart from
    the results tables while reusing the base networks and rewind checkpoints of the main store.
    """

    def __init__(self, root: str | os.PathLike, bases: str | os.PathLike | None = None) -> None:
        self.root = Path(root).expanduser().resolve()
        self.bases = Path(bases).expanduser().resolve() if bases is not None else self.root

    def check_writable(self) -> None:
        try:
            probe_writable(self.root)
        except OSError as e:
            reason = e.strerror or str(e)
            raise HarnessError(
                f"results store {str(self.root)!r} is not writable ({reason}); "
                "pass --store a writable folder"
            ) from None

    def base_dir(self, hp: BaseHparams) -> Path:
        return self.bases / "base" / f"{hp.task}-s{hp.seed}-{content_hash(hp)}"

    def retrain_dir(self, hp: RetrainHparams) -> Path:
        name = f"{hp.base.task}-{hp.method_label}-r{hp.round}-{content_hash(hp)}"
        return self.root / "retrain" / name

    @staticmethod
    def write_hparams(folder: Path, hp: Any) -> None:
        atomic_write_json(folder / "hparams.json", canonical(hp))

    def results(self) -> Iterator[dict[str, Any]]:
        """Every finished retraining round: the store's results table, one row a run."""
        for path in sorted((self.root / "retrain").glob("*/result.json")):
            yield read_json(path)
