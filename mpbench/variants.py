"""Named prompt variants: validated settings of the motion prompt layer that studies refer to.

This module does not import torch (``build`` imports :mod:`mpbench.prompt` when called), so
study schemas can validate variant names cheaply.

``fixed`` is a sigmoid that attends: a = 30, b = 0.1 centre it at D = 0.1 (a grey change of about
25/255 between frames), so a static pixel gets A(D=0) = sigmoid(-3) = 0.047, a change of 0.02
(sensor and compression noise) 0.083 and a moderate change of 0.2 passes with
A(D=0.2) = sigmoid(3) = 0.953; darkening pixels (D < 0) are suppressed, as the paper's signed
sigmoid does with any b > 0. ``slope_only`` and ``shift_only`` start from the same point and learn
one of the two.

``fixed_finegym``, ``fixed_hmdb51`` and ``fixed_mpii`` freeze the (m, n) that the layer learnt
on each dataset (the authors' project page), mapped to (a, b) by
:func:`paper_slope_shift`. Most of them let static pixels through (FineGym: A(D=0) = 0.9986,
so a static pixel's prompt is within 0.14 % of the raw frame); ``mpbench list variants`` prints
each one's A(D=0).

No variant may weight a TAV term that has no gradient: with slope and shift both fixed the
attention does not depend on any parameter, so ``tav_weight > 0`` would only add a constant to the
loss and train exactly like ``tav_weight = 0`` (the former ``fixed_tav``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mpbench import _pixels
from mpbench._conventions import BASELINE
from mpbench._fields import same_named
from mpbench._ranges import check_shift, check_slope, shift_of, slope_of
from mpbench._registry import Registry
from mpbench.config import ChannelOrder, Granularity, Layout

if TYPE_CHECKING:
    from collections.abc import Sequence

    from torch import nn

PowerNormName = Literal["sigmoid", "gamma", "maxexp", "sigme", "asinhe"]
# the ``fixed`` variant's sigmoid (see the module docstring for the choice)
FIXED_SLOPE = 30.0
FIXED_SHIFT = 0.1
# (m, n) the layer learnt per dataset: the slider defaults of the authors' project page
# (q1xiangchen/motion-prompts, static/html/m&n_<dataset>.html, each showing that dataset's frame).
# No UCF-Crime entry: the page says "For UCF-Crime, we use the learned slope and shift from MPII
# Cooking 2" (index.html), so nothing was learnt there; its slider's (0.8916, -0.2543) is no
# dataset's learnt value, and MPII's values are ``fixed_mpii`` already.
PUBLISHED_MN: dict[str, tuple[float, float]] = {
    "finegym": (1.05, -2.67),
    "hmdb51": (0.2646, -0.6615),
    "mpii": (0.257, 0.053),
}
PUBLISHED_NAMES = {
    "finegym": "FineGym",
    "hmdb51": "HMDB-51",
    "mpii": "MPII Cooking 2 (the project page uses it for UCF-Crime too)",
}

Setting = Literal["learnable"] | Annotated[float, Field(allow_inf_nan=False)]


def paper_slope_shift(m: float, n: float) -> tuple[float, float]:
    """The paper's ``(a, b) = (5 / (0.45 |tanh m| + 0.1), 0.6 tanh n)`` of unconstrained (m, n)."""
    return slope_of(abs(math.tanh(m))), shift_of(math.tanh(n))


def sigmoid_attention(diff: float, *, slope: float, shift: float) -> float:
    """The paper's attention ``1 / (1 + exp(-a (D - b)))`` of one frame difference D."""
    z = slope * (diff - shift)
    if z < 0:  # the two forms avoid overflow of exp for large |z|
        e = math.exp(z)
        return e / (1.0 + e)
    return 1.0 / (1.0 + math.exp(-z))


