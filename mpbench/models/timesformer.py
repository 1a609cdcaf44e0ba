"""TimeSformer (Bertasius, ICML 2021), divided space-time attention, from transformers.

Built from a ``TimesformerConfig`` (nothing is downloaded); its input layout is B x T x C x H x W.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mpbench.config import Size
from mpbench.models._common import check_at_least, check_multiple
from mpbench.models._registry import Checkpoint, register_backbone

_TINY = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 128,
}
_EMBED = "timesformer.embeddings"
_HF_REPO = "facebook/timesformer-base-finetuned-k400"
_HF_REPO_K600 = "facebook/timesformer-base-finetuned-k600"  # the reference code's start
_BASE = {
    "patch_size": 16,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
}


class VideoTransformerBackbone(nn.Module):
    """A transformers video classifier fed B x T x C x H x W; the library model is ``.net``.

    Args:
        net: the transformers model (``pixel_values`` in, ``.logits`` out).

    Example:
        >>> import torch
        >>> from transformers import TimesformerConfig, TimesformerForVideoClassification
        >>> cfg = TimesformerConfig(image_size=32, num_frames=2, hidden_size=8,
        ...     num_hidden_layers=1, num_attention_heads=1, intermediate_size=8, num_labels=5)
        >>> net = VideoTransformerBackbone(TimesformerForVideoClassification(cfg))
        >>> net(torch.zeros(1, 2, 3, 32, 32)).shape
        torch.Size([1, 5])
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        """Logits of clip ``x``: B x T x C x H x W -> B x classes."""
        return self.net(pixel_values=x).logits

    def adapt_state(self, state: dict[str, Tensor]) -> dict[str, Tensor]:
        """Resize a checkpoint's position (bicubic) and time (linear) embeddings to this model's."""
        own = self.net.state_dict()
        key = f"{_EMBED}.position_embeddings"  # 1 x (1 + N^2) x D: cls, then an N x N grid
        if key in state and state[key].shape[1] != own[key].shape[1]:
            cls, grid = state[key][:, :1], state[key][:, 1:]
            old, new = (round((n - 1) ** 0.5) for n in (state[key].shape[1], own[key].shape[1]))
            grid = grid.reshape(1, old, old, -1).permute(0, 3, 1, 2)
            grid = F.interpolate(grid, size=(new, new), mode="bicubic", align_corners=False)
            state[key] = torch.cat([cls, grid.permute(0, 2, 3, 1).reshape(1, new * new, -1)], 1)
        key = f"{_EMBED}.time_embeddings"  # 1 x T x D
        if key in state and state[key].shape[1] != own[key].shape[1]:
            times = F.interpolate(state[key].transpose(1, 2), size=own[key].shape[1], mode="linear")
            state[key] = times.transpose(1, 2)
        return state


