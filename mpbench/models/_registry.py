"""The backbone registry: one decorated entry per backbone, holding only its numbers (timm style).

An entry is a function ``name(*, <options>, **kw) -> nn.Module`` that passes its numbers and
``kw`` (``size``, ``num_classes``, ``frames``, ``crop``) to its family's private builder; the
decorator records what ``list_backbones`` shows. The family modules register their entries when
``mpbench.models`` is imported; they import pytorchvideo/transformers only when they build.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from torch import nn

from mpbench._registry import Registry
from mpbench.config import Layout

PTV_ZOO = "https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo"


@dataclass(frozen=True)
class Checkpoint:
    """Where a backbone's published weights come from.

    Args:
        url: the download address of the file.
        source: "pytorchvideo" (a ``{"model_state": ...}`` file in the torch hub cache) or
            "huggingface" (a model repository in the Hugging Face cache).
        repo: the Hugging Face repository id ("" for pytorchvideo files).
        frames: the T the weights were trained with.
        crop: the crop the weights were trained with.
        sha256: the file's sha256 where it is known (None: the download is not compared with a
            published checksum; see :mod:`mpbench.models.fetch`).

    Example:
        >>> Checkpoint(url=f"{PTV_ZOO}/kinetics/X3D_XS.pyth", frames=4, crop=160).filename
        'X3D_XS.pyth'
    """

    url: str
    frames: int
    crop: int
    source: Literal["pytorchvideo", "huggingface"] = "pytorchvideo"
    repo: str = ""
    sha256: str | None = None

    @property
    def filename(self) -> str:
        """The file's name, as the torch hub cache stores it."""
        return self.url.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class BackboneInfo:
    """What a registered backbone is and which inputs it wants.

    Args:
        name: the registry name (``build_model(name, ...)``).
        family: the builder family ("x3d", "resnet", "slowfast", "mvit", "timesformer").
        layout: the tensor layout the backbone takes ("BCTHW" or "BTCHW").
        defaults: size -> (frames T, crop) of its standard input.
        checkpoint: the published weights of the full size.
        classifier: the module path of the classification head inside the library network
            (``.net``), e.g. ``"blocks.5.proj"``: a head of another class count is replaced there
            (timm's pretrained config names it the same way).
        params_m: the published parameter count of the full size with 400 classes, in millions
            (the registry-wide test builds each on the meta device and compares; the README's
            backbone table shows it).
        description: one line (the entry's docstring).
        options: the extra keyword arguments the entry accepts (e.g. ``alpha``).

    Example:
        >>> info = get_backbone("x3d_s").info
        >>> info.sizes, info.defaults["full"]
        (('tiny', 'full'), (13, 160))
    """

    name: str
    family: str
    layout: Layout
    defaults: Mapping[str, tuple[int, int]]
    checkpoint: Checkpoint
    classifier: str
    params_m: float
    description: str = ""
    options: tuple[str, ...] = field(default=())

    @property
    def sizes(self) -> tuple[str, ...]:
        """The sizes it can be built at."""
        return tuple(self.defaults)


@dataclass(frozen=True)
class BackboneEntry:
    """A registry entry: the info and the function that builds the backbone module."""

    info: BackboneInfo
    build: Callable[..., nn.Module]


BACKBONES: Registry[BackboneEntry] = Registry("backbone")


def register_backbone(
    *,
    family: str,
    layout: Layout,
    full: tuple[int, int],
    checkpoint: Checkpoint,
    classifier: str,
    params_m: float,
    tiny: tuple[int, int] = (8, 64),
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator that registers a backbone entry under its function name."""

    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        params = inspect.signature(fn).parameters
        info = BackboneInfo(
            name=fn.__name__,
            family=family,
            layout=layout,
            defaults={"tiny": tiny, "full": full},
            checkpoint=checkpoint,
            classifier=classifier,
            params_m=params_m,
            description=inspect.getdoc(fn) or "",
            options=tuple(n for n, p in params.items() if p.kind is p.KEYWORD_ONLY),
        )
        BACKBONES.add(fn.__name__, BackboneEntry(info=info, build=fn))
        return fn

    return deco


def register_ptv_backbone(
    file: str,
    *,
    family: str,
    full: tuple[int, int],
    classifier: str,
    params_m: float,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """:func:`register_backbone` for a BCTHW pytorchvideo network whose Kinetics-400 weights are
    the model zoo's ``file``, trained at the ``full`` (frames, crop)."""
    frames, crop = full
    return register_backbone(
        family=family,
        layout="BCTHW",
        full=full,
        checkpoint=Checkpoint(url=f"{PTV_ZOO}/kinetics/{file}", frames=frames, crop=crop),
        classifier=classifier,
        params_m=params_m,
    )


def get_backbone(name: str) -> BackboneEntry:
    """The registry entry ``name`` (an unknown name is a ValueError with close matches)."""
    return BACKBONES.get(name)


def list_backbones() -> list[BackboneInfo]:
    """Every registered backbone, in registration order."""
    return [BACKBONES.get(name).info for name in BACKBONES.names()]
