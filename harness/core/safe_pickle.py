"""Loading pickled data files without running their code: an unpickler that resolves only the few
numpy names an array needs. Anything else a pickle asks for (``os.system``, ``builtins.eval``...)
is refused before it can be called."""

from __future__ import annotations

import pickle
from typing import IO, Any

ALLOWED = frozenset({
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 spell bytes
})


class ForbiddenGlobal(pickle.UnpicklingError):
    """The pickle names something other than a numpy array's parts."""


class ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED:
            raise ForbiddenGlobal(f"the pickle asks for {module}.{name}, which a data file never needs")
        return super().find_class(module, name)


def load(file: IO[bytes], encoding: str = "ASCII") -> Any:
    return ArrayUnpickler(file, encoding=encoding).load()
