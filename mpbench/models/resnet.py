"""ResNet-style 3D networks from pytorchvideo: Slow R50, R(2+1)D R50 and CSN R101.

The tiny sizes keep the shallowest depth pytorchvideo builds (50) at 1/8 of the width.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any, Literal

from torch import nn

from mpbench.config import Size
from mpbench.models._common import ClipBackbone, check_at_least, strided
from mpbench.models._registry import register_ptv_backbone

_SPATIAL_STRIDE = 32  # stem conv 2 x stem pool (or first stage) 2 x three stages of 2
_TINY = {
    "stem_dim_out": 8,
    "model_depth": 50,
    "dropout_rate": 0.0,
}  # 1/8 width, 16 bottlenecks: ~0.2-0.5M parameters


def _resnet(
    name: str,
    kind: Literal["resnet", "r2plus1d", "csn"],
    depth: int,
    *,
    temporal_stride: int,
    size: Size,
    num_classes: int,
    frames: int,
    crop: int,
    **numbers: Any,
) -> nn.Module:
    """Build pytorchvideo's ``create_<kind>`` network of ``depth`` layers (the tiny size: 50); its
    head pools the whole feature map."""
    check_at_least(name, "crop", crop, _SPATIAL_STRIDE, "the total spatial stride")
    check_at_least(name, "frames", frames, temporal_stride, "the total temporal stride")
    pool = (strided(frames, temporal_stride), *[strided(crop, _SPATIAL_STRIDE)] * 2)
    create = getattr(importlib.import_module(f"pytorchvideo.models.{kind}"), f"create_{kind}")
    net = create(
        model_num_class=num_classes,
        head_pool_kernel_size=pool,
        head_activation=None,
        **({"model_depth": depth} | numbers | (_TINY if size == "tiny" else {})),
    )
    return ClipBackbone(net)


_entry = functools.partial(register_ptv_backbone, family="resnet", classifier="blocks.5.proj")


@_entry("SLOW_8x8_R50.pyth", full=(8, 224), params_m=32.45)
def slow_r50(**kw: Any) -> nn.Module:
    """Slow R50 8x8 (Feichtenhofer, ICCV 2019): 32.5M parameters, 8 x 224^2 input."""
    return _resnet(
        "slow_r50", "resnet", 50, temporal_stride=1, stem_conv_kernel_size=(1, 7, 7), **kw
    )


@_entry("R2PLUS1D_16x4_R50.pyth", full=(16, 224), params_m=28.11)
def r2plus1d_r50(**kw: Any) -> nn.Module:
    """R(2+1)D R50 16x4 (Tran, CVPR 2018): 28.1M parameters, 16 x 224^2 input."""
    return _resnet("r2plus1d_r50", "r2plus1d", 50, temporal_stride=4, dropout_rate=0.5, **kw)


@_entry("CSN_32x2_R101.pyth", full=(32, 224), params_m=22.21)
def csn_r101(**kw: Any) -> nn.Module:
    """CSN R101 32x2 (Tran, ICCV 2019), channel-separated: 22.2M parameters, 32 x 224^2 input."""
    return _resnet("csn_r101", "csn", 101, temporal_stride=8, stem_pool=nn.MaxPool3d, **kw)
