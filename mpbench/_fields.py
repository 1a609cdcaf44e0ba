"""Attributes handed on by name: a config's fields passed as keyword arguments of a call."""

from __future__ import annotations

from typing import Any


def same_named(source: object, *names: str, **renamed: str) -> dict[str, Any]:
    """``{name: source.name}`` for each of ``names``, and ``{arg: source.attr}`` for each
    ``arg=attr`` of ``renamed`` (the attribute ``attr`` passed as the keyword argument ``arg``).

    Example:
        >>> from types import SimpleNamespace
        >>> same_named(SimpleNamespace(a=1, step_b=2), "a", b="step_b")
        {'a': 1, 'b': 2}
    """
    out = {name: getattr(source, name) for name in names}
    return out | {arg: getattr(source, attr) for arg, attr in renamed.items()}
