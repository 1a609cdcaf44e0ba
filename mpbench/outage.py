"""Waiting out outages of the services a study depends on: the Optuna storage and MLflow.

A PostgreSQL restart, an sqlite store locked by another writer, an NFS hiccup or an unreachable
tracking server are *transient*: the call is retried with exponential backoff (0.5 s doubling to
15 s, with jitter) for at most the outage timeout, ``MPBENCH_OUTAGE_TIMEOUT`` seconds (default
300; a study sets it with ``[execution] outage_timeout``). An error that outlasts it becomes
:class:`OutageError`, which the worker treats as an infrastructure failure: the cell goes back
to the queue as a retry, it is not a failure of the config. Anything else (a duplicate name, a
finished trial, bad data) is raised at once.

:func:`call` wraps one call (MLflow: :class:`Retrying`); ``mpbench.study.retrying.RetryingStorage``
wraps an Optuna storage.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import gc
import logging
import os
import random
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from mpbench._env import scoped_env

log = logging.getLogger("mpbench.outage")

TIMEOUT_ENV = "MPBENCH_OUTAGE_TIMEOUT"
DEFAULT_TIMEOUT = 300.0
ERROR_LINE_CHARS = 300  # one line of an error in a message or a table, cut to this
R = TypeVar("R")

# message parts of errors that say the service is away, not that the request is wrong
_TRANSIENT_TEXT = (
    "database is locked",
    "database table is locked",
    "server closed the connection",
    "connection refused",
    "could not connect to server",
    "connection to server",
    "terminating connection",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "connection reset",
    "connection already closed",
    "ssl syscall error",
    "max retries exceeded",
    "temporarily unavailable",
    "timed out",
)
# ... and parts that make the same exception classes a configuration error
_PERMANENT_TEXT = ("does not exist", "no such table", "authentication failed", "syntax error")
_TRANSIENT_ERRNO = {errno.ESTALE, errno.EIO, errno.EAGAIN, errno.ETIMEDOUT, errno.ENOLCK}


class OutageError(RuntimeError):
    """A service stayed unreachable for longer than the outage timeout."""

    trial_status = "interrupted"  # tracking.TrialStatus: the cell runs again, not a failure


STOPPING_TIMEOUT = 10.0
_stop_deadline: float | None = None


def stopping() -> None:
    """This process was told to stop (Ctrl-C, SIGTERM, preemption): from now on outages are
    waited out until ``STOPPING_TIMEOUT`` s after this call, in all, so that the cleanup (giving
    the trial back, ending its MLflow run) is over well before the grid parent's patience (60 s)
    or the scheduler's kill runs out; what it could not do, the parent or the reaper does."""
    global _stop_deadline
    if _stop_deadline is None:
        _stop_deadline = time.monotonic() + STOPPING_TIMEOUT


def resume() -> None:
    """Undo :func:`stopping` (the signal handlers that call it are being removed: the process
    goes on, e.g. a notebook after a Ctrl-C of a study)."""
    global _stop_deadline
    _stop_deadline = None


def is_stopping() -> bool:
    """Whether :func:`stopping` was called in this process."""
    return _stop_deadline is not None


def timeout_seconds() -> float:
    """The outage timeout: ``MPBENCH_OUTAGE_TIMEOUT`` seconds, else 300."""
    try:
        seconds = max(0.0, float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT)))
    except ValueError:
        seconds = DEFAULT_TIMEOUT
    return seconds


def scoped_timeout(seconds: float) -> contextlib.AbstractContextManager[None]:
    """Within: the outage timeout is ``seconds`` for this process and the processes it starts,
    unless ``MPBENCH_OUTAGE_TIMEOUT`` was already set (the user's value wins); afterwards the
    environment is as it was (a study run in a test or a notebook leaves nothing behind)."""
    return scoped_env(TIMEOUT_ENV, str(seconds))


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        yield e
        e = e.__cause__ or e.__context__


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` (or an error it was raised from) says a service is briefly away."""
    if isinstance(exc, OutageError):
        return False
    for e in _chain(exc):
        text = str(e).lower()
        if any(part in text for part in _PERMANENT_TEXT):
            return False
        if isinstance(e, ConnectionError | TimeoutError):
            return True
        if isinstance(e, OSError) and e.errno in _TRANSIENT_ERRNO:
            return True
        module = type(e).__module__.split(".")[0]
        name = type(e).__name__
        if module in ("sqlalchemy", "psycopg2", "psycopg") and name in (
            "OperationalError",
            "InterfaceError",
            "DisconnectionError",
        ):
            return True
        if module in ("requests", "urllib3") and ("Connection" in name or "MaxRetry" in name):
            return True
        if any(part in text for part in _TRANSIENT_TEXT):
            return True
    return False


def call(
    fn: Callable[..., R],
    *args: Any,
    what: str,
    timeout: float | None = None,
    **kwargs: Any,
) -> R:
    """``fn(*args, **kwargs)``, retried while it fails with a transient error, for at most
    ``timeout`` seconds (default :func:`timeout_seconds`); then :class:`OutageError`."""
    limit = timeout_seconds() if timeout is None else timeout
    if _stop_deadline is not None:
        limit = min(limit, max(0.0, _stop_deadline - time.monotonic()))
    start = time.monotonic()
    delay, attempt = 0.5, 0
    while True:
        try:
            return fn(*args, **kwargs)
        except KeyboardInterrupt as exc:
            release_interrupted(exc)
            raise
        except Exception as exc:
            if not is_transient(exc):
                raise
            waited = time.monotonic() - start
            if waited >= limit:
                raise OutageError(
                    f"{what}: still failing after {waited:.0f} s (outage timeout {limit:.0f} s; "
                    f"{TIMEOUT_ENV} or [execution] outage_timeout): {type(exc).__name__}: "
                    f"{_first_line(exc)}"
                ) from exc
            attempt += 1
            if attempt == 1 or attempt % 10 == 0:
                log.warning(
                    "%s failed (%s: %s); retrying for up to %.0f s",
                    what,
                    type(exc).__name__,
                    _first_line(exc),
                    limit - waited,
                )
            time.sleep(min(delay * random.uniform(0.8, 1.2), max(0.0, limit - waited)))
            delay = min(delay * 2, 15.0)


def release_interrupted(exc: BaseException) -> None:
    """Free what the call that ``exc`` interrupted still holds. A Ctrl-C inside a database call
    can leave its transaction open, referenced only by the frames of the traceback, until the
    exception is gone; with an sqlite MLflow store that is the write lock of the whole store,
    so the cleanup that follows (ending the run, by this very process) waited "database is
    locked" until it was killed (about 1 interrupt in 10 of a logging loop). Clearing the
    finished frames and collecting returns the connection to its pool, rolled back, now."""
    traceback.clear_frames(exc.__traceback__)
    gc.collect()


def _first_line(exc: BaseException) -> str:
    from mpbench._secrets import mask_url

    lines = str(exc).strip().splitlines()
    return mask_url(lines[0][:ERROR_LINE_CHARS]) if lines else ""


class Retrying:
    """A client (MLflow's ``MlflowClient``) whose method calls wait out outages (:func:`call`).

    Example:
        >>> client = Retrying(MlflowClient(uri), what="MLflow")  # doctest: +SKIP
    """

    def __init__(self, inner: Any, *, what: str, timeout: float | None = None) -> None:
        self.inner, self.what, self.timeout = inner, what, timeout

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr
        return functools.partial(call, attr, what=f"{self.what} ({name})", timeout=self.timeout)
