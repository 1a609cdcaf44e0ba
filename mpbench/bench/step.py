"""Time one training step of a backbone with the motion prompt layer against the same backbone
without it (the ``baseline`` variant, which feeds the same T frames), side by side in one run.

Both models are built from one seed, get the same batch, and are timed in alternating order
(ABBA...) so that drift in the machine's speed falls on both; the medians are compared.
"""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mpbench._conventions import BASELINE
from mpbench.bench._common import resolve_device, timed
from mpbench.config import Amp, Device, Size
from mpbench.engine.build import autocast_factory
from mpbench.engine.step import grad_scaler, train_step
from mpbench.models import PromptedVideoModel, build_model, get_backbone

PROMPT_VARIANT = "learnable_tav"


@dataclass(frozen=True)
class StepTiming:
    """Median seconds of one training step with and without the prompt layer.

    Args:
        backbone: the backbone's registry name.
        device: "cpu" or "cuda".
        size: "tiny" or "full".
        batch: clips per step.
        frames: T, the frames the backbone sees (the input has T + 1).
        crop: frame height and width.
        amp: autocast dtype ("none", "bf16", "fp16").
        prompt_s: median step time with ``learnable_tav``.
        baseline_s: median step time with ``baseline`` (no prompt, same T frames).
        repeats: timed steps per model.
        prompt_min_s: fastest step with the prompt (less sensitive to a busy machine).
        baseline_min_s: fastest step without it.

    Example:
        >>> t = StepTiming("x3d_xs", "cpu", "tiny", 8, 8, 64, "none", 0.0105, 0.0100, 5)
        >>> round(t.overhead, 3)
        0.05
    """

    backbone: str
    device: str
    size: str
    batch: int
    frames: int
    crop: int
    amp: str
    prompt_s: float
    baseline_s: float
    repeats: int
    prompt_min_s: float = math.nan
    baseline_min_s: float = math.nan

    @property
    def overhead(self) -> float:
        """Relative extra time of the prompted step: prompt / baseline - 1."""
        return self.prompt_s / self.baseline_s - 1.0


def make_step(model: PromptedVideoModel, x: Tensor, y: Tensor, *, amp: Amp) -> Callable[[], Tensor]:
    """The trial's training step (:func:`mpbench.engine.step.train_step`) with SGD on one fixed
    batch, as a closure returning the (ce, reg) losses."""
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    return functools.partial(
        train_step,
        model,
        x,
        y,
        optimizer=opt,
        scaler=grad_scaler(amp, x.device),
        autocast=autocast_factory(amp, x.device),
    )


def _build_pair(
    backbone: str, *, size: Size, frames: int, crop: int, device: torch.device, **kwargs: object
) -> tuple[nn.Module, nn.Module]:
    models = []
    for variant in (PROMPT_VARIANT, BASELINE):
        torch.manual_seed(0)  # the same backbone weights in both
        model = build_model(
            backbone, variant=variant, num_classes=10, frames=frames, crop=crop, size=size, **kwargs
        )
        models.append(model.to(device).train())
    return models[0], models[1]


def time_training_step(
    *,
    backbone: str,
    device: Device = "auto",
    size: Size | None = None,
    batch: int = 8,
    repeats: int = 10,
    warmup: int = 2,
    amp: Amp = "none",
    frames: int | None = None,
    crop: int | None = None,
    on_repeat: Callable[[], None] | None = None,
) -> StepTiming:
    """Median training-step time of ``backbone`` with the prompt layer and without it.

    ``size`` defaults to "full" (the backbone's standard input) on CUDA and "tiny" on CPU;
    ``frames``/``crop`` default to that size's standard input. ``on_repeat`` is called after
    each timed pair (for a progress bar).
    """
    for what, value, low in (("batch", batch, 1), ("repeats", repeats, 1), ("warmup", warmup, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{what} must be an int >= {low}; got {value!r}")
    if amp not in ("none", "bf16", "fp16"):
        raise ValueError(f"amp={amp!r} is not one of 'none', 'bf16', 'fp16'")
    dev = resolve_device(device)
    size = size or ("full" if dev.type == "cuda" else "tiny")
    info = get_backbone(backbone).info
    if size not in info.defaults:
        raise ValueError(f"size={size!r} is not one of {list(info.defaults)}")
    frames = frames or info.defaults[size][0]
    crop = crop or info.defaults[size][1]
    prompted, baseline = _build_pair(backbone, size=size, frames=frames, crop=crop, device=dev)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, frames + 1, crop, crop, generator=gen).to(dev)
    y = torch.randint(0, 10, (batch,), generator=gen).to(dev)
    steps = {name: make_step(m, x, y, amp=amp) for name, m in (("p", prompted), ("b", baseline))}
    times: dict[str, list[float]] = {"p": [], "b": []}
    for _ in range(warmup):
        for step in steps.values():
            step()
    for r in range(repeats):
        for name in ("p", "b") if r % 2 == 0 else ("b", "p"):  # ABBA: drift hits both
            times[name].append(timed(steps[name]))
        if on_repeat is not None:
            on_repeat()
    return StepTiming(
        backbone=backbone,
        device=dev.type,
        size=size,
        batch=batch,
        frames=frames,
        crop=crop,
        amp=amp,
        prompt_s=statistics.median(times["p"]),
        baseline_s=statistics.median(times["b"]),
        repeats=repeats,
        prompt_min_s=min(times["p"]),
        baseline_min_s=min(times["b"]),
    )
