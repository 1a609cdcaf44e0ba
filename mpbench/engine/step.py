"""One training step, the same for a trial, ``mpbench bench step`` and the dry run's cost probe,
and the one timer both measure it with."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def grad_scaler(amp: str, device: torch.device) -> torch.amp.GradScaler:
    """The loss scaler of ``amp``: active for fp16 only (bf16 and fp32 need none)."""
    return torch.amp.GradScaler(device.type, enabled=amp == "fp16")


def train_step(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    autocast: Callable[[], Any],
    label_smoothing: float = 0.0,
    grad_clip: float | None = None,
) -> Tensor:
    """Forward under ``autocast``, cross-entropy plus the prompt's regulariser (TAV), backward
    and one optimiser step through ``scaler``; returns the detached (ce, reg) pair, on device.

    ``x`` is B x 3 x (T+1) x H x W, ``y`` B class indices. The losses are computed in fp32 from
    the (possibly bf16/fp16) logits; ``grad_clip`` clips the unscaled gradient norm.
    """
    with autocast():
        out = model(x)
    ce = F.cross_entropy(out.logits.float(), y, label_smoothing=label_smoothing)
    reg = out.reg_loss.float()
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(ce + reg).backward()
    if grad_clip is not None:
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    scaler.step(optimizer)
    scaler.update()
    return torch.stack([ce.detach(), reg.detach()])


def timed(fn: Callable[[], object]) -> float:
    """Seconds one call of ``fn`` takes, by ``torch.utils.benchmark.Timer``: the accelerator
    synchronised around it, this process's thread count kept, after the Timer's two untimed
    warm-up calls of the same ``fn`` (so each timed call is warm, whatever ran before it)."""
    from torch.utils.benchmark import Timer

    timer = Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    return float(timer.timeit(number=1).median)
