"""Make ``transformers`` importable next to a torchaudio build that does not load with the CPU torch.

fairseq-fixed pulls torchaudio 2.11.0, whose extension fails next to torch 2.13.0 (CPU); transformers
imports torchaudio whenever it is installed, and then ``from transformers import LlamaForCausalLM``
fails. When transformers' ``import_utils`` is first imported, and only if torchaudio really fails to
load, it is told that torchaudio is unavailable. Nothing is imported before someone imports
transformers: installing the hook costs nothing at ``import harness``.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType
from typing import Any

TARGET = "transformers.utils.import_utils"


def torchaudio_loads() -> bool:
    if importlib.util.find_spec("torchaudio") is None:
        return True  # not installed: transformers will not try it
    try:
        import torchaudio  # noqa: F401
    except Exception:  # an extension built for another torch fails in several ways (OSError, RuntimeError)
        sys.modules.pop("torchaudio", None)
        return False
    return True


def _disable_torchaudio(module: ModuleType) -> None:
    if not torchaudio_loads():
        unavailable = lambda: False  # noqa: E731
        module.is_torchaudio_available = unavailable  # re-exported as transformers.utils.is_torchaudio_available


class _AfterImport(importlib.abc.MetaPathFinder):
    """Finds ``transformers.utils.import_utils`` as the other finders do, and patches it once executed."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if name != TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return None
        loader = spec.loader
        original = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            original(module)
            _disable_torchaudio(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def install() -> None:
    if TARGET in sys.modules:
        _disable_torchaudio(sys.modules[TARGET])
    elif not any(isinstance(f, _AfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport())