class VariantSpec(BaseModel):
    """One prompt variant: whether there is a prompt and how the layer is set up.

    Args:
        name: registry name.
        prompt: False for the no-prompt baseline (the other settings are then unused).
        pn: power normalisation ("sigmoid" is the paper's).
        slope: "learnable" or a fixed strength in natural units (the sigmoid's a).
        shift: "learnable" or a fixed b in [-0.6, 0.6].
        tav_weight: lambda of the temporal attention variation regulariser (>= 0; > 0 needs a
            learnable slope or shift, else the term is a constant).
        granularity: "scalar", "frame" (needs ``frames`` at build) or "pixel" (needs ``size``).
        init: "paper" (m, n ~ N(1e-5, 1)) or an explicit (m, n).
        control: "static" or "shuffled" for a control with a known effect (no prompt; the
            backbone sees one frame repeated, or the frames in a random order per clip).
        description: one line for tables.

    Example:
        >>> spec = get_variant("learnable_tav").with_overrides(tav_weight=0.5)
        >>> spec.tav_weight
        0.5
        >>> layer = spec.build(layout="BTCHW")
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    prompt: bool = True
    pn: PowerNormName = "sigmoid"
    slope: Setting = "learnable"
    shift: Setting = "learnable"
    tav_weight: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] = 0.0
    granularity: Granularity = "scalar"
    init: Literal["paper"] | tuple[float, float] = "paper"
    control: Literal["static", "shuffled"] | None = None
    description: str = ""

    @model_validator(mode="after")
    def _check_settings(self) -> VariantSpec:
        if self.control is not None and self.prompt:
            raise ValueError(f"variant {self.name!r}: a control ({self.control}) has no prompt")
        if not self.prompt and self.tav_weight > 0:
            raise ValueError(
                f"variant {self.name!r} has no prompt, so tav_weight must be 0; "
                f"got {self.tav_weight}"
            )
        if self.prompt and self.tav_weight > 0 and not self.learns_attention:
            raise ValueError(
                f"variant {self.name!r}: tav_weight={self.tav_weight} needs a learnable slope or "
                "shift: with both fixed the attention depends on no parameter, so the TAV term is "
                "a constant without gradient and the variant trains exactly like tav_weight=0; "
                "set tav_weight=0 or make slope or shift 'learnable'"
            )
        try:
            if self.slope != "learnable":
                check_slope(self.pn, self.slope)
            if self.shift != "learnable":
                check_shift(self.shift)
        except ValueError as exc:
            raise ValueError(f"variant {self.name!r}: {exc}") from None
        if isinstance(self.init, tuple) and not all(math.isfinite(v) for v in self.init):
            raise ValueError(f"variant {self.name!r}: init must be finite; got {self.init}")
        return self

    @property
    def learns_attention(self) -> bool:
        """Whether the attention has learnable parameters (a learnable slope or shift)."""
        return self.prompt and "learnable" in (self.slope, self.shift)

    def static_attention(self) -> float | None:
        """A(D=0), the attention of a static pixel, for a fixed sigmoid; else None."""
        if not self.prompt or self.pn != "sigmoid" or self.learns_attention:
            return None
        return sigmoid_attention(0.0, slope=float(self.slope), shift=float(self.shift))

    def build(
        self,
        *,
        layout: Layout = "BCTHW",
        frames: int | None = None,
        size: tuple[int, int] | None = None,
        mean: float | Sequence[float] = _pixels.MEAN,
        std: float | Sequence[float] = _pixels.STD,
        channel_order: ChannelOrder = "RGB",
    ) -> nn.Module:
        """The prompt module (``MotionPrompt`` or ``NoPrompt``); ``frames`` = T attention maps."""
        from mpbench.prompt import ControlPrompt, MotionPrompt, NoPrompt

        if self.control is not None:
            return ControlPrompt(self.control, layout=layout)
        if not self.prompt:
            return NoPrompt(layout=layout)
        return MotionPrompt(
            **same_named(self, "pn", "slope", "shift", "init", "granularity", "tav_weight"),
            frames=frames,
            size=size,
            layout=layout,
            mean=mean,
            std=std,
            channel_order=channel_order,
        )

    def with_overrides(
        self,
        tav_weight: float | None = None,
        init_m: float | None = None,
        init_n: float | None = None,
    ) -> VariantSpec:
        """A validated copy with lambda and/or an explicit (m, n) init replaced.

        A missing one of ``init_m``/``init_n`` keeps the spec's explicit value; when the spec
        uses the paper's random init it is 0.0 if its setting is fixed (unused) and an error if
        it is learnable.
        """
        data: dict[str, Any] = self.model_dump()
        if tav_weight is not None:
            data["tav_weight"] = tav_weight
        if init_m is not None or init_n is not None:
            if not self.prompt:
                raise ValueError(f"variant {self.name!r} has no prompt, so it takes no init")
            data["init"] = (self._init_value(0, init_m), self._init_value(1, init_n))
        return VariantSpec.model_validate(data)

    def _init_value(self, index: int, value: float | None) -> float:
        """The m (index 0) or n (index 1) of an overridden init."""
        if value is not None:
            return float(value)
        if isinstance(self.init, tuple):
            return self.init[index]
        which, setting = ("m", self.slope) if index == 0 else ("n", self.shift)
        if setting == "learnable":
            raise ValueError(
                f"variant {self.name!r} learns {'slope' if index == 0 else 'shift'} from the "
                f"paper's random init: give init_{which} too (got only the other one)"
            )
        return 0.0

    def settings_text(self) -> dict[str, str]:
        """The settings as short strings, for tables and logs (``A(D=0)``: static attention)."""
        keys = ("pn", "slope", "shift", "tav_weight", "granularity", "init", "A(D=0)")
        if not self.prompt:
            return dict.fromkeys(keys, "-")

        def fmt(v: object) -> str:
            return v if isinstance(v, str) else f"{v:g}"  # type: ignore[str-format]

        init = (
            self.init if isinstance(self.init, str) else f"m={self.init[0]:g}, n={self.init[1]:g}"
        )
        init = init if self.learns_attention else "-"  # nothing to initialise
        static = self.static_attention()
        learnt = "learnt" if self.learns_attention else "-"
        return {
            "pn": self.pn,
            "slope": fmt(self.slope),
            "shift": fmt(self.shift),
            "tav_weight": f"{self.tav_weight:g}",
            "granularity": self.granularity,
            "init": init,
            "A(D=0)": learnt if static is None else f"{static:.4g}",
        }


VARIANTS: Registry[VariantSpec] = Registry("variant")


def _add(spec: VariantSpec) -> None:
    VARIANTS.add(spec.name, spec)


_add(
    VariantSpec(
        name=BASELINE, prompt=False, description="no prompt: the backbone sees frames 2..T+1"
    )
)
_add(
    VariantSpec(
        name="static",
        prompt=False,
        control="static",
        description="control: the middle frame repeated, motion destroyed (chance on synth)",
    )
)
_add(
    VariantSpec(
        name="shuffled",
        prompt=False,
        control="shuffled",
        description="control: the frames in a random order per clip (how much needs order)",
    )
)
_add(
    VariantSpec(
        name="fixed",
        slope=FIXED_SLOPE,
        shift=FIXED_SHIFT,
        description="paper sigmoid fixed at a = 30, b = 0.1: static pixels off, motion passes",
    )
)
for _key, (_m, _n) in PUBLISHED_MN.items():
    _a, _b = paper_slope_shift(_m, _n)
    _add(
        VariantSpec(
            name=f"fixed_{_key}",
            slope=_a,
            shift=_b,
            description=(
                f"paper sigmoid fixed at the {PUBLISHED_NAMES[_key]}-learnt m = {_m:g}, n = {_n:g}"
            ),
        )
    )
_add(VariantSpec(name="learnable", description="paper sigmoid, slope and shift learnt, no TAV"))
_add(
    VariantSpec(
        name="learnable_tav",
        tav_weight=1.0,
        description="the paper's layer: slope and shift learnt, TAV lambda = 1",
    )
)
_add(
    VariantSpec(
        name="slope_only",
        shift=FIXED_SHIFT,
        description="slope learnt, shift fixed at the fixed variant's b = 0.1",
    )
)
_add(
    VariantSpec(
        name="shift_only",
        slope=FIXED_SLOPE,
        description="shift learnt, slope fixed at the fixed variant's a = 30",
    )
)
_add(
    VariantSpec(
        name="learnable_frame",
        granularity="frame",
        description="one learnt slope and shift per attention map (build needs frames)",
    )
)
_add(
    VariantSpec(
        name="learnable_pixel",
        granularity="pixel",
        description="learnt H x W slope and shift maps (build needs size)",
    )
)
for _pn, _text in (
    ("gamma", "|D|^gamma, gamma learnt"),
    ("maxexp", "1 - (1 - |D|)^eta, eta >= 1 learnt"),
    ("sigme", "2 / (1 + exp(-eta |D|)) - 1, eta learnt"),
    ("asinhe", "arcsinh(eta |D|) / arcsinh(eta), eta learnt"),
):
    _add(VariantSpec(name=f"pn_{_pn}", pn=_pn, shift=0.0, description=f"power norm {_text}"))


def get_variant(name: str) -> VariantSpec:
    """The variant called ``name``; an unknown name is a ValueError listing close matches."""
    return VARIANTS.get(name)


def list_variants() -> list[VariantSpec]:
    """Every registered variant, baseline first."""
    return [VARIANTS.get(n) for n in VARIANTS.names()]


__all__ = [
    "PUBLISHED_MN",
    "VARIANTS",
    "PowerNormName",
    "VariantSpec",
    "get_variant",
    "list_variants",
    "paper_slope_shift",
    "sigmoid_attention",
]
