"""Stable names for the functions a task is made of: its data loader, its loss and its rule for which
weights are prunable. A base network's identity (``harness.core.identity``) hashes these names, so moving or
renaming the code that defines a function leaves every stored folder's name as it was.

Built-in functions declare the names they had as qualified names when identity was first recorded
(``tasks.mnist1d.load``): they are labels now, not locations. A function that declares nothing (a
plugin's, written before names could be declared) is named by where it lives, as before, and so
keeps its folders until it moves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])
ATTRIBUTE = "__identity_name__"


def identified_as(name: str) -> Callable[[F], F]:
    """Declare the name under which ``fn`` enters a base network's identity."""
    def declare(fn: F) -> F:
        setattr(fn, ATTRIBUTE, name)
        return fn

    return declare


def identity_name(fn: Any) -> str | None:
    """The declared name of ``fn`` (a partial: its function's, with the arguments bound)."""
    if fn is None:
        return None
    if hasattr(fn, "func"):  # functools.partial: the function and its arguments
        return f"{identity_name(fn.func)}{fn.args!r}{sorted(fn.keywords.items())!r}"
    declared = getattr(fn, ATTRIBUTE, None)
    if declared is not None:
        return declared
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
