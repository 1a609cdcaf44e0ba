"""A small name -> entry registry (the timm pattern): a decorator, ``get`` and ``names``."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one kind (backbones, variants, datasets, power normalisations).

    Args:
        kind: what the entries are, used in error messages ("backbone", "variant", ...).

    Example:
        >>> reg = Registry[int]("number")
        >>> reg.add("one", 1)
        >>> reg.get("one")
        1
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T) -> None:
        """Register ``entry`` under ``name``; a duplicate name is a ValueError."""
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = entry

    def register(self, name: str | None = None) -> Callable[[T], T]:
        """Decorator form of :meth:`add`; the name defaults to the function's ``__name__``."""

        def deco(entry: T) -> T:
            self.add(name or entry.__name__, entry)  # type: ignore[attr-defined]
            return entry

        return deco

    def get(self, name: str) -> T:
        """The entry called ``name``; an unknown name is a ValueError listing close matches."""
        try:
            return self._entries[name]
        except KeyError:
            raise ValueError(unknown_name_message(self.kind, name, self.names())) from None

    def names(self) -> list[str]:
        """Registered names in registration order."""
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """``"did you mean 'a', 'b'?"`` for up to three names in ``known`` close to ``name``, or ``""``.

    Example:
        >>> did_you_mean("x3d_q", ["x3d_xs", "x3d_s", "mvit"])
        "did you mean 'x3d_s', 'x3d_xs'?"
    """
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
    return f"did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def unknown_name_message(kind: str, name: str, known: list[str]) -> str:
    """Error text for an unknown name: the close matches first, then every known name."""
    hint = did_you_mean(name, known)
    hint = f" {hint[:1].upper()}{hint[1:]}" if hint else ""
    return f"unknown {kind} {name!r}.{hint} Known: {', '.join(known)}"
