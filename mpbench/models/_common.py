"""Pieces the backbone families share: the clip adapter and the input-size checks."""

from __future__ import annotations

import math

from torch import Tensor, nn


class ClipBackbone(nn.Module):
    """A network that takes one clip tensor and returns logits; the library model is ``.net``.

    Args:
        net: the pytorchvideo network (input B x C x T x H x W, output B x classes).

    Example:
        >>> import torch
        >>> ClipBackbone(nn.Flatten())(torch.zeros(2, 3, 1, 1, 1)).shape
        torch.Size([2, 3])
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        """Logits of clip ``x``: B x C x T x H x W -> B x classes."""
        return self.net(x)


def check_at_least(backbone: str, what: str, value: int, minimum: int, why: str) -> None:
    """ValueError unless ``value >= minimum`` (``why`` names the constraint)."""
    if value < minimum:
        raise ValueError(
            f"{backbone}: {what}={value} is too small; it must be >= {minimum} ({why})"
        )


def check_multiple(backbone: str, what: str, value: int, divisor: int, why: str) -> None:
    """ValueError unless ``value`` is a positive multiple of ``divisor``."""
    if value < divisor or value % divisor:
        raise ValueError(
            f"{backbone}: {what}={value} must be a multiple of {divisor} ({why}); "
            f"try {what}={max(divisor, round(value / divisor) * divisor)}"
        )


def strided(value: int, stride: int) -> int:
    """Feature length after ``stride`` of 'same'-padded strided layers (each rounds up)."""
    return math.ceil(value / stride)
