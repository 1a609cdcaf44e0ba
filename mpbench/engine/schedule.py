"""Pure learning-rate schedule helpers (nanoGPT's get_lr, generalised)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def lr_factor(
    step: int,
    *,
    total: int,
    warmup: int,
    schedule: str,
    milestones: Sequence[float] = (),
    gamma: float = 0.1,
) -> float:
    """Multiplier of the base learning rate at optimiser step ``step`` (0-based).

    Linear warm-up over ``warmup`` steps, then ``cosine`` decay to zero at ``total``, ``step``
    decay by ``gamma`` at each milestone fraction of ``total``, or ``constant``.
    """
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        span = max(1, total - warmup)
        progress = min(1.0, (step - warmup) / span)
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    if schedule == "step":
        return gamma ** sum(step >= m * total for m in milestones)
    raise ValueError(f"unknown schedule {schedule!r}; expected 'cosine', 'step' or 'constant'")
