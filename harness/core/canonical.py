"""Hyperparameters as JSON in one canonical form, and the short digests that name store folders.

Only non-default values are hashed (as open_lth does), so a new option with a default never
invalidates results computed before it existed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any


def canonical(value: Any) -> Any:
    """A JSON-ready form in which equal hyperparameters always serialize identically."""
    if hasattr(value, "identity"):
        return value.identity()
    if dataclasses.is_dataclass(value):
        return non_defaults(value)
    if isinstance(value, float):
        return float(f"{value:.10g}")
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in sorted(value.items())}
    return value


def non_defaults(value: Any) -> dict[str, Any]:
    """A dataclass's fields that differ from their defaults, canonical."""
    return {f.name: canonical(getattr(value, f.name)) for f in dataclasses.fields(value)
            if f.default is dataclasses.MISSING or getattr(value, f.name) != f.default}


def short_digest(value: Any, default: Any = None) -> str:
    """The first 12 hex digits of the SHA-256 of ``value`` as compact, key-sorted JSON: every name and
    fingerprint the store uses."""
    text = json.dumps(value, sort_keys=True, default=default, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def content_hash(value: Any) -> str:
    return short_digest(canonical(value))


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """All fields (defaults included, but for a field declared ``identity: when not default`` that holds its
    default) as flat ``a.b`` keys, for fingerprints, MLflow params and tables."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(value):
        v = getattr(value, f.name)
        if f.metadata.get("identity") == "when not default" and v == f.default:
            continue
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(v):
            out.update(flatten(v, key + "."))
        elif isinstance(v, tuple):
            out[key] = ",".join(f"{x:.6g}" if isinstance(x, float) else str(x) for x in v)
        else:
            out[key] = v
    return out
