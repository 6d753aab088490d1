"""The store's layout: every folder and file name the harness writes, and the one place each is built.

    <root>/
      base/<task>-s<seed>-<hash>/        a base network: hparams.json, result.json, history.json,
                                         checkpoints/step_<N>.pt (W_g for each rewind point g), resume.pt
      retrain/<task>-<method>-r<round>-<hash>/
                                         a cell: hparams.json, result.json, history.json, weights.pt,
                                         mask.pt, mask_densities.json, speed.json, resume.pt
      studies/<name>-<hash>/             a sweep's results.csv, summary.json and figures
      tune/<study>/                      a search's trials (a store of their own, sharing base/)
      variants/<name>.json               named (method, parameters) pairs
      optuna.db                          the default Optuna storage
      mlflow.db, mlartifacts/            the default MLflow store and its artifacts

Every file that holds tensors has a ``NAME.sha256`` beside it (``harness.storage.store``), and every folder that
work writes has a ``.lock`` while it is computed. Nothing here reads or writes: ``harness.storage.store`` does.
"""

from __future__ import annotations

from pathlib import Path

# a run's folder; result.json is written last, so its presence means the run is done
RESULT, HISTORY, HPARAMS = "result.json", "history.json", "hparams.json"
WEIGHTS, MASK, RESUME = "weights.pt", "mask.pt", "resume.pt"
MASK_DENSITIES, SPEED = "mask_densities.json", "speed.json"
CHECKPOINTS = "checkpoints"  # a base run's W_g, one file per step
LOCK = ".lock"
MLFLOW_LOCK = ".mlflow.lock"  # a folder's MLflow mirror, apart from its work's lock so that the two never nest
MLFLOW_MARKER = "mlflow.json"  # which MLflow runs mirror a folder
DIGEST_SUFFIX = ".sha256"
# a study's folder
RESULTS_CSV, SUMMARY, STUDY = "results.csv", "summary.json", "study.json"

BASE, RETRAIN, STUDIES, TUNE, VARIANTS = "base", "retrain", "studies", "tune", "variants"
WRITTEN = (BASE, RETRAIN, STUDIES, TUNE, VARIANTS)  # folders a store writes into, checked before work
OPTUNA_DB, MLFLOW_DB, MLARTIFACTS = "optuna.db", "mlflow.db", "mlartifacts"
UI_LOG = "mlflow-ui.log"  # what `harness ui`'s MLflow server printed (unless --verbose)


def base_name(task: str, seed: int, content_hash: str) -> str:
    return f"{task}-s{seed}-{content_hash}"


def retrain_name(task: str, method_label: str, round_: int, content_hash: str) -> str:
    return f"{task}-{method_label}-r{round_}-{content_hash}"


def checkpoint(folder: Path, step: int) -> Path:
    return folder / CHECKPOINTS / f"step_{step:08d}.pt"


def checkpoint_step(path: Path) -> int:
    return int(path.stem.split("_")[1])


def checkpoints(folder: Path) -> list[Path]:
    return list((folder / CHECKPOINTS).glob("step_*.pt"))


def digest_of(path: Path) -> Path:
    """Where the SHA-256 of a tensor file is kept."""
    return path.with_name(path.name + DIGEST_SUFFIX)


def study(root: Path, name: str, content_hash: str) -> Path:
    return root / STUDIES / f"{name}-{content_hash}"


def tune(root: Path, study_name: str) -> Path:
    return root / TUNE / study_name


def variants(root: Path) -> Path:
    return root / VARIANTS


def variant(root: Path, name: str) -> Path:
    return variants(root) / f"{name}.json"


def optuna_db(root: Path) -> Path:
    return root / OPTUNA_DB


def mlflow_db(root: Path) -> Path:
    return root / MLFLOW_DB


def mlflow_db_lock(db: Path) -> str:
    """The lock under which one process creates a new sqlite MLflow database (beside it)."""
    return f".{db.name}.lock"


def ui_log(root: Path) -> Path:
    return root / UI_LOG


def mlartifacts(root: Path, experiment: str | None = None) -> Path:
    return root / MLARTIFACTS / experiment if experiment else root / MLARTIFACTS

