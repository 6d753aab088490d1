"""The local results store: content-addressed run folders, the source of truth (MLflow mirrors it)."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import io
import json
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import filelock
import torch

from harness.core import distributed
from harness.core.canonical import canonical, content_hash
from harness.core.errors import DamagedFile, HarnessError, StoreFault
from harness.core.hparams import BaseHparams, RetrainHparams
from harness.storage import paths
from harness.storage.paths import HPARAMS, LOCK, RESULT, WRITTEN
from harness.storage.record import LEGACY_NAMES, CellRecord

FILE_MODE = 0o644  # every file of the store, whatever the umask of the process that wrote it
RESULT_KEYS = ("kind", "val_acc", "test_acc")  # what every result.json holds (under its current names)


def checkpoint_steps(folder: Path) -> list[int]:
    """The steps a base run's folder holds checkpoints of."""
    return sorted(paths.checkpoint_step(p) for p in paths.checkpoints(folder))


def missing_checkpoints(folder: Path, steps: set[int]) -> set[int]:
    return {s for s in steps if not paths.checkpoint(folder, s).exists()}


def mount_point(path: Path) -> Path:
    path = path.resolve()
    while not os.path.ismount(path) and path != path.parent:
        path = path.parent
    return path


def write_fault(e: OSError, path: Path) -> StoreFault:
    """An OSError while writing ``path`` as the one line the CLI prints."""
    kept = "nothing computed so far is lost"
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return StoreFault(e.errno, f"no space left on {mount_point(path.parent)} while writing {path}; {kept}: "
                                   "free space and rerun the same command to resume")
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return StoreFault(e.errno, f"cannot write {path} ({e.strerror}); {kept}: make the folder writable or "
                                   "pass --store a writable folder")
    return StoreFault(e.errno, f"cannot write {path} ({e.strerror or e}); {kept}")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    if not distributed.is_main():  # ranks of one DDP run hold the same results: rank 0 writes them
        return
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), FILE_MODE)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise write_fault(e, path) from None
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def digest_path(path: Path) -> Path:
    """Where the SHA-256 of a tensor file is kept: beside it, written after it."""
    return paths.digest_of(path)


def atomic_save(path: Path, obj: Any, digest: bool = True) -> None:
    """``torch.save`` that never leaves a half-written file behind. Serialized in memory first: the
    archive then bears a fixed name, not the temporary file's, so equal tensors give equal bytes.
    The bytes' SHA-256 is written beside the file, so that a change that still loads is found when
    the file is read again (``load``)."""
    if not distributed.is_main():  # rank 0 writes (atomic_write_bytes): others need not serialize
        return
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    data = buffer.getvalue()
    atomic_write_bytes(path, data)
    if digest:  # a file the store reads again; an export is the user's
        atomic_write_bytes(digest_path(path), hashlib.sha256(data).hexdigest().encode())


def load(path: Path, keys: tuple[str, ...] = ()) -> Any:
    """A tensor file of the store (``weights_only``); a file that does not load, lacks ``keys``, or
    whose bytes differ from the digest recorded when it was written is a ``DamagedFile``. (A file
    written before digests were recorded has none and is read as it is.)"""
    data = path.read_bytes()  # FileNotFoundError: absent, not damaged
    recorded = digest_path(path)
    if recorded.exists():
        try:
            expected = recorded.read_text().strip()
        except (OSError, UnicodeDecodeError):
            expected = ""
        if hashlib.sha256(data).hexdigest() != expected:
            raise DamagedFile(path, "its bytes differ from the SHA-256 recorded when it was written",
                              invalidates=(recorded,))
    try:
        with warnings.catch_warnings():  # torch's own words about a refused pickle: the harness says it once
            warnings.simplefilter("ignore")
            obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:
        raise DamagedFile(path, f"does not load: {' '.join(str(e).split())[:100]}") from None
    if not isinstance(obj, dict) or not all(k in obj for k in keys):
        raise DamagedFile(path, f"not a mapping with {', '.join(keys) or 'tensors'}")
    return obj


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError
        raise DamagedFile(path, f"not JSON: {' '.join(str(e).split())[:80]}") from None


