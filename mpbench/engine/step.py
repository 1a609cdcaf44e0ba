"""One training step, the same for a trial, ``mpbench bench step`` and the dry run's cost probe,
and the one timer both measure it with."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mpbench import tracking as tk


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


def synced_clock(device: torch.device) -> float:
    """``time.perf_counter()`` once the work queued on ``device`` is done (CUDA synchronised)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


class LoopClock:
    """Splits a training loop's wall time into loader wait and step time.

    ``lap("data")`` when a batch is on the device, ``lap("step")`` when its step is done: each
    adds the time since the previous lap. On CUDA a lap synchronises first, so that kernels
    still queued count as step time, not as wait; on CPU it is one ``perf_counter`` call.

    Args:
        device: the device the loop trains on.

    Example:
        >>> clock = LoopClock(torch.device("cpu"))
        >>> clock.lap("data"); clock.lap("step"); sorted(clock.seconds)
        ['data', 'step']
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.seconds = {"data": 0.0, "step": 0.0}
        self._last = synced_clock(device)

    def lap(self, kind: str) -> None:
        """Add the time since the previous lap (or the start) to ``kind`` ("data" or "step")."""
        now = synced_clock(self.device)
        self.seconds[kind] += now - self._last
        self._last = now

    @property
    def total(self) -> float:
        """Seconds of both kinds."""
        return self.seconds["data"] + self.seconds["step"]


def wait_share(data_s: float, step_s: float) -> float:
    """The loader's share of the loop, data / (data + step); 0 for an empty loop."""
    total = data_s + step_s
    return data_s / total if total > 0 else 0.0


def trial_rates(history: Sequence[dict[str, float]]) -> dict[str, float]:
    """``data_wait_share`` and ``clips_per_s`` over all epochs of ``history`` that timed their
    loop (wait and step seconds summed; clips/s weighted by each epoch's loop time)."""
    epochs = [h for h in history if tk.M_STEP_SECONDS in h and tk.M_DATA_WAIT_SECONDS in h]
    data = sum(h[tk.M_DATA_WAIT_SECONDS] for h in epochs)
    step = sum(h[tk.M_STEP_SECONDS] for h in epochs)
    if not epochs or data + step <= 0:
        return {}
    loop = [h[tk.M_DATA_WAIT_SECONDS] + h[tk.M_STEP_SECONDS] for h in epochs]
    clips = sum(h[tk.M_CLIPS_PER_S] * s for h, s in zip(epochs, loop, strict=True))
    return {tk.M_DATA_WAIT_SHARE: wait_share(data, step), tk.M_CLIPS_PER_S: clips / (data + step)}
