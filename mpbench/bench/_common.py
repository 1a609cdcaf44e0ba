"""What every benchmark shares: the device choice and a CUDA-synchronised timer."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from mpbench._device import resolve_device

__all__ = ["resolve_device", "timed"]


def timed(fn: Callable[[], object], device: torch.device) -> float:
    """Seconds one call of ``fn`` takes, with CUDA synchronised before and after."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start
