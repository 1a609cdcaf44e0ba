"""SlowFast R50 (Feichtenhofer, ICCV 2019) from pytorchvideo's ``create_slowfast``.

The fast pathway gets every one of the T prompt frames, the slow pathway every ``alpha``-th
(frames 0, alpha, 2 alpha, ...); the fast-to-slow fusion convolutions stride by ``alpha``.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from mpbench.config import Size
from mpbench.models._common import check_at_least, check_multiple, strided
from mpbench.models._registry import register_ptv_backbone

_SPATIAL_STRIDE = 32
_TINY = {
    "stem_dim_outs": (16, 2),
    "dropout_rate": 0.0,
}  # 1/4 of the slow width, fast = slow / 8 as published


class SlowFastBackbone(nn.Module):
    """Packs one clip into the [slow, fast] pathway pair that ``.net`` takes.

    Args:
        net: the pytorchvideo SlowFast network.
        alpha: the frame-rate ratio; slow gets frames ``0, alpha, 2 alpha, ...`` of the clip.

    Example:
        >>> import torch
        >>> pack = SlowFastBackbone(nn.Identity(), alpha=4)
        >>> [p.shape[2] for p in pack.pathways(torch.zeros(1, 3, 8, 4, 4))]
        [2, 8]
    """

    def __init__(self, net: nn.Module, *, alpha: int) -> None:
        super().__init__()
        self.net = net
        self.alpha = alpha

    def pathways(self, x: Tensor) -> list[Tensor]:
        """[slow, fast]: B x C x T/alpha x H x W and the clip itself, B x C x T x H x W."""
        return [x[:, :, :: self.alpha], x]

    def forward(self, x: Tensor) -> Tensor:
        """Logits of clip ``x``: B x C x T x H x W -> B x classes."""
        return self.net(self.pathways(x))


def _slowfast(
    name: str, *, alpha: int, size: Size, num_classes: int, frames: int, crop: int, **numbers: Any
) -> nn.Module:
    """Build a SlowFast network for ``frames`` fast frames and ``frames / alpha`` slow ones."""
    from pytorchvideo.models.slowfast import create_slowfast

    if not (isinstance(alpha, int) and alpha >= 1):
        raise ValueError(f"{name}: alpha={alpha!r} must be a positive int (default 4)")
    check_multiple(name, "frames", frames, alpha, f"the slow pathway takes every alpha={alpha}-th")
    check_at_least(name, "crop", crop, _SPATIAL_STRIDE, "the total spatial stride")
    side = strided(crop, _SPATIAL_STRIDE)
    net = create_slowfast(
        model_num_class=num_classes,
        slowfast_fusion_conv_stride=(alpha, 1, 1),
        head_pool_kernel_sizes=((frames // alpha, side, side), (frames, side, side)),
        **(numbers | (_TINY if size == "tiny" else {})),
    )
    return SlowFastBackbone(net, alpha=alpha)


@register_ptv_backbone(
    "SLOWFAST_8x8_R50.pyth",
    family="slowfast",
    full=(32, 224),
    classifier="blocks.6.proj",
    params_m=34.57,
)
def slowfast_r50(*, alpha: int = 4, **kw: Any) -> nn.Module:
    """SlowFast R50 8x8: 34.6M parameters, 32 fast / 8 slow frames at 224^2."""
    return _slowfast(
        "slowfast_r50",
        alpha=alpha,
        model_depth=50,
        slowfast_fusion_conv_kernel_size=(7, 1, 1),
        **kw,
    )
