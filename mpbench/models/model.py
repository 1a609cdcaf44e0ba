"""``PromptedVideoModel`` (prompt layer, then backbone) and ``build_model``, the one factory."""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from torch import Tensor, nn

from mpbench._pixels import MEAN, STD
from mpbench.config import SIZES, Size
from mpbench.models._registry import BackboneInfo, get_backbone
from mpbench.models.fetch import ensure_checkpoint
from mpbench.models.pretrained import load_weights, read_state_dict

if TYPE_CHECKING:
    from mpbench.variants import VariantSpec


class ModelOutput(NamedTuple):
    """What :class:`PromptedVideoModel` returns.

    Args:
        logits: B x classes.
        reg_loss: the prompt's weighted regulariser (0-dim; zero for the baseline).
        attention: B x T x H x W attention maps when asked for and the variant has them, else None.
    """

    logits: Tensor
    reg_loss: Tensor
    attention: Tensor | None


class PromptedVideoModel(nn.Module):
    """A prompt layer, then a video backbone: T+1 frames in, T prompt frames into the backbone.

    Args:
        prompt: the prompt module (``VariantSpec.build(layout="BCTHW", ...)``): T+1 frames -> T.
        backbone: a module taking T frames in ``info.layout`` and returning B x classes logits.
        info: the backbone's registry info (layout, defaults).
        frames: T, the number of frames the backbone sees.
        crop: the height and width of the input frames.

    Example:
        >>> import torch
        >>> model = build_model("x3d_xs", variant="learnable_tav", num_classes=5, frames=4, crop=32)
        >>> out = model(torch.randn(2, 3, 5, 32, 32), return_attention=True)
        >>> out.logits.shape, out.attention.shape
        (torch.Size([2, 5]), torch.Size([2, 4, 32, 32]))
    """

    def __init__(
        self, *, prompt: nn.Module, backbone: nn.Module, info: BackboneInfo, frames: int, crop: int
    ) -> None:
        super().__init__()
        self.prompt = prompt
        self.backbone = backbone
        self.info = info
        self.frames = frames
        self.crop = crop

    def forward(self, x: Tensor, *, return_attention: bool = False) -> ModelOutput:
        """Logits, reg_loss and (if asked) attention of ``x``: B x 3 x (T+1) x H x W."""
        self._check_input(x)
        out = self.prompt(x)
        prompts = out.prompts  # B x 3 x T x H x W
        if self.info.layout == "BTCHW":
            prompts = prompts.transpose(1, 2)  # B x T x 3 x H x W
        logits = self.backbone(prompts)
        return ModelOutput(logits, out.reg_loss, out.attention if return_attention else None)

    def prompt_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of the prompt layer (none for fixed variants and the baseline)."""
        return self.prompt.parameters()

    def backbone_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of the backbone."""
        return self.backbone.parameters()

    def _check_input(self, x: Tensor) -> None:
        want = (3, self.frames + 1, self.crop, self.crop)
        if x.ndim != 5 or tuple(x.shape[1:]) != want:
            raise ValueError(
                f"{self.info.name} was built for input B x 3 x (T+1) x H x W = B x 3 x "
                f"{self.frames + 1} x {self.crop} x {self.crop} (frames T={self.frames}, "
                f"crop={self.crop}); got shape {tuple(x.shape)}"
            )

    def extra_repr(self) -> str:
        return f"backbone={self.info.name}, frames={self.frames}, crop={self.crop}"


def build_model(
    backbone: str,
    *,
    variant: str | VariantSpec,
    num_classes: int,
    frames: int,
    crop: int,
    size: Size = "tiny",
    pretrained: bool = False,
    weights: str | Path | None = None,
    mean: float | Sequence[float] = MEAN,
    std: float | Sequence[float] = STD,
    **backbone_kwargs: Any,
) -> PromptedVideoModel:
    """The prompted model: ``variant``'s layer, then ``backbone`` for T=``frames`` x ``crop``^2.

    The backbone is built before the prompt, so one seed gives every variant the same backbone
    weights. ``pretrained`` loads the published weights from the local cache (downloaded first when
    missing and online, :func:`mpbench.models.fetch.ensure_checkpoint`), ``weights`` a file;
    a head of another class count is replaced by a new one. ``mean``/``std`` are the input's
    normalisation, which the prompt layer undoes to compute frame differences.
    """
    entry = get_backbone(backbone)
    spec = _variant(variant)
    _check_build_args(entry.info, num_classes=num_classes, frames=frames, crop=crop, size=size)
    _check_backbone_kwargs(entry.info, entry.build, backbone_kwargs)
    if pretrained and weights is None and size != "full":
        raise ValueError(
            f"{backbone}: published weights exist for size='full' only; got size={size!r}"
        )
    state = None  # read first: a missing file fails before a large network is allocated
    if pretrained or weights is not None:
        state = read_state_dict(weights if weights is not None else ensure_checkpoint(entry.info))
    net = entry.build(
        size=size, num_classes=num_classes, frames=frames, crop=crop, **backbone_kwargs
    )
    if state is not None:
        load_weights(net, state, info=entry.info)
    prompt = spec.build(
        layout="BCTHW", frames=frames, size=(crop, crop), mean=mean, std=std, channel_order="RGB"
    )
    return PromptedVideoModel(
        prompt=prompt, backbone=net, info=entry.info, frames=frames, crop=crop
    )


def _variant(variant: str | VariantSpec) -> VariantSpec:
    from mpbench.variants import VariantSpec, get_variant

    if isinstance(variant, VariantSpec):
        return variant
    if isinstance(variant, str):
        return get_variant(variant)
    raise TypeError(f"variant must be a name or a VariantSpec; got {type(variant).__name__}")


def _check_build_args(
    info: BackboneInfo, *, num_classes: int, frames: int, crop: int, size: str
) -> None:
    if size not in SIZES:
        raise ValueError(f"{info.name}: size={size!r} is not one of {list(SIZES)}")
    for what, value in (("num_classes", num_classes), ("frames", frames), ("crop", crop)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{info.name}: {what} must be a positive int; got {value!r}")


def _check_backbone_kwargs(info: BackboneInfo, build: Any, kwargs: dict[str, Any]) -> None:
    unknown = sorted(set(kwargs) - set(info.options))
    if unknown:
        accepted = ", ".join(
            f"{n}={p.default!r}"
            for n, p in inspect.signature(build).parameters.items()
            if n in info.options
        )
        raise TypeError(
            f"{info.name} takes no option {', '.join(map(repr, unknown))}; "
            f"its options: {accepted or 'none'}"
        )