def read_result(path: Path) -> dict[str, Any] | None:
    """A finished run's ``result.json``: None when absent, ``DamagedFile`` when it is not a result."""
    try:
        result = read_json(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    if not isinstance(result, dict):
        raise DamagedFile(path, "not a result: not a JSON object")
    result = {LEGACY_NAMES.get(k, k): v for k, v in result.items()}  # results stored before the record
    if not all(k in result for k in RESULT_KEYS):
        raise DamagedFile(path, f"not a result: it lacks {', '.join(k for k in RESULT_KEYS if k not in result)}")
    return result


def read_record(path: Path) -> CellRecord | None:
    """A finished cell's record: None when absent, ``DamagedFile`` when it is not one."""
    if (raw := read_result(path)) is None:
        return None
    try:
        return CellRecord.from_json(raw)
    except (HarnessError, TypeError, ValueError) as e:
        raise DamagedFile(path, " ".join(str(e).split())[:120]) from None


def intact_result(path: Path) -> dict[str, Any] | None:
    """``read_result`` for planning: a damaged result counts as absent (the runner that recomputes it
    sets it aside and says so)."""
    try:
        return read_result(path)
    except DamagedFile:
        return None


def set_aside(path: Path, why: str = "damaged") -> Path | None:
    """Rename ``path`` to ``NAME.WHY-TIME-PID`` (kept for inspection, never read again); None when
    another process moved it first."""
    aside = path.with_name(f"{path.name}.{why}-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}")
    try:
        os.replace(path, aside)
    except FileNotFoundError:
        return None
    return aside


@contextlib.contextmanager
def exclusive(folder: Path, waiting: Callable[[Path], None] | None = None, name: str = LOCK) -> Iterator[None]:
    """Hold the cross-process lock of a store folder while its work is computed.

    ``flock`` on ``FOLDER/.lock`` (filelock): the kernel drops it when its holder dies, so a killed
    process leaves no lock behind; Linux NFS clients map it to POSIX locks held by the server. Where a
    file system has no ``flock``, filelock falls back to a marker file that a waiter on the same host
    removes once its owner is dead. ``waiting`` hears when another process holds the lock; ``name``
    picks another lock of the same folder (its MLflow mirror's), so that the two never nest.
    """
    if not distributed.is_main():  # a DDP run's ranks follow rank 0, which holds the lock
        yield
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(folder / name, mode=FILE_MODE, thread_local=False)
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            if waiting is not None:
                waiting(folder)
            lock.acquire()
    except OSError as e:
        raise write_fault(e, folder / name) from None
    try:
        yield
    finally:
        lock.release()


def glob_escape(text: str) -> str:
    """``text`` matched literally by ``Path.glob``."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def give_file_mode(path: Path) -> None:
    """A file another library created in the store (a sqlite database) gets the store's one mode."""
    with contextlib.suppress(OSError):  # another user's file keeps its mode
        if path.exists() and path.stat().st_mode & 0o777 != FILE_MODE:
            os.chmod(path, FILE_MODE)


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
        """The root and every folder the store writes into, as far as they exist (a folder that does
        not exist yet is created under a root just found writable)."""
        folders = [self.root, self.bases, *(r / name for r in {self.root, self.bases} for name in WRITTEN)]
        for folder in folders:
            if folder in (self.root, self.bases) or folder.exists():
                try:
                    probe_writable(folder)
                except OSError as e:
                    reason = e.strerror or str(e)
                    raise HarnessError(f"results store folder {str(folder)!r} is not writable ({reason}); "
                                       "make it writable or pass --store a writable folder") from None

    def base_dir(self, hp: BaseHparams) -> Path:
        return self.bases / paths.BASE / paths.base_name(hp.task, hp.seed, content_hash(hp))

    def retrain_dir(self, hp: RetrainHparams) -> Path:
        return self.root / paths.RETRAIN / paths.retrain_name(hp.base.task, hp.method_label, hp.round,
                                                             content_hash(hp))

    def cell_dir(self, cell: str | os.PathLike) -> Path:
        """A retraining cell's folder from its name (a record's ``run``, ``results.csv``'s column), a
        unique beginning of it, or its path."""
        path = Path(cell)
        if path.is_dir() and (path / RESULT).exists():
            return path.resolve()
        folder = self.root / paths.RETRAIN
        if str(cell) and (folder / str(cell)).is_dir():  # a whole name, as records hold it
            return folder / str(cell)
        named = sorted(p for p in folder.glob(f"{glob_escape(str(cell))}*") if p.is_dir()) if str(cell) else []
        if len(named) == 1:
            return named[0]
        if not named:
            raise HarnessError(f"no cell {str(cell)!r} in {folder}; valid: a folder name from results.csv's "
                               "'run' column, or a unique beginning of one")
        raise HarnessError(f"{str(cell)!r} names {len(named)} cells in {folder} ({named[0].name}, "
                           f"{named[1].name}, ...); give more of the name")

    def base_progress(self, hp: BaseHparams, steps: set[int]) -> tuple[dict[str, Any] | None, set[int]]:
        """How far a base run is: its result (None while it has none, ``DamagedFile`` when damaged)
        and which of ``steps`` it holds no checkpoint of. It is done with a result and none missing."""
        folder = self.base_dir(hp)
        return read_result(folder / RESULT), missing_checkpoints(folder, steps)

    def cell_record(self, hp: RetrainHparams) -> CellRecord | None:
        """A cell's record under the schedule the cell declares (a one-shot cell and an iterative chain's
        first round share a folder): None while absent, ``DamagedFile`` when damaged."""
        record = read_record(self.retrain_dir(hp) / RESULT)
        return dataclasses.replace(record, schedule=hp.schedule) if record is not None else None

    def cell_result(self, hp: RetrainHparams) -> CellRecord | None:
        """A cell's record as planning sees it: None while absent or damaged."""
        try:
            return self.cell_record(hp)
        except DamagedFile:
            return None

    @staticmethod
    def write_hparams(folder: Path, hp: Any) -> None:
        atomic_write_json(folder / HPARAMS, canonical(hp))

    def result_files(self) -> list[Path]:
        """The ``result.json`` of every finished retraining round."""
        return sorted((self.root / paths.RETRAIN).glob(f"*/{RESULT}"))

    def results(self) -> Iterator[CellRecord]:
        """Every finished retraining round: the store's results table, one record a run."""
        for path in self.result_files():
            if (record := read_record(path)) is not None:
                yield record
