"""The ranges of the prompt layer's fixed slope and shift, defined and checked once (no torch).

:mod:`mpbench.variants` validates variant specs with :func:`check_slope` and
:func:`check_shift` without importing torch; :class:`mpbench.prompt.MotionPrompt` checks its
fixed settings with the same functions, so a value one accepts the other accepts too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, TypeVar

# The paper's bounded slope and shift of unconstrained (m, n), written once:
# a = SLOPE_SCALE / (SLOPE_GAIN |tanh m| + SLOPE_FLOOR) = 5 / (0.45 |tanh m| + 0.1), b = 0.6 tanh n
SLOPE_SCALE: Final = 5.0
SLOPE_GAIN: Final = 0.45
SLOPE_FLOOR: Final = 0.1
SHIFT_LIMIT: Final = 0.6
SLOPE_LOW: Final = SLOPE_SCALE / (SLOPE_GAIN + SLOPE_FLOOR)  # as |tanh m| -> 1
SLOPE_HIGH: Final = SLOPE_SCALE / SLOPE_FLOOR  # at |tanh m| = 0
T = TypeVar("T")  # a float or a tensor: the formulas use arithmetic only


def slope_of(abs_tanh_m: T) -> T:
    """The paper's slope ``a = 5 / (0.45 |tanh m| + 0.1)`` from ``|tanh m|`` (float or tensor)."""
    return SLOPE_SCALE / (SLOPE_GAIN * abs_tanh_m + SLOPE_FLOOR)  # type: ignore[operator,return-value]


def shift_of(tanh_n: T) -> T:
    """The paper's shift ``b = 0.6 tanh n`` from ``tanh n`` (float or tensor)."""
    return SHIFT_LIMIT * tanh_n  # type: ignore[operator,return-value]


@dataclass(frozen=True)
class StrengthRange:
    """The fixed strengths a power normalisation accepts.

    Args:
        symbol: name of the strength ("a", "gamma", "eta").
        low: smallest strength; ``low_open`` excludes it.
        high: largest strength (``math.inf`` for none); ``high_open`` excludes it.

    Example:
        >>> STRENGTH_RANGES["gamma"].text(), 1.0 in STRENGTH_RANGES["gamma"]
        ('(0, 1]', True)
    """

    symbol: str
    low: float
    high: float
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        return above and (value < self.high if self.high_open else value <= self.high)

    def text(self) -> str:
        """The range as interval text, e.g. ``[9.0909, 50]``."""
        hi = "inf" if math.isinf(self.high) else f"{self.high:g}"
        lo_b, hi_b = ("(" if self.low_open else "["), (")" if self.high_open else "]")
        return f"{lo_b}{self.low:g}, {hi}{hi_b}"


# per power normalisation, in the order of mpbench.prompt.POWER_NORMS
STRENGTH_RANGES: Final[dict[str, StrengthRange]] = {
    "sigmoid": StrengthRange("a", round(SLOPE_LOW, 4), SLOPE_HIGH),
    "gamma": StrengthRange("gamma", 0.0, 1.0, low_open=True),
    "maxexp": StrengthRange("eta", 1.0, math.inf, high_open=True),
    "sigme": StrengthRange("eta", 0.0, math.inf, low_open=True, high_open=True),
    "asinhe": StrengthRange("eta", 0.0, math.inf, low_open=True, high_open=True),
}


def check_slope(pn: str, value: float) -> float:
    """``value`` as a float when ``pn`` accepts it as a fixed strength, else a ValueError."""
    v, rng = float(value), STRENGTH_RANGES[pn]
    if not (math.isfinite(v) and v in rng):
        raise ValueError(
            f"fixed slope {value!r} for pn={pn!r} ({rng.symbol}) is outside {rng.text()}; "
            "pass a value in that range or slope='learnable'"
        )
    return v


def check_shift(value: float) -> float:
    """``value`` as a float when it is a fixed shift in [-0.6, 0.6], else a ValueError."""
    v = float(value)
    if not (math.isfinite(v) and -SHIFT_LIMIT <= v <= SHIFT_LIMIT):
        raise ValueError(
            f"fixed shift {value!r} is outside [-{SHIFT_LIMIT:g}, {SHIFT_LIMIT:g}]; "
            "pass a value in that range or shift='learnable'"
        )
    return v
