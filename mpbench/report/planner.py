"""The planner of a sequential grid: what its design will do, before anything runs.

For the table's comparisons (each variant grid point against the baseline point with the same
other axes) it simulates the group-sequential design of :mod:`mpbench.report.sequential` at a
true difference of 0, of the margin and of the planned effect (default twice the margin): the
probability of each verdict, the expected and maximum seeds of one comparison and the trials of
the whole table, beside the fixed design that has the same power at the planned effect.
numpy and scipy only, like the decision rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from scipy import optimize

from mpbench._conventions import BASELINE, POWER
from mpbench.report import sequential as sq

PLAN_SIMS: Final = 20_000  # simulated tables per true difference
PLAN_SEED: Final = 0


@dataclass(frozen=True)
class Scenario:
    """The design's behaviour at one true difference.

    Args:
        effect: the true mean paired difference.
        sim: the simulated table at that difference.
    """

    effect: float
    sim: sq.TableSim


@dataclass(frozen=True)
class Plan:
    """A simulated sequential design beside the fixed design of equal power.

    Args:
        design: the study's design.
        effect: the planned effect (a true difference the table should detect).
        sd: the assumed standard deviation of the paired differences.
        power: the simulated power of the design at ``effect``.
        target_power: the ``[resolve] power`` the study asks for.
        baselines: baseline cells the comparisons are paired with.
        scenarios: the design at a true difference of 0, the margin and ``effect``.
        fixed_seeds: seeds per cell of the fixed design with ``power`` at ``effect``.
        needed_max: the fewest max seeds (same min and step) with ``target_power``.
        hours_per_trial: mean compute of one trial, None when unknown.
    """

    design: sq.Design
    effect: float
    sd: float
    power: float
    target_power: float
    baselines: int
    scenarios: tuple[Scenario, ...]
    fixed_seeds: int
    needed_max: int | None
    hours_per_trial: float | None

    @property
    def fixed_trials(self) -> int:
        """Trials of the whole table in the fixed design."""
        return self.fixed_seeds * (self.design.comparisons + self.baselines)

    @property
    def max_trials(self) -> int:
        """Trials of the whole table when every comparison runs to the last look."""
        return self.design.max_seeds * (self.design.comparisons + self.baselines)


def study_design(spec: Any, source: str) -> tuple[sq.Design, int]:
    """The sequential design of a grid study (one comparison per non-baseline grid point) and
    its number of baseline cells."""
    from mpbench.study.spec import grid_points

    schedule, resolve = getattr(spec, "schedule", None), getattr(spec, "resolve", None)
    if schedule is None or resolve is None or resolve.margin is None:
        raise ValueError(
            f"{source}: not a sequential grid: it needs [grid] seeds = "
            "{ min = 3, max = 12, step = 3 } and a [resolve] table with a margin"
        )
    variants = [c.variant for c in grid_points(spec)]
    baselines = variants.count(BASELINE)
    if not baselines or baselines == len(variants):
        raise ValueError(
            f"{source}: [grid] variant must hold {BASELINE!r} and at least one other variant "
            f"(the comparisons are variant minus {BASELINE!r}), got {sorted(set(variants))}"
        )
    design = sq.Design.from_seeds(
        schedule.min, schedule.max, schedule.step, margin=resolve.margin, alpha=resolve.alpha,
        comparisons=len(variants) - baselines, spending=resolve.spending,
    )  # fmt: skip
    return design, baselines


def expected_cells(spec: Any) -> tuple[float | None, str]:
    """The expected cells of a sequential grid at the planner's defaults (a true difference of
    twice the margin, the spread the max seeds resolve at ``[resolve] power``) and those
    assumptions in words; None and why when the design cannot be planned."""
    try:
        design, baselines = study_design(spec, spec.source)
        p = plan(design, power=spec.resolve.power, baselines=baselines)
    except ValueError as exc:
        return None, f"run `mpbench plan` for the expected count ({exc})"
    at = p.scenarios[-1]
    return at.sim.expected_trials, (
        f"mpbench plan's defaults: true difference {at.effect:g} (twice the margin), sd of the "
        f"paired differences {p.sd:.4g}, normal differences; `mpbench plan --effect E --sd S` "
        "for others"
    )


def resolvable_sd(design: sq.Design, *, effect: float, power: float) -> float:
    """The largest spread at which a fixed design with the max seeds has ``power`` at ``effect``."""
    alpha, n = design.alpha_per_comparison, design.max_seeds

    def gap(d: float) -> float:
        return sq.paired_power(d, n, alpha=alpha) - power

    return abs(effect) / float(optimize.brentq(gap, 1e-6, 100.0))


def plan(
    design: sq.Design,
    *,
    effect: float | None = None,
    sd: float | None = None,
    power: float = POWER,
    baselines: int = 1,
    min_step: tuple[int, int] | None = None,
    hours_per_trial: float | None = None,
    n_studies: int = PLAN_SIMS,
    seed: int = PLAN_SEED,
) -> Plan:
    """Simulate ``design`` (``effect`` default twice the margin, ``sd`` default the resolvable)."""
    effect = 2.0 * design.margin if effect is None else float(effect)
    if effect == 0.0:
        raise ValueError("effect must be a non-zero difference to detect, got 0")
    sd = resolvable_sd(design, effect=effect, power=power) if sd is None else float(sd)
    if not sd > 0:
        raise ValueError(f"sd must be > 0, got {sd!r}")
    rng = np.random.default_rng(seed)
    scenarios = tuple(
        Scenario(e, sq.simulate_table(
            design, effect=e, sd=sd, n_studies=n_studies, rng=rng, baselines=baselines))
        for e in (0.0, math.copysign(design.margin, effect), effect)
    )  # fmt: skip
    got = scenarios[-1].sim.probs[sq.direction(effect)]
    fixed = sq.fixed_seeds(design, effect=effect, sd=sd, power=got, dist="normal", rng=rng)
    return Plan(
        design=design, effect=effect, sd=sd, power=got, target_power=power,
        baselines=baselines, scenarios=scenarios, fixed_seeds=fixed,
        needed_max=_needed_max(design, min_step, effect=effect, sd=sd, power=power, rng=rng),
        hours_per_trial=hours_per_trial,
    )  # fmt: skip


def _needed_max(
    design: sq.Design,
    min_step: tuple[int, int] | None,
    *,
    effect: float,
    sd: float,
    power: float,
    rng: np.random.Generator,
) -> int | None:
    """The planner's max seeds for ``power`` on the study's min/step grid (None: no grid)."""
    if min_step is None:
        return None
    found, _ = sq.plan_design(
        min_seeds=min_step[0], step=min_step[1], effect=effect, sd=sd, margin=design.margin,
        alpha=design.alpha, comparisons=design.comparisons, power=power, rng=rng,
        spending=design.spending,
    )  # fmt: skip
    return found.max_seeds


def _hours(trials: float, hours: float | None) -> str:
    """``trials`` in trial-hours, or a dash when the hours per trial are unknown."""
    return "-" if hours is None else f"{trials * hours:.1f}"


def plan_rows(p: Plan) -> list[dict[str, str]]:
    """One row per true difference and one for the fixed design, as printable strings."""
    rows = []
    for s in p.scenarios:
        probs = {v.value: f"{s.sim.probs[v]:.3f}" for v in s.sim.probs}
        rows.append({
            "design": "sequential", "true diff": f"{s.effect:g}", **probs,
            "mean seeds": f"{s.sim.expected_seeds:.2f}", "max seeds": str(p.design.max_seeds),
            "mean trials": f"{s.sim.expected_trials:.1f}", "max trials": str(p.max_trials),
            "mean trial-h": _hours(s.sim.expected_trials, p.hours_per_trial),
        })  # fmt: skip
    rows.append({
        "design": "fixed", "true diff": "any",
        "mean seeds": str(p.fixed_seeds), "max seeds": str(p.fixed_seeds),
        "mean trials": str(p.fixed_trials), "max trials": str(p.fixed_trials),
        "mean trial-h": _hours(p.fixed_trials, p.hours_per_trial),
    })  # fmt: skip
    return rows


def plan_notes(p: Plan) -> list[str]:
    """The lines printed under the planner's table."""
    d = p.design
    saved = 1.0 - p.scenarios[-1].sim.expected_seeds / p.fixed_seeds
    lines = [
        f"design: looks {d.looks}, family-wise alpha {d.alpha} split over {d.comparisons} "
        f"comparison(s) (Bonferroni), {sq.spending_words(d.spending)} alpha spending, margin "
        f"{d.margin:g}, {p.baselines} baseline cell(s)",
        f"assumed: effect {p.effect:g}, sd of the paired differences {p.sd:.4g}; "
        f"{PLAN_SIMS} simulated tables per true difference (normal differences, seed {PLAN_SEED})",
        f"power at the effect: {p.power:.3f} (target {p.target_power}); the fixed design has the "
        f"same power; expected seeds at the effect {100 * saved:.1f} % below it",
    ]
    if p.needed_max is not None and p.needed_max != d.max_seeds:
        lines.append(
            f"for power {p.target_power} at this effect and sd the planner's max seeds is "
            f"{p.needed_max} (the study has {d.max_seeds})"
        )
    if p.hours_per_trial is None:
        lines.append("trial-hours: give --hours-per-trial H, or --probe to time the trials")
    return lines
