"""MViT-B 16x4 (Fan, ICCV 2021) from pytorchvideo's ``create_multiscale_vision_transformers``.

The separable space/time positional embeddings are sized for the frames and crop it is built for.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from mpbench.config import Size
from mpbench.models._common import ClipBackbone, check_multiple
from mpbench.models._registry import register_ptv_backbone

_PATCH_STRIDE = (2, 4)  # the 3 x 7 x 7 patch convolution strides 2 in time, 4 in space
_TINY = {
    "depth": 4,
    "patch_embed_dim": 16,
    "embed_dim_mul": [[1, 2.0], [3, 2.0]],
    "atten_head_mul": [[1, 2.0], [3, 2.0]],
    "pool_q_stride_size": [[1, 1, 2, 2], [3, 1, 2, 2]],
    "pool_kv_stride_adaptive": [1, 4, 4],
    "head_dropout_rate": 0.0,
}


def _mvit(
    name: str, *, size: Size, num_classes: int, frames: int, crop: int, **numbers: Any
) -> nn.Module:
    """Build an MViT whose patch grid and positional embeddings fit ``frames`` x ``crop``^2."""
    from pytorchvideo.models.vision_transformers import create_multiscale_vision_transformers

    why = "the patch embedding's stride; the positional embeddings need whole patches"
    check_multiple(name, "frames", frames, _PATCH_STRIDE[0], why)
    check_multiple(name, "crop", crop, _PATCH_STRIDE[1], why)
    net = create_multiscale_vision_transformers(
        spatial_size=crop,
        temporal_size=frames,
        head_num_classes=num_classes,
        **(numbers | (_TINY if size == "tiny" else {})),
    )
    return ClipBackbone(net)


@register_ptv_backbone(
    "MVIT_B_16x4.pyth", family="mvit", full=(16, 224), classifier="head.proj", params_m=36.61
)
def mvit_b(**kw: Any) -> nn.Module:
    """MViT-B 16x4: 36.6M parameters, 16 x 224^2 input (Kinetics-400 78.9% top-1)."""
    return _mvit(
        "mvit_b",
        embed_dim_mul=[[1, 2.0], [3, 2.0], [14, 2.0]],
        atten_head_mul=[[1, 2.0], [3, 2.0], [14, 2.0]],
        pool_q_stride_size=[[1, 1, 2, 2], [3, 1, 2, 2], [14, 1, 2, 2]],
        pool_kv_stride_adaptive=[1, 8, 8],
        pool_kvq_kernel=[3, 3, 3],
        **kw,
    )
