"""Named prompt variants: validated settings of the motion prompt layer that studies refer to.

This module does not import torch (``build`` imports :mod:`mpbench.prompt` when called), so
study schemas can validate variant names cheaply.

The fixed values are the slope and shift that the layer learnt on FineGym (m = 1.05, n = -2.67 on
the authors' project page): ``a = 5 / (0.45 |tanh 1.05| + 0.1) = 11.0665`` and
``b = 0.6 tanh(-2.67) = -0.5943``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mpbench._registry import Registry

if TYPE_CHECKING:
    from collections.abc import Sequence

    from torch import nn

PowerNormName = Literal["sigmoid", "gamma", "maxexp", "sigme", "asinhe"]
FIXED_SLOPE = 11.0665  # FineGym m = 1.05
FIXED_SHIFT = -0.5943  # FineGym n = -2.67
# fixed-strength ranges per power normalisation: (low, high, low_open, high_open); they mirror
# mpbench.prompt.POWER_NORMS (a test keeps the two equal) so that this module needs no torch
_STRENGTH_RANGES: dict[str, tuple[float, float, bool, bool]] = {
    "sigmoid": (9.0909, 50.0, False, False),
    "gamma": (0.0, 1.0, True, False),
    "maxexp": (0.0, math.inf, True, True),
    "sigme": (0.0, math.inf, True, True),
    "asinhe": (0.0, math.inf, True, True),
}
SHIFT_RANGE = (-0.6, 0.6)

Setting = Literal["learnable"] | Annotated[float, Field(allow_inf_nan=False)]


def _in_range(value: float, low: float, high: float, low_open: bool, high_open: bool) -> bool:
    above = value > low if low_open else value >= low
    return above and (value < high if high_open else value <= high)


def _range_text(low: float, high: float, low_open: bool, high_open: bool) -> str:
    hi = "inf" if math.isinf(high) else f"{high:g}"
    return f"{'(' if low_open else '['}{low:g}, {hi}{')' if high_open else ']'}"


class VariantSpec(BaseModel):
    """One prompt variant: whether there is a prompt and how the layer is set up.

    Args:
        name: registry name.
        prompt: False for the no-prompt baseline (the other settings are then unused).
        pn: power normalisation ("sigmoid" is the paper's).
        slope: "learnable" or a fixed strength in natural units (the sigmoid's a).
        shift: "learnable" or a fixed b in [-0.6, 0.6].
        tav_weight: lambda of the temporal attention variation regulariser (>= 0).
        granularity: "scalar", "frame" (needs ``frames`` at build) or "pixel" (needs ``size``).
        init: "paper" (m, n ~ N(1e-5, 1)) or an explicit (m, n).
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
    granularity: Literal["scalar", "frame", "pixel"] = "scalar"
    init: Literal["paper"] | tuple[float, float] = "paper"
    description: str = ""

    @model_validator(mode="after")
    def _check_settings(self) -> VariantSpec:
        if not self.prompt and self.tav_weight > 0:
            raise ValueError(
                f"variant {self.name!r} has no prompt, so tav_weight must be 0; "
                f"got {self.tav_weight}"
            )
        if self.slope != "learnable":
            bounds = _STRENGTH_RANGES[self.pn]
            if not _in_range(float(self.slope), *bounds):
                raise ValueError(
                    f"variant {self.name!r}: fixed slope {self.slope} for pn={self.pn!r} is "
                    f"outside {_range_text(*bounds)}"
                )
        if self.shift != "learnable" and not (
            SHIFT_RANGE[0] <= float(self.shift) <= SHIFT_RANGE[1]
        ):
            raise ValueError(
                f"variant {self.name!r}: fixed shift {self.shift} is outside [-0.6, 0.6]"
            )
        if isinstance(self.init, tuple) and not all(math.isfinite(v) for v in self.init):
            raise ValueError(f"variant {self.name!r}: init must be finite; got {self.init}")
        return self

    def build(
        self,
        *,
        layout: Literal["BCTHW", "BTCHW"] = "BCTHW",
        frames: int | None = None,
        size: tuple[int, int] | None = None,
        mean: float | Sequence[float] = 0.45,
        std: float | Sequence[float] = 0.225,
        channel_order: Literal["RGB", "BGR"] = "RGB",
    ) -> nn.Module:
        """The prompt module (``MotionPrompt`` or ``NoPrompt``); ``frames`` = T attention maps."""
        from mpbench.prompt import MotionPrompt, NoPrompt

        if not self.prompt:
            return NoPrompt(layout=layout)
        return MotionPrompt(
            pn=self.pn,
            slope=self.slope,
            shift=self.shift,
            init=self.init,
            granularity=self.granularity,
            frames=frames,
            size=size,
            tav_weight=self.tav_weight,
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
        """The settings as short strings, for tables and logs."""
        if not self.prompt:
            return dict.fromkeys(("pn", "slope", "shift", "tav_weight", "granularity", "init"), "-")

        def fmt(v: object) -> str:
            return v if isinstance(v, str) else f"{v:g}"  # type: ignore[str-format]

        init = (
            self.init if isinstance(self.init, str) else f"m={self.init[0]:g}, n={self.init[1]:g}"
        )
        return {
            "pn": self.pn,
            "slope": fmt(self.slope),
            "shift": fmt(self.shift),
            "tav_weight": f"{self.tav_weight:g}",
            "granularity": self.granularity,
            "init": init,
        }


VARIANTS: Registry[VariantSpec] = Registry("variant")


def _add(spec: VariantSpec) -> None:
    VARIANTS.add(spec.name, spec)


_add(
    VariantSpec(
        name="baseline", prompt=False, description="no prompt: the backbone sees frames 2..T+1"
    )
)
_add(
    VariantSpec(
        name="fixed",
        slope=FIXED_SLOPE,
        shift=FIXED_SHIFT,
        description="paper sigmoid, slope and shift fixed at the FineGym-learnt a, b",
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
        name="fixed_tav",
        slope=FIXED_SLOPE,
        shift=FIXED_SHIFT,
        tav_weight=1.0,
        description="slope and shift fixed, TAV lambda = 1",
    )
)
_add(VariantSpec(name="slope_only", shift=FIXED_SHIFT, description="slope learnt, shift fixed"))
_add(VariantSpec(name="shift_only", slope=FIXED_SLOPE, description="shift learnt, slope fixed"))
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
    ("maxexp", "1 - (1 - |D|)^eta, eta learnt"),
    ("sigme", "2 / (1 + exp(-eta |D|)) - 1, eta learnt"),
    ("asinhe", "arcsinh(eta D), eta learnt"),
):
    _add(VariantSpec(name=f"pn_{_pn}", pn=_pn, shift=0.0, description=f"power norm {_text}"))


def get_variant(name: str) -> VariantSpec:
    """The variant called ``name``; an unknown name is a ValueError listing close matches."""
    return VARIANTS.get(name)


def list_variants() -> list[VariantSpec]:
    """Every registered variant, baseline first."""
    return [VARIANTS.get(n) for n in VARIANTS.names()]


__all__ = ["VARIANTS", "PowerNormName", "VariantSpec", "get_variant", "list_variants"]
