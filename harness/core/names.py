"""Names a user types: the registered one whatever its case (where only one matches), and for a name
that matches none, the closest valid one, offered in the same error line."""

from __future__ import annotations

import difflib
from collections.abc import Sequence


def canonical(name: str, valid: Sequence[str]) -> str | None:
    """``name`` as registered: itself, or the one valid name equal to it but for case."""
    if name in valid:
        return name
    same = [v for v in valid if v.casefold() == str(name).casefold()]
    return same[0] if len(same) == 1 else None


def closest(name: object, valid: Sequence[str]) -> str | None:
    """The valid name nearest to ``name`` (difflib's ratio, case aside), if any is near enough."""
    if not isinstance(name, str) or not name:
        return None
    folded = {v.casefold(): v for v in valid}
    match = difflib.get_close_matches(name.casefold(), list(folded), n=1, cutoff=0.6)
    if not match:  # a prefix of one name only ("lr-rewind") is as good a hint
        match = [v for v in folded if v.startswith(name.casefold())][:1] if len(name) >= 3 else []
    return folded[match[0]] if match else None


def did_you_mean(name: object, valid: Sequence[str]) -> str:
    """``"; did you mean 'x'?"`` for the end of an error line, or nothing."""
    near = closest(name, valid)
    return f"; did you mean {near!r}?" if near is not None and near != name else ""


def unknown(what: str, name: object, valid: Sequence[str]) -> str:
    return f"unknown {what} {name!r}; valid: {', '.join(map(str, valid))}{did_you_mean(name, valid)}"
