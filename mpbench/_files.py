"""One loader for TOML files validated by a pydantic model (trial configs, study files).

Every error names the file and the key path: ``study.toml: [base -> epoch] unknown key 'epoch';
did you mean 'epochs'? (allowed: ...)``, one line per problem.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from mpbench._registry import did_you_mean

M = TypeVar("M", bound=BaseModel)
# loc -> the keys allowed where an unknown key ``loc[-1]`` was found (for "did you mean")
KnownKeys = Callable[[list[str]], Iterable[str]]
# pydantic's names for validator steps and union tags: not keys of the file
_INTERNAL_LOC = ("function-after", "tagged")


def unknown_message(what: str, name: str, known: Iterable[str]) -> str:
    """``unknown X; did you mean 'y'? (allowed: ...)``."""
    known = list(known)
    hint = did_you_mean(name, known)
    allowed = f" (allowed: {', '.join(known)})" if known else ""
    return f"unknown {what}{'; ' + hint if hint else ''}{allowed}"


def format_validation_error(
    exc: ValidationError,
    source: str,
    *,
    prefix: tuple[str, ...] = (),
    known_keys: KnownKeys | None = None,
) -> str:
    """One line per pydantic error: ``source: [a -> b] message (got value)``.

    ``prefix`` is the key path of the validated table inside the file; ``known_keys`` lists the
    allowed keys at a path, so that an unknown key gets the close matches.
    """
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"] if not str(p).startswith(_INTERNAL_LOC)]
        loc = [*prefix, *(p for p in loc if p not in prefix)]
        where = f"[{' -> '.join(loc)}] " if loc else ""
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = unknown_message(
                f"key {loc[-1]!r}", loc[-1], known_keys(loc) if known_keys else []
            )
        got = "" if err["type"] in ("missing", "extra_forbidden") else f" (got {err['input']!r})"
        lines.append(f"{source}: {where}{msg}{got}")
    return "\n".join(lines)


def validate(
    model: type[M],
    data: Any,
    *,
    source: str,
    error: type[ValueError] = ValueError,
    known_keys: KnownKeys | None = None,
) -> M:
    """``model`` validated from ``data``; the errors become one ``error`` naming ``source``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(format_validation_error(exc, source, known_keys=known_keys)) from None


def read_toml(path: Path, *, what: str, error: type[ValueError] = ValueError) -> dict[str, Any]:
    """The table of the TOML file ``path`` (``what`` names it when the file is missing)."""
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: invalid TOML: {exc}") from None


def load_toml_model(
    path: str | Path,
    model: type[M],
    *,
    what: str,
    error: type[ValueError] = ValueError,
    table: str | None = None,
    updates: Mapping[str, Any] | None = None,
    known_keys: KnownKeys | None = None,
) -> M:
    """Read the TOML file ``path`` and validate it as ``model``; errors name the file and key.

    ``table`` picks a table of the file when present (``[trial]``); ``updates`` override keys.

    Example:
        >>> from mpbench.config import TrialConfig
        >>> load_toml_model("t.toml", TrialConfig, what="trial config file")  # doctest: +SKIP
    """
    path = Path(path)
    data = read_toml(path, what=what, error=error)
    if table is not None:
        data = data.get(table, data)
    data = {**data, **(updates or {})}
    return validate(model, data, source=str(path), error=error, known_keys=known_keys)
