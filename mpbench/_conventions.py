"""The conventions every comparison of mpbench shares, each written once: the variant the others
are compared with, the error rate and the power of its tests, intervals, sequential designs,
planner and certificates. A leaf (standard library only) that any floor may import."""

from __future__ import annotations

from typing import Final

BASELINE: Final = "baseline"
"""The variant every comparison is paired with (variant minus baseline, by seed)."""
ALPHA: Final = 0.05
"""Error rate: 95 % intervals, a table's Holm-adjusted marks, a sequential design's
family-wise alpha, the tests behind seeds-needed, planner and detectable effects."""
POWER: Final = 0.8
"""Power at which seeds needed and minimal detectable effects are computed."""
