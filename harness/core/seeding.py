"""Seeds derived from (seed, purpose, ...) so that independent random streams never collide."""

from __future__ import annotations

import hashlib


def derive_seed(seed: int, *purpose: object) -> int:
    text = repr((seed, *purpose)).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little") & (2**63 - 1)
