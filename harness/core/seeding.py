"""Seeds derived from (seed, purpose, ...) so that independent random streams never collide."""

from __future__ import annotations

import hashlib

MAX_SEED = 2**32 - 1  # the largest seed a run, study or table takes (what numpy's generators accept)


def derive_seed(seed: int, *purpose: object) -> int:
    text = repr((seed, *purpose)).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little") & (2**63 - 1)
