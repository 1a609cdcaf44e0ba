"""Pure learning-rate schedule helpers (nanoGPT's get_lr, generalised)."""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import Any

from mpbench._fields import same_named


def lr_factor(
    step: int,
    *,
    total: int,
    warmup: int,
    schedule: str,
    milestones: Sequence[float] = (),
    gamma: float = 0.1,
    epoch_starts: Sequence[float] = (),
    factors: Sequence[float] = (),
    steps_per_epoch: int = 1,
) -> float:
    """Multiplier of the base learning rate at optimiser step ``step`` (0-based).

    Linear warm-up over ``warmup`` steps, then ``cosine`` decay to zero at ``total``, ``step``
    decay by ``gamma`` at each milestone fraction of ``total``, ``epoch_steps`` (``factors[i]``
    from epoch ``epoch_starts[i]`` on, at fractional epochs ``step / steps_per_epoch``: PySlowFast's
    steps_with_relative_lrs), or ``constant``.
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
    if schedule == "epoch_steps":
        index = bisect.bisect_right(list(epoch_starts), step / steps_per_epoch) - 1
        return factors[max(0, index)]
    raise ValueError(
        f"unknown schedule {schedule!r}; expected 'cosine', 'step', 'epoch_steps' or 'constant'"
    )


# lr_factor's arguments -> the TrialConfig fields that set them
_SCHEDULE_FIELDS = {
    "milestones": "step_milestones",
    "gamma": "step_gamma",
    "epoch_starts": "step_epochs",
    "factors": "step_lrs",
}


def trial_lr_factor(config: Any, step: int, *, steps_per_epoch: int) -> float:
    """:func:`lr_factor` of a TrialConfig's schedule at ``step``."""
    return lr_factor(
        step,
        total=steps_per_epoch * config.epochs,
        warmup=round(config.warmup_epochs * steps_per_epoch),
        steps_per_epoch=steps_per_epoch,
        **same_named(config, "schedule", **_SCHEDULE_FIELDS),
    )
