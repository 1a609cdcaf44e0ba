"""Processes and signals, one helper each: whether a pid runs here, and signals that raise.

A zombie (exited, not yet reaped by its parent) is not alive: it runs nothing and holds no trial.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator, Mapping


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except (OSError, IndexError):  # no /proc (not Linux): ask the kernel
        return _signal_zero(pid)


def _signal_zero(pid: int) -> bool:
    """Whether ``os.kill(pid, 0)`` finds the process (one of another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def raising_signals(signals: Mapping[int, type[BaseException]]) -> Iterator[None]:
    """Within: each signal of ``signals`` raises its exception in this process (not in a forked
    child, e.g. a data loader worker: the parent handles it). From the first one on, the others
    are ignored, so that a second signal cannot cut the give-back short, and outages are waited
    out only briefly (:func:`mpbench.outage.stopping`); afterwards the old handlers and the
    full outage patience are back."""
    from mpbench.outage import resume, stopping

    main = os.getpid()
    old = {s: signal.getsignal(s) for s in signals}

    def handler(signum: int, frame: object) -> None:
        if os.getpid() != main:
            return
        for s in signals:
            signal.signal(s, signal.SIG_IGN)
        stopping()
        raise signals[signum](f"signal {signal.Signals(signum).name}")

    for s in signals:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        resume()


__all__ = ["pid_alive", "raising_signals"]
