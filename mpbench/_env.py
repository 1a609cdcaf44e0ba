"""Environment variables set for a while, as some libraries and child processes read them."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


@contextlib.contextmanager
def scoped_env(name: str, value: str, *, override: bool = False) -> Iterator[None]:
    """Within: ``os.environ[name] = value`` unless the user already set it (their value wins,
    unless ``override``); afterwards the environment is as it was (a test or a notebook keeps
    nothing of it).

    Example:
        >>> with scoped_env("MPBENCH_EXAMPLE", "1"):
        ...     os.environ["MPBENCH_EXAMPLE"]
        '1'
        >>> "MPBENCH_EXAMPLE" in os.environ
        False
    """
    before = os.environ.get(name)
    if before is not None and not override:
        yield
        return
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before
