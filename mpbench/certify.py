"""`mpbench data certify`: do the controls move as expected by more than the detectable effect?

A benchmark can answer "does the prompt help?" only if it can detect an effect at all. The
controls have known effects: ``static`` (one frame repeated: motion destroyed) must fall to
chance on a motion-only benchmark, ``shuffled`` (frame order permuted per clip) measures how much
of the task needs order, and ``baseline`` is the reference. The minimal detectable effect (MDE)
at the study's seed count n is the smallest true difference that a two-sided paired t-test at
alpha 0.05 finds with power 0.8, for paired differences whose std is sqrt(2) x the baseline's
seed std (two independent seeds' spread; the report's pairs share a seed, so this errs on the
wide side). The benchmark is certified when ``static`` is inside the binomial chance bound of its
test clips and ``baseline - static`` exceeds the MDE.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mpbench._conventions import ALPHA, BASELINE, POWER

CONTROL_VARIANTS: tuple[str, ...] = (BASELINE, "static", "shuffled")


def minimal_detectable_effect(std: float, seeds: int, *, alpha: float = ALPHA) -> float:
    """Smallest mean paired difference a paired t-test over ``seeds`` pairs detects with power
    POWER, for pairs whose difference has std ``sqrt(2) * std`` (NaN for < 2 seeds or no std)."""
    from scipy.optimize import brentq

    from mpbench.report.stats import paired_power

    if seeds < 2 or not std > 0:
        return math.nan
    effect = brentq(lambda d: paired_power(d, seeds, alpha=alpha) - POWER, 1e-6, 1e3)
    return float(effect * math.sqrt(2.0) * std)


@dataclass(frozen=True)
class Certificate:
    """The controls' test top-1 per seed (fractions) and what they say about the benchmark.

    Example:
        >>> c = Certificate({"baseline": [0.9, 0.8], "static": [0.25, 0.2]}, 4, 160, seeds=2)
        >>> c.static_at_chance, c.certified, round(c.mde, 3)
        (True, False, 1.155)
    """

    scores: dict[str, list[float]]
    classes: int
    n_test: int
    seeds: int  # the study's seed count the MDE is computed for

    @property
    def chance(self) -> float:
        """Chance accuracy."""
        return 1.0 / self.classes

    @property
    def bound(self) -> float:
        """Binomial 95 % upper bound of chance on the test clips, Bonferroni over static seeds."""
        from mpbench.data.probe import chance_bound

        runs = max(1, len(self.scores.get("static", [])))
        return chance_bound(n=self.n_test, classes=self.classes, alpha=ALPHA / runs)

    def mean(self, variant: str) -> float:
        """Mean test top-1 of ``variant`` over its seeds."""
        values = self.scores.get(variant) or [math.nan]
        return sum(values) / len(values)

    @property
    def mde(self) -> float:
        """Minimal detectable effect at ``seeds`` seeds from the baseline's seed std."""
        import numpy as np

        base = np.asarray(self.scores.get(BASELINE, []), dtype=float)
        std = float(np.std(base, ddof=1)) if len(base) > 1 else math.nan
        return minimal_detectable_effect(std, self.seeds)

    @property
    def static_at_chance(self) -> bool:
        """Every static run inside the chance bound."""
        static = self.scores.get("static", [])
        return bool(static) and max(static) <= self.bound

    @property
    def certified(self) -> bool:
        """Static at chance and baseline - static larger than the MDE."""
        gap = self.mean(BASELINE) - self.mean("static")
        return self.static_at_chance and gap > self.mde

    def lines(self) -> list[str]:
        """The verdict in words, one fact per line (percentage points)."""
        if not self.scores.get("static"):
            return ["no static control ran, so nothing is certified (`mpbench data certify`)"]
        rows = [
            f"{v}: test top-1 {100 * self.mean(v):.2f} % over {len(s)} seed(s) "
            f"({', '.join(f'{100 * x:.1f}' for x in s)})"
            for v, s in self.scores.items()
        ]
        gap = 100 * (self.mean(BASELINE) - self.mean("static"))
        order = 100 * (self.mean(BASELINE) - self.mean("shuffled"))
        where = "inside" if self.static_at_chance else "ABOVE"
        rows += [
            f"chance {100 * self.chance:.1f} %; static {where}"
            f" the 95 % binomial chance bound {100 * self.bound:.2f} % of {self.n_test} test clips",
            f"minimal detectable effect at {self.seeds} seeds: {100 * self.mde:.2f} points "
            f"(paired t-test, alpha {ALPHA:g}, power {POWER:g}, from the baseline's seed std)",
            f"baseline - static {gap:+.2f} points"
            + (
                f"; baseline - shuffled {order:+.2f} points (what frame order is worth)"
                if self.scores.get("shuffled")
                else " (no shuffled control ran: what frame order is worth is not measured)"
            ),
            "CERTIFIED: the controls move by more than the detectable effect"
            if self.certified
            else "NOT CERTIFIED: the controls do not move by more than the detectable effect",
        ]
        return rows


def control_configs(base: Any, *, seeds: Sequence[int], epochs: int | None) -> list[Any]:
    """One TrialConfig per control variant and seed from ``base`` (``epochs`` overrides)."""
    changes = {} if epochs is None else {"epochs": epochs}
    return [
        base.with_updates(variant=v, seed=s, tav_weight=None, **changes)
        for v in CONTROL_VARIANTS
        for s in seeds
    ]


def run_controls(
    configs: Sequence[Any], *, run_root: Any, on_trial: Callable[[Any, float], None] | None = None
) -> dict[str, list[float]]:
    """Train every config in this process (no MLflow) and collect test top-1 per variant."""
    from pathlib import Path

    from mpbench import tracking as tk
    from mpbench.engine import run_trial

    scores: dict[str, list[float]] = {}
    for cfg in configs:
        cfg = cfg.with_updates(run_dir=str(Path(run_root) / cfg.key()))
        result = run_trial(cfg, experiment=None, progress=False)
        score = float(result.metrics[tk.M_TEST_TOP1])
        scores.setdefault(cfg.variant, []).append(score)
        if on_trial is not None:
            on_trial(cfg, score)
    return scores


def certify(
    base: Any,
    *,
    seeds: int,
    study_seeds: int,
    epochs: int | None = None,
    run_root: Any,
    on_trial: Callable[[Any, float], None] | None = None,
) -> Certificate:
    """Run the controls on ``base`` for ``seeds`` seeds and certify for ``study_seeds``."""
    from mpbench.engine.build import build_data_for

    configs = control_configs(base, seeds=range(seeds), epochs=epochs)
    data = build_data_for(base, seed=base.seed)
    scores = run_controls(configs, run_root=run_root, on_trial=on_trial)
    return Certificate(scores, data.num_classes, data.info["num_test"], seeds=study_seeds)
