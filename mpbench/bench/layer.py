"""``mpbench bench layer``: forward+backward time of MotionPrompt against the reference formulation.

The reference is the same maths written the way the authors' ``vmps.py`` does it: permute to
B x T x C x H x W, un-normalise, grey by ``einsum`` over the channel weights, the sigmoid as an
explicit ``1 / (1 + exp(...))``, the attention ``.repeat`` over the 3 channels, and the TAV as an
explicit sum divided by the element count. Both run in the same process on the same input with the
same m, n, interleaved repeat by repeat; each step is ``(prompts.sum() + reg_loss).backward()``
with the input not requiring grad and m, n learnable.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mpbench._pixels import GREY_WEIGHTS, MEAN, STD
from mpbench.bench._common import resolve_device, timed
from mpbench.config import Device
from mpbench.prompt import MotionPrompt, PromptOutput


class ReferencePrompt(nn.Module):
    """The layer written as the reference code writes it (BCTHW input, RGB, scalar m, n).

    Args:
        m: initial m (slope parameter).
        n: initial n (shift parameter).
        tav_weight: lambda of the TAV regulariser.

    Example:
        >>> ref = ReferencePrompt(m=1.05, n=-2.67, tav_weight=1.0)
        >>> ref(torch.randn(1, 3, 4, 8, 8)).prompts.shape
        torch.Size([1, 3, 3, 8, 8])
    """

    def __init__(self, *, m: float, n: float, tav_weight: float) -> None:
        super().__init__()
        self.m = nn.Parameter(torch.tensor([float(m)]))
        self.n = nn.Parameter(torch.tensor([float(n)]))
        self.tav_weight = tav_weight

    def forward(self, x: Tensor) -> PromptOutput:
        """Prompts (BCTHW, T frames), attention B x T x H x W and the weighted TAV."""
        video = x.permute(0, 2, 1, 3, 4)  # B x T+1 x C x H x W
        pixels = video * STD + MEAN
        weights = torch.tensor(GREY_WEIGHTS, dtype=x.dtype, device=x.device)
        grey = torch.einsum("btchw, c -> bthw", pixels, weights)
        batch, steps, height, width = grey.shape
        diff = grey[:, 1:] - grey[:, :-1]
        slope = 5 / (0.45 * torch.abs(torch.tanh(self.m)) + 1e-1)
        att = 1 / (1 + torch.exp(-slope * (diff - 0.6 * torch.tanh(self.n))))
        repeated = att.unsqueeze(2).repeat(1, 1, 3, 1, 1)
        reg = torch.zeros((), device=x.device)
        if torch.is_grad_enabled():
            var = att[:, 1:] - att[:, :-1]
            reg = self.tav_weight * torch.sum(var.pow(2)) / (height * width * (steps - 2) * batch)
        prompts = (repeated * video[:, 1:]).permute(0, 2, 1, 3, 4)
        return PromptOutput(prompts, att, reg)


@dataclass(frozen=True)
class LayerBenchResult:
    """Timings (milliseconds, median of repeats) and agreement of the two formulations.

    Args:
        device: where it ran ("cpu", "cuda").
        compiled: whether ours ran under ``torch.compile`` (the reference always runs eager).
        shape: the input shape.
        ours_ms: MotionPrompt forward+backward.
        reference_ms: reference forward+backward.
        max_abs_diff: largest |difference| of prompts, attention and reg_loss.
        grad_rel_diff: largest relative difference of the gradients of m and n.

    Example:
        >>> r = LayerBenchResult("cpu", False, (1, 3, 3, 8, 8), 1.0, 2.0, 0.0, 0.0)
        >>> r.speedup
        2.0
    """

    device: str
    compiled: bool
    shape: tuple[int, ...]
    ours_ms: float
    reference_ms: float
    max_abs_diff: float
    grad_rel_diff: float

    @property
    def speedup(self) -> float:
        """Reference time over ours (> 1 means ours is faster)."""
        return self.reference_ms / self.ours_ms

    def lines(self) -> list[str]:
        """The report, speed ratio on the last line."""
        ours = "ours (compiled)" if self.compiled else "ours (eager)"
        return [
            f"device {self.device}, input {' x '.join(map(str, self.shape))}, forward+backward",
            f"reference (eager) {self.reference_ms:10.2f} ms",
            f"{ours:17s} {self.ours_ms:10.2f} ms",
            f"max abs diff {self.max_abs_diff:.3g} (outputs), "
            f"grad rel diff {self.grad_rel_diff:.3g} (m, n)",
            f"speedup {self.speedup:.2f}x",
        ]


def _step(layer: nn.Module | Callable[[Tensor], PromptOutput], x: Tensor) -> PromptOutput:
    """One forward+backward; returns the forward's output."""
    out = layer(x)
    (out.prompts.sum() + out.reg_loss).backward()
    return out


