"""X3D (Feichtenhofer, CVPR 2020) from pytorchvideo's ``create_x3d``.

X3D-XS, -S and -M share one network (width 2.0, depth 2.2, 3.8M parameters) and differ in the
input they are trained at; the head's pooling kernel follows the frames and crop.
"""

from __future__ import annotations

import functools
from typing import Any

from torch import nn

from mpbench.config import Size
from mpbench.models._common import ClipBackbone, check_at_least
from mpbench.models._registry import register_ptv_backbone

_SPATIAL_STRIDE = 32  # stem 2 x four stages of 2
# narrow and shallow: ~30k parameters, a training step at 8 x 3 x 8 x 64^2 in ~0.05 s on 2 cores
# Measured on synth (4 classes, 32 px, batch 8, 240-480 AdamW steps): head dropout 0.5 or an
# 8-channel stem kept the tiny net near chance; a 16-channel stem without dropout reaches ~0.9.
_TINY = {
    "width_factor": 1.0,
    "depth_factor": 0.5,
    "stem_dim_in": 16,
    "head_dim_out": 64,
    "dropout_rate": 0.0,
}


def _x3d(
    name: str, *, size: Size, num_classes: int, frames: int, crop: int, depth_factor: float
) -> nn.Module:
    """Build an X3D network for ``frames`` x ``crop``^2 clips (logits out, no softmax)."""
    from pytorchvideo.models.x3d import create_x3d

    check_at_least(name, "crop", crop, _SPATIAL_STRIDE, "the total spatial stride of X3D")
    widths = {"width_factor": 2.0, "depth_factor": depth_factor} if size == "full" else _TINY
    net = create_x3d(
        input_clip_length=frames,
        input_crop_size=crop,
        model_num_class=num_classes,
        head_activation=None,
        **widths,
    )
    return ClipBackbone(net)


# every X3D size is the same network (3.8M parameters), trained on other clip shapes
_entry = functools.partial(
    register_ptv_backbone, family="x3d", classifier="blocks.5.proj", params_m=3.79
)


@_entry("X3D_XS.pyth", full=(4, 160))
def x3d_xs(**kw: Any) -> nn.Module:
    """X3D-XS: 3.8M parameters, 4 x 160^2 input (Kinetics-400 69.1% top-1)."""
    return _x3d("x3d_xs", depth_factor=2.2, **kw)


@_entry("X3D_S.pyth", full=(13, 160))
def x3d_s(**kw: Any) -> nn.Module:
    """X3D-S: 3.8M parameters, 13 x 160^2 input (Kinetics-400 73.3% top-1)."""
    return _x3d("x3d_s", depth_factor=2.2, **kw)


@_entry("X3D_M.pyth", full=(16, 224))
def x3d_m(**kw: Any) -> nn.Module:
    """X3D-M: 3.8M parameters, 16 x 224^2 input (Kinetics-400 75.9% top-1)."""
    return _x3d("x3d_m", depth_factor=2.2, **kw)
