"""Parameter and FLOP counts of the registered backbones (``mpbench list backbones``).

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` for one clip's forward pass;
it counts 2 FLOPs per multiply-accumulate (MAC) of convolutions and matmuls and nothing for
element-wise ops, the same convention as fvcore, whose tables (pytorchvideo's model zoo) quote
MACs as "FLOPs". The networks are built on the meta device where they can be (no memory, no
compute), so even the full sizes are counted in about a second each.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from mpbench.config import Size
from mpbench.models._registry import BackboneInfo, get_backbone


@dataclass(frozen=True)
class BackboneSummary:
    """Size and cost of one backbone at one input.

    Args:
        info: the registry info.
        size: "tiny" or "full".
        frames: T of the counted input.
        crop: crop of the counted input.
        params: number of parameters (with ``num_classes`` outputs).
        flops: FLOPs of one clip's forward pass (2 per MAC); None with ``error``.
        error: why the backbone cannot take this input, or "".

    Example:
        >>> s = summarize_backbone("x3d_xs", size="tiny")
        >>> s.frames, s.crop, s.gmacs == s.gflops / 2
        (8, 64, True)
    """

    info: BackboneInfo
    size: str
    frames: int
    crop: int
    params: int | None
    flops: int | None
    error: str = ""

    @property
    def gflops(self) -> float | None:
        """FLOPs in units of 1e9."""
        return None if self.flops is None else self.flops / 1e9

    @property
    def gmacs(self) -> float | None:
        """Multiply-accumulates in units of 1e9 (half the FLOPs)."""
        return None if self.flops is None else self.flops / 2e9


def build_on_meta(name: str, **kwargs: object) -> nn.Module:
    """The backbone on the meta device, or built on CPU and moved there when that fails."""
    build = get_backbone(name).build
    try:
        with torch.device("meta"):
            return build(**kwargs)
    except (RuntimeError, NotImplementedError):  # e.g. a builder that calls .item()
        return build(**kwargs).to("meta")


def count_flops(net: nn.Module, x: torch.Tensor) -> int:
    """FLOPs (2 per MAC) of ``net(x)`` in eval mode."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net.eval()(x)
    return int(counter.get_total_flops())


def summarize_backbone(
    name: str,
    *,
    size: Size = "tiny",
    frames: int | None = None,
    crop: int | None = None,
    num_classes: int = 400,
) -> BackboneSummary:
    """Parameters and FLOPs of ``name`` at ``frames`` x ``crop``^2 (default: the size's input)."""
    info = get_backbone(name).info
    frames = frames or info.defaults[size][0]
    crop = crop or info.defaults[size][1]
    try:
        net = build_on_meta(name, size=size, num_classes=num_classes, frames=frames, crop=crop)
    except ValueError as exc:
        return BackboneSummary(info, size, frames, crop, None, None, error=str(exc))
    shape = (1, 3, frames, crop, crop) if info.layout == "BCTHW" else (1, frames, 3, crop, crop)
    flops = count_flops(net, torch.zeros(shape, device="meta"))
    params = sum(p.numel() for p in net.parameters())
    return BackboneSummary(info, size, frames, crop, params, flops)