class PatchProjection(nn.Conv2d):
    """A kernel = stride patch convolution computed as one matmul over the patches.

    Same parameters and outputs as the ``nn.Conv2d`` it replaces, but its input gradient (which a
    learnable prompt layer needs) is a matmul too: about 4x faster than the convolution's on CPU.

    Args:
        in_channels: input channels.
        out_channels: embedding width.
        kernel_size: the patch size (the stride is the same).

    Example:
        >>> import torch
        >>> PatchProjection(3, 8, kernel_size=4)(torch.zeros(2, 3, 8, 12)).shape
        torch.Size([2, 8, 2, 3])
    """

    def __init__(self, in_channels: int, out_channels: int, *, kernel_size: int) -> None:
        super().__init__(in_channels, out_channels, kernel_size=kernel_size, stride=kernel_size)

    def forward(self, x: Tensor) -> Tensor:
        """N x C x H x W -> N x D x H/p x W/p."""
        n, c, h, w = x.shape
        p = self.kernel_size[0]
        patches = x.reshape(n, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)
        out = F.linear(
            patches.reshape(-1, c * p * p), self.weight.reshape(self.out_channels, -1), self.bias
        )
        return out.reshape(n, h // p, w // p, -1).permute(0, 3, 1, 2)


class DropoutLinear(nn.Linear):
    """A linear classifier that drops its input first; its parameters keep the names of the
    ``nn.Linear`` it replaces, so published weights load unchanged.

    Args:
        in_features: input width.
        out_features: classes.
        p: dropout probability of the input.

    Example:
        >>> import torch
        >>> DropoutLinear(8, 3, p=0.5).eval()(torch.ones(2, 8)).shape
        torch.Size([2, 3])
    """

    def __init__(self, in_features: int, out_features: int, *, p: float) -> None:
        super().__init__(in_features, out_features)
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        """B x in -> B x out, the input dropped with probability ``p`` in training."""
        return super().forward(F.dropout(x, self.p, self.training))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, p={self.p}"


def _with_dropout(linear: nn.Linear, p: float) -> DropoutLinear:
    """A DropoutLinear holding ``linear``'s own parameters."""
    head = DropoutLinear(linear.in_features, linear.out_features, p=p)
    head.weight, head.bias = linear.weight, linear.bias
    return head


def _set_drop_path(net: nn.Module, rate: float) -> None:
    """Stochastic depth rising linearly from 0 at the first block to ``rate`` at the last.

    Set on the built layers: transformers 5.24 types ``TimesformerConfig.drop_path_rate`` as an
    int and refuses 0.1, although its layers take the same linear rule from it.
    """
    from transformers.models.timesformer.modeling_timesformer import TimesformerDropPath

    layers = net.timesformer.encoder.layer
    for layer, p in zip(
        layers, torch.linspace(0, rate, len(layers), device="cpu").tolist(), strict=True
    ):
        layer.drop_path = TimesformerDropPath(p) if p > 0 else nn.Identity()


def _as_matmul(conv: nn.Conv2d) -> PatchProjection:
    """A PatchProjection holding ``conv``'s own parameters."""
    proj = PatchProjection(conv.in_channels, conv.out_channels, kernel_size=conv.kernel_size[0])
    proj.weight, proj.bias = conv.weight, conv.bias
    return proj


def _timesformer(
    name: str,
    *,
    size: Size,
    num_classes: int,
    frames: int,
    crop: int,
    patch_size: int,
    dropout: float = 0.0,
    drop_path: float = 0.0,
    **numbers: Any,
) -> nn.Module:
    """Build a TimeSformer whose patch grid and time embeddings fit ``frames`` x ``crop``^2;
    ``dropout`` before the classifier, ``drop_path`` the stochastic depth of the last block
    (0 at the first, linear in between, as the reference's ViT)."""
    from transformers import TimesformerConfig, TimesformerForVideoClassification

    check_multiple(name, "crop", crop, patch_size, f"the patch size is {patch_size}")
    check_at_least(name, "frames", frames, 1, "one time embedding per frame")
    config = TimesformerConfig(
        image_size=crop,
        patch_size=patch_size,
        num_frames=frames,
        num_labels=num_classes,
        attention_type="divided_space_time",
        **(numbers | (_TINY if size == "tiny" else {})),
    )
    net = TimesformerForVideoClassification(config)
    patches = net.timesformer.embeddings.patch_embeddings
    patches.projection = _as_matmul(patches.projection)
    if dropout > 0:
        net.classifier = _with_dropout(net.classifier, dropout)
    if drop_path > 0:
        _set_drop_path(net, drop_path)
    return VideoTransformerBackbone(net)


def _checkpoint(repo: str) -> Checkpoint:
    """The Hugging Face repository ``repo`` of a TimeSformer-Base 8x224."""
    url = f"https://huggingface.co/{repo}/resolve/main/pytorch_model.bin"
    return Checkpoint(url=url, frames=8, crop=224, source="huggingface", repo=repo)


def _base_entry(repo: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register a TimeSformer-Base 8x224 entry whose weights are the Hugging Face ``repo``."""
    return register_backbone(
        family="timesformer",
        layout="BTCHW",
        full=(8, 224),
        checkpoint=_checkpoint(repo),
        classifier="classifier",
        params_m=121.4,
    )


@_base_entry(_HF_REPO)
def timesformer(*, dropout: float = 0.0, drop_path: float = 0.0, **kw: Any) -> nn.Module:
    """TimeSformer-Base 8x224, divided space-time attention, Kinetics-400: 121M parameters."""
    return _timesformer("timesformer", dropout=dropout, drop_path=drop_path, **_BASE, **kw)


@_base_entry(_HF_REPO_K600)
def timesformer_k600(*, dropout: float = 0.0, drop_path: float = 0.0, **kw: Any) -> nn.Module:
    """TimeSformer-Base 8x224 from the Kinetics-600 weights (the reference code's start)."""
    return _timesformer("timesformer_k600", dropout=dropout, drop_path=drop_path, **_BASE, **kw)