def _check_sizes(batch: int, frames: int, size: int, repeats: int, warmup: int) -> None:
    for name, value, low in (
        ("batch", batch, 1),
        ("frames", frames, 3),
        ("size", size, 1),
        ("repeats", repeats, 1),
        ("warmup", warmup, 0),
    ):
        if not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an int >= {low}; got {value!r}")


def _agreement(
    run_ours: Callable[[Tensor], PromptOutput], ours: MotionPrompt, ref: ReferencePrompt, x: Tensor
) -> tuple[float, float]:
    """Max abs difference of the outputs and max relative difference of the m, n gradients."""
    for p in (*ours.parameters(), *ref.parameters()):
        p.grad = None
    a, b = _step(run_ours, x), _step(ref, x)
    a, b = (PromptOutput(*(t.detach() for t in o)) for o in (a, b))
    diff = max(
        float((a.prompts.float() - b.prompts.float()).abs().max()),
        float((a.attention.float() - b.attention.float()).abs().max()),
        float((a.reg_loss - b.reg_loss).abs()),
    )
    rel = 0.0
    for mine, theirs in ((ours.m, ref.m), (ours.n, ref.n)):
        g, h = mine.grad.sum(), theirs.grad.sum()
        rel = max(rel, float((g - h).abs() / h.abs().clamp_min(1e-12)))
    return diff, rel


def bench_layer(
    *,
    device: Device = "auto",
    compile: bool = False,
    batch: int = 8,
    frames: int = 9,
    size: int = 224,
    repeats: int = 10,
    warmup: int = 2,
    tav_weight: float = 1.0,
    seed: int = 0,
    on_repeat: Callable[[], None] | None = None,
) -> LayerBenchResult:
    """Time MotionPrompt and the reference on a B x 3 x frames x size x size input."""
    _check_sizes(batch, frames, size, repeats, warmup)
    dev = resolve_device(device)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 3, frames, size, size, generator=gen).to(dev)
    m, n = (float(v) for v in torch.randn(2, generator=gen))
    ours = MotionPrompt(init=(m, n), tav_weight=tav_weight).to(dev)
    ref = ReferencePrompt(m=m, n=n, tav_weight=tav_weight).to(dev)
    run_ours = torch.compile(ours) if compile else ours
    for _ in range(warmup):
        _step(run_ours, x)
        _step(ref, x)
    diff, grad_rel = _agreement(run_ours, ours, ref, x)
    ours_ms, ref_ms = [], []
    for _ in range(repeats):  # interleaved so drift on a shared machine hits both alike
        ours_ms.append(1e3 * timed(lambda: _step(run_ours, x)))
        ref_ms.append(1e3 * timed(lambda: _step(ref, x)))
        if on_repeat is not None:
            on_repeat()
    return LayerBenchResult(
        device=str(dev),
        compiled=compile,
        shape=tuple(x.shape),
        ours_ms=statistics.median(ours_ms),
        reference_ms=statistics.median(ref_ms),
        max_abs_diff=diff,
        grad_rel_diff=grad_rel,
    )


__all__ = ["LayerBenchResult", "ReferencePrompt", "bench_layer", "resolve_device"]
