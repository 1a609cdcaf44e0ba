"""What every benchmark shares: the device choice and one timed call (torch's benchmark Timer)."""

from __future__ import annotations

from mpbench._device import resolve_device
from mpbench.engine.step import timed

__all__ = ["resolve_device", "timed"]
