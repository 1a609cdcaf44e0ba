"""Credentials kept out of messages: the one place that masks ``scheme://user:password@host``.

A leaf (standard library only), so that every floor, from the outage retries up to the CLI, can
mask what it prints without importing the study package.
"""

from __future__ import annotations

import re

_CREDENTIALS = re.compile(
    r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:)(?P<pw>[^\s/]*)(?=@[^\s@/]*(?:[/?\s]|$))"
)


def mask_url(text: str) -> str:
    """``text`` (a URL or any message) with the password of every ``scheme://user:password@host``
    URL replaced by ``***``.

        >>> mask_url("postgresql+psycopg2://u:secret@db:5432/x")
        'postgresql+psycopg2://u:***@db:5432/x'
        >>> mask_url("runs/demo/optuna.journal")
        'runs/demo/optuna.journal'
    """
    return _CREDENTIALS.sub(lambda m: m["head"] + "***", str(text))


def has_password(url: str) -> bool:
    """Whether ``url`` carries a password (a ``scheme://user:password@host`` URL)."""
    return mask_url(url) != url


__all__ = ["has_password", "mask_url"]
