"""Group-sequential decisions on paired seed differences, with error control over a table.

A comparison (a variant against the baseline run with the same seeds) is looked at after
``looks[0] < looks[1] < ... < looks[-1]`` seeds. At look ``k`` with ``n = looks[k]`` paired
differences ``d`` (oriented so that a positive difference means the variant is better) the
repeated confidence interval is ``mean(d) +- c_k * sd(d) / sqrt(n)``, and the comparison stops

- ``better`` when the interval lies above 0, ``worse`` when it lies below 0,
- ``equivalent`` when it lies inside ``(-margin, +margin)`` (an equivalence stop, TOST),
- ``undecided`` at the last look when none of these holds; ``continue`` before it.

The boundaries are two-sided Lan-DeMets alpha-spending boundaries on the normal scale over the
information fractions ``n_k / n_K``, O'Brien-Fleming type (``spending="obf"``, the default) or
Pocock type (``spending="pocock"``, which spends earlier and stops more often at the first
looks), computed by the recursive numerical integration of gsDesign (PyPI ``gsdesign``);
because few seeds are run, each look's normal boundary is turned into its nominal two-sided
level and applied to the paired t statistic with ``n_k - 1`` degrees of freedom (``c_k`` above
is that t quantile). Every comparison of a table
gets ``alpha / comparisons`` (Bonferroni; no recycling of alpha). docs/statistics.md gives the
procedure, its references and the Monte Carlo evidence that ``python -m
mpbench.report.sequential`` prints.

numpy and scipy only: no torch, no MLflow, no pandas.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from enum import StrEnum
from typing import Any, Final, Literal

import numpy as np
from scipy import optimize, stats

from mpbench._conventions import ALPHA

GRID_R: Final = 18  # gsDesign's default number of grid points per unit of the integration
NEVER: Final = 30.0  # a normal boundary no statistic crosses (its tail is below 1e-190)
CHUNK: Final = 50_000  # simulated comparisons per batch
MAX_PLAN_SEEDS: Final = 1000
CALIBRATION_SIMS: Final = 1_000_000  # null t processes behind each design's calibration
CALIBRATION_SEED: Final = 20_250_106
Dist = Literal["normal", "t3"]
DISTS: Final = ("normal", "t3")
Spending = Literal["obf", "pocock"]
SPENDINGS: Final = ("obf", "pocock")
# the spending functions in words (the report's design sentence, the planner, status)
SPENDING_WORDS: Final = {"obf": "Lan-DeMets O'Brien-Fleming", "pocock": "Lan-DeMets Pocock-type"}


class Verdict(StrEnum):
    """The state of one comparison after a look."""

    BETTER = "better"
    WORSE = "worse"
    EQUIVALENT = "equivalent"
    CONTINUE = "continue"
    UNDECIDED = "undecided"


# integer codes of the vectorised rule, in this order
CODES: Final = (
    Verdict.CONTINUE,
    Verdict.BETTER,
    Verdict.WORSE,
    Verdict.EQUIVALENT,
    Verdict.UNDECIDED,
)
_CONTINUE, _BETTER, _WORSE, _EQUIVALENT, _UNDECIDED = range(5)


def _check_int(name: str, value: object, low: int) -> int:
    """``value`` as an int of at least ``low``, else a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class Design:
    """A group-sequential design for the comparisons of one table.

    Args:
        looks: seed counts at which each comparison is decided, strictly increasing, first >= 2.
        margin: equivalence margin, in the metric's units (> 0).
        alpha: family-wise error rate over the whole table (0 < alpha < 1).
        comparisons: number of comparisons of the table that share ``alpha`` (Bonferroni).
        spending: the Lan-DeMets spending function, ``"obf"`` (O'Brien-Fleming type) or
            ``"pocock"`` (Pocock type).

    Example:
        >>> design = Design.from_seeds(3, 12, 3, margin=0.5, comparisons=6)
        >>> design.looks
        (3, 6, 9, 12)
        >>> decide(design, [1.0, 1.2, 0.9])
        <Verdict.CONTINUE: 'continue'>
    """

    looks: tuple[int, ...]
    _: KW_ONLY
    margin: float
    alpha: float = ALPHA
    comparisons: int = 1
    spending: Spending = "obf"

    def __post_init__(self) -> None:
        """Validate every field, naming the bad value."""
        looks = tuple(_check_int("looks", n, 2) for n in self.looks)
        if not looks or any(b <= a for a, b in itertools.pairwise(looks)):
            raise ValueError(f"looks must be strictly increasing seed counts, got {looks}")
        object.__setattr__(self, "looks", looks)
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha!r}")
        if not (math.isfinite(self.margin) and self.margin > 0):
            raise ValueError(f"margin must be a finite number > 0, got {self.margin!r}")
        object.__setattr__(self, "comparisons", _check_int("comparisons", self.comparisons, 1))
        check_spending(self.spending)

    @classmethod
    def from_seeds(
        cls, min: int, max: int, step: int, *, margin: float, alpha: float = ALPHA,
        comparisons: int = 1, spending: Spending = "obf",
    ) -> Design:  # fmt: skip
        """The design that looks at ``min, min + step, ..., max`` seeds."""
        low, high = _check_int("min", min, 2), _check_int("max", max, 2)
        step = _check_int("step", step, 1)
        if high < low or (high - low) % step:
            raise ValueError(
                f"seeds must run from min to max in whole steps, got min={low}, max={high}, "
                f"step={step}"
            )
        looks = tuple(range(low, high + 1, step))
        return cls(looks, margin=margin, alpha=alpha, comparisons=comparisons, spending=spending)

    @property
    def alpha_per_comparison(self) -> float:
        """The share of ``alpha`` one comparison spends (Bonferroni)."""
        return self.alpha / self.comparisons

    @property
    def max_seeds(self) -> int:
        """Seeds of a comparison that runs to the last look."""
        return self.looks[-1]

    def z_bounds(self) -> tuple[float, ...]:
        """Two-sided Lan-DeMets normal boundaries at :attr:`level`, one per look."""
        return ld_bounds(self.looks, self.level, self.spending)

    def nominal_levels(self) -> tuple[float, ...]:
        """Two-sided nominal significance level of each look's t test."""
        return tuple(2.0 * float(stats.norm.sf(c)) for c in self.z_bounds())

    def t_bounds(self) -> tuple[float, ...]:
        """Critical values of the paired t statistic (``n_k - 1`` df), one per look."""
        return nominal_t_bounds(self.looks, self.level, self.spending)

    @property
    def level(self) -> float:
        """The calibrated spending level behind :meth:`t_bounds` (at most the comparison's)."""
        return calibrated_alpha(self.looks, self.alpha_per_comparison, self.spending)

    def alpha_spent(self) -> tuple[float, ...]:
        """Alpha of one comparison spent up to and including each look."""
        frac = np.asarray(self.looks, dtype=float) / self.max_seeds
        spent = spending_function(self.spending)(frac, self.alpha_per_comparison)
        return tuple(float(a) for a in spent)


def check_spending(spending: object) -> Spending:
    """``spending`` if it names a spending function, else a ValueError naming the choices."""
    if spending not in SPENDINGS:
        raise ValueError(f"spending must be one of {SPENDINGS}, got {spending!r}")
    return spending  # type: ignore[return-value]


def obf_spending(fraction: np.ndarray | float, alpha: float) -> np.ndarray:
    """Two-sided alpha spent by information ``fraction``: Lan-DeMets OBF at alpha/2 per side.

    Per side ``2 - 2 Phi(z_{1 - alpha/4} / sqrt(t))`` (gsDesign's ``sfLDOF`` and rpact's ``asOF``
    at one-sided level alpha/2), twice that over both sides.
    """
    frac = np.asarray(fraction, dtype=float)
    return 4.0 * stats.norm.sf(stats.norm.isf(alpha / 4) / np.sqrt(frac))


def pocock_spending(fraction: np.ndarray | float, alpha: float) -> np.ndarray:
    """Two-sided alpha spent by information ``fraction``: Lan-DeMets Pocock type.

    ``alpha ln(1 + (e - 1) t)``, half of it per side (gsDesign's ``sfLDPocock`` and rpact's
    ``asP`` at one-sided level alpha/2).
    """
    frac = np.asarray(fraction, dtype=float)
    return alpha * np.log1p((math.e - 1.0) * frac)


def spending_words(spending: Spending) -> str:
    """The spending function named ``spending``, in words."""
    return SPENDING_WORDS[check_spending(spending)]


def spending_function(spending: Spending) -> Callable[[np.ndarray | float, float], np.ndarray]:
    """The two-sided spending function named ``spending``."""
    check_spending(spending)
    return obf_spending if spending == "obf" else pocock_spending


def _grid(c: float, info: float, prev: tuple | None, prev_info: float) -> tuple:
    """The continuation density (grid, weights, mass) after a look with boundary ``c``."""
    from gsdesign import h1, hupdate

    a, b = -max(c, 1e-6), max(c, 1e-6)
    if prev is None:
        return h1(r=GRID_R, theta=0.0, info=info, a=a, b=b)
    return hupdate(GRID_R, 0.0, info, a, b, 0.0, prev_info, prev)


def _crossing(c: float, info: float, prev: tuple | None, prev_info: float) -> float:
    """Probability under no difference of continuing to this look and then leaving (-c, c)."""
    if prev is None:
        return 2.0 * float(stats.norm.sf(c))
    z, _, h = prev
    spread = math.sqrt(info - prev_info)
    centre = z * math.sqrt(prev_info)
    up = stats.norm.sf((c * math.sqrt(info) - centre) / spread)
    down = stats.norm.cdf((-c * math.sqrt(info) - centre) / spread)
    return float(h @ (up + down))


def crossing_probabilities(bounds: tuple[float, ...], info: tuple[float, ...]) -> np.ndarray:
    """Per-look probability, under no difference, of first leaving ``(-c_k, c_k)`` at look k."""
    prev, prev_info, out = None, 0.0, []
    for c, i in zip(bounds, info, strict=True):
        out.append(_crossing(c, i, prev, prev_info))
        prev, prev_info = _grid(c, i, prev, prev_info), i
    return np.asarray(out)


def _solve_bound(target: float, info: float, prev: tuple | None, prev_info: float) -> float:
    """The boundary whose crossing probability at this look is ``target``."""
    if _crossing(NEVER, info, prev, prev_info) >= target:
        return NEVER

    def gap(c: float) -> float:
        return math.log(max(_crossing(c, info, prev, prev_info), 1e-300)) - math.log(target)

    return float(optimize.brentq(gap, 0.0, NEVER, xtol=1e-10))


def spent_bounds(info: tuple[float, ...], spent: tuple[float, ...]) -> tuple[float, ...]:
    """Normal-scale two-sided boundaries at information ``info`` that have spent ``spent``
    (cumulative two-sided alpha) by each look."""
    steps = np.diff(np.concatenate([[0.0], np.asarray(spent, dtype=float)]))
    prev, prev_info, bounds = None, 0.0, []
    for target, i in zip(steps, info, strict=True):
        c = _solve_bound(float(target), float(i), prev, prev_info)
        bounds.append(c)
        prev, prev_info = _grid(c, float(i), prev, prev_info), float(i)
    return tuple(bounds)


@functools.lru_cache(maxsize=256)
def ld_bounds(
    looks: tuple[int, ...], alpha: float, spending: Spending = "obf"
) -> tuple[float, ...]:
    """Normal-scale two-sided boundaries spending ``alpha`` by the Lan-DeMets ``spending``."""
    info = np.asarray(looks, dtype=float)
    spent = spending_function(spending)(info / info[-1], alpha)
    return spent_bounds(tuple(float(i) for i in info), tuple(float(a) for a in spent))


def ldobf_bounds(looks: tuple[int, ...], alpha: float) -> tuple[float, ...]:
    """Normal-scale two-sided boundaries spending ``alpha`` by Lan-DeMets O'Brien-Fleming."""
    return ld_bounds(looks, alpha, "obf")


def nominal_t_bounds(
    looks: tuple[int, ...], alpha: float, spending: Spending = "obf"
) -> tuple[float, ...]:
    """Paired-t critical values at the nominal two-sided levels of the normal boundaries."""
    bounds = ld_bounds(looks, alpha, spending)
    return tuple(
        float(stats.t.isf(stats.norm.sf(c), n - 1)) for c, n in zip(bounds, looks, strict=True)
    )


def _moments(values: np.ndarray, looks: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error of the first ``n`` columns for each look ``n``, (rows, looks)."""
    means, ses = [], []
    for n in looks:
        x = values[:, :n]
        means.append(x.mean(axis=1)), ses.append(x.std(axis=1, ddof=1) / math.sqrt(n))
    return np.stack(means, 1), np.stack(ses, 1)


@functools.lru_cache(maxsize=2)  # 1M x looks values each: keep only the latest designs
def _null_t(looks: tuple[int, ...]) -> np.ndarray:
    """|t| at each look of :data:`CALIBRATION_SIMS` comparisons with no difference (fixed seed)."""
    rng = np.random.default_rng(CALIBRATION_SEED)
    parts = []
    for start in range(0, CALIBRATION_SIMS, CHUNK):
        rows = min(CHUNK, CALIBRATION_SIMS - start)
        mean, se = _moments(rng.standard_normal((rows, looks[-1])), looks)
        parts.append((np.abs(mean) / se).astype(np.float32))
    return np.concatenate(parts)


def null_error(looks: tuple[int, ...], bounds: tuple[float, ...]) -> float:
    """Simulated chance that the paired t statistic with no difference ever reaches ``bounds``."""
    return float((_null_t(looks) >= np.asarray(bounds)).any(axis=1).mean())


@functools.lru_cache(maxsize=256)
def calibrated_alpha(looks: tuple[int, ...], alpha: float, spending: Spending = "obf") -> float:
    """Spending level whose nominal t boundaries have a simulated error of at most ``alpha``.

    The t statistics of successive looks are less correlated than the normal ones (each look
    estimates the spread anew), so the nominal levels alone err by up to ~15 % more than
    ``alpha`` with 3-seed first looks; the level is scaled down until the pivotal null t process
    (the same for every mean and spread) errs ``alpha`` less one Monte Carlo standard error.
    """
    if len(looks) == 1:
        return alpha  # one look: the t test is exact
    target = alpha * (1.0 - 1.0 / math.sqrt(CALIBRATION_SIMS * alpha))
    level = alpha
    for _ in range(8):
        error = null_error(looks, nominal_t_bounds(looks, level, spending))
        if abs(error - target) <= 0.25 * target / math.sqrt(CALIBRATION_SIMS * alpha):
            break
        level *= target / max(error, 1.0 / CALIBRATION_SIMS)
    while null_error(looks, nominal_t_bounds(looks, level, spending)) > target:
        level *= 0.995
    return level


@dataclass(frozen=True)
class LookResult:
    """Where one comparison stands: its verdict and the numbers behind it.

    Args:
        verdict: the decision (``continue`` while more seeds are due).
        look: index into ``design.looks`` of the look the verdict rests on (0-based).
        n: seeds (paired differences) the verdict rests on.
        mean: mean paired difference over those seeds.
        low: lower end of the repeated confidence interval at ``1 - alpha_per_comparison``.
        high: upper end of that interval.
        alpha_spent: alpha of this comparison spent up to this look.
        bound: critical value of the paired t statistic used at this look.
        seeds_left: seeds still to run at most (0 once decided).
    """

    verdict: Verdict
    look: int
    n: int
    mean: float
    low: float
    high: float
    alpha_spent: float
    bound: float
    seeds_left: int


def _as_matrix(design: Design, diffs: object) -> np.ndarray:
    """``diffs`` as a 2-D float array whose length is one of the looks, else a ValueError."""
    values = np.asarray(diffs, dtype=float)
    values = values[None, :] if values.ndim == 1 else values
    if values.ndim != 2 or values.shape[1] not in design.looks:
        raise ValueError(
            f"diffs must hold as many paired differences as one of the looks {design.looks}, "
            f"got {values.shape[-1] if values.ndim else 0}"
        )
    if not np.isfinite(values).all():
        raise ValueError("diffs must be finite numbers, got NaN or infinity")
    return values


def _intervals(design: Design, values: np.ndarray) -> tuple[np.ndarray, ...]:
    """Mean, low and high of the repeated interval at each look reached, each (rows, looks)."""
    reached = design.looks[: design.looks.index(values.shape[1]) + 1]
    mean, se = _moments(values, reached)
    half = np.asarray(design.t_bounds()[: len(reached)]) * se
    return mean, mean - half, mean + half


def _classify(low: np.ndarray, high: np.ndarray, margin: float) -> np.ndarray:
    """Verdict codes of intervals: better, worse, equivalent or continue."""
    inside = (low > -margin) & (high < margin)
    code = np.where(inside, _EQUIVALENT, _CONTINUE)
    return np.where(low > 0, _BETTER, np.where(high < 0, _WORSE, code))


def _first_stop(design: Design, low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, ...]:
    """Verdict code and look index of each row: the first look that stops, else the last."""
    codes = _classify(low, high, design.margin)
    stopped = codes != _CONTINUE
    look = np.where(stopped.any(axis=1), stopped.argmax(axis=1), codes.shape[1] - 1)
    code = codes[np.arange(len(codes)), look]
    final = (code == _CONTINUE) & (look == len(design.looks) - 1)
    return np.where(final, _UNDECIDED, code), look


def decide_many(design: Design, diffs: object) -> tuple[np.ndarray, np.ndarray]:
    """Verdict codes (indices into :data:`CODES`) and seeds used of each row of ``diffs``."""
    values = _as_matrix(design, diffs)
    _, low, high = _intervals(design, values)
    code, look = _first_stop(design, low, high)
    return code, np.asarray(design.looks)[look]


def look_state(design: Design, diffs: object) -> LookResult:
    """Where one comparison stands after its paired differences ``diffs`` (one look's worth)."""
    values = _as_matrix(design, np.ravel(np.asarray(diffs, dtype=float)))
    mean, low, high = _intervals(design, values)
    code, look = (int(a[0]) for a in _first_stop(design, low, high))
    verdict, n = CODES[code], design.looks[look]
    return LookResult(
        verdict=verdict,
        look=look,
        n=n,
        mean=float(mean[0, look]),
        low=float(low[0, look]),
        high=float(high[0, look]),
        alpha_spent=design.alpha_spent()[look],
        bound=design.t_bounds()[look],
        seeds_left=design.max_seeds - n if verdict is Verdict.CONTINUE else 0,
    )


def decide(design: Design, diffs: object) -> Verdict:
    """The verdict on one comparison after its paired differences ``diffs``."""
    return look_state(design, diffs).verdict


@dataclass(frozen=True)
class SimResult:
    """Simulated behaviour of one comparison under a true difference.

    Args:
        probs: probability of each final verdict (``continue`` never is one).
        expected_seeds: mean seeds a comparison runs.
        max_seeds: seeds of a comparison that runs to the last look.
        n_sims: simulated comparisons.
    """

    probs: dict[Verdict, float]
    expected_seeds: float
    max_seeds: int
    n_sims: int

    def se(self, verdict: Verdict) -> float:
        """Monte Carlo standard error of ``probs[verdict]``."""
        p = self.probs[verdict]
        return math.sqrt(p * (1 - p) / self.n_sims)


def draw_diffs(
    *, effect: float, sd: float, shape: tuple[int, ...], rng: np.random.Generator, dist: Dist
) -> np.ndarray:
    """Paired differences with mean ``effect`` and standard deviation ``sd``."""
    if dist == "normal":
        noise = rng.standard_normal(shape)
    elif dist == "t3":
        noise = rng.standard_t(3, shape) / math.sqrt(3.0)  # t3 has variance 3
    else:
        raise ValueError(f"dist must be one of {DISTS}, got {dist!r}")
    return effect + sd * noise


def simulate(design: Design, **sim: Any) -> SimResult:
    """Monte Carlo of one comparison with true mean difference ``effect`` and spread ``sd``;
    ``sim`` are the keyword arguments of :func:`simulate_codes` (effect, sd, n_sims, rng, dist)."""
    code, used = simulate_codes(design, **sim)
    counts = np.bincount(code, minlength=len(CODES))
    probs = {v: float(c / len(code)) for v, c in zip(CODES, counts, strict=True)}
    del probs[Verdict.CONTINUE]
    return SimResult(probs, float(used.mean()), design.max_seeds, len(code))


def paired_power(effect: float, n: int, *, alpha: float) -> float:
    """Power of a two-sided paired t-test with ``n`` pairs at standardized effect ``effect``."""
    df = n - 1
    crit = stats.t.ppf(1 - alpha / 2, df)
    nc = effect * math.sqrt(n)
    upper, lower = float(stats.nct.sf(crit, df, nc)), float(stats.nct.cdf(-crit, df, nc))
    # scipy returns NaN for far tails: the opposite tail of a large effect is ~0
    return float(np.nan_to_num(upper) + np.nan_to_num(lower))


def fixed_seeds_for_power(
    effect: float, sd: float, alpha: float, power: float, *, limit: int = 10_000
) -> float:
    """Fewest seeds of a fixed paired t-test design with ``power`` (``inf`` past ``limit``)."""
    if sd == 0.0:
        return 2.0
    std_effect = abs(effect) / sd
    if std_effect == 0.0 or paired_power(std_effect, limit, alpha=alpha) < power:
        return math.inf
    low, high = 1, 2  # power grows with n: double until enough, then bisect (low fails)
    while paired_power(std_effect, high, alpha=alpha) < power:
        low, high = high, 2 * high
    high = min(high, limit)
    while high - low > 1:
        mid = (low + high) // 2
        enough = paired_power(std_effect, mid, alpha=alpha) >= power
        low, high = (low, mid) if enough else (mid, high)
    return float(high)


@dataclass(frozen=True)
class TableSim:
    """Simulated behaviour of a table whose comparisons share one true difference.

    Args:
        any_verdict: fraction of tables in which at least one comparison ends at each verdict.
        any_difference: fraction of tables with at least one ``better`` or ``worse``.
        probs: probability of each verdict for one comparison.
        expected_seeds: mean seeds one comparison runs.
        expected_trials: mean trials of the whole table (variant cells and baseline cells).
        n_studies: simulated tables.
    """

    any_verdict: dict[Verdict, float]
    any_difference: float
    probs: dict[Verdict, float]
    expected_seeds: float
    expected_trials: float
    n_studies: int


def simulate_table(
    design: Design,
    *,
    effect: float,
    sd: float,
    n_studies: int,
    rng: np.random.Generator,
    dist: Dist = "normal",
    baselines: int = 1,
    shared: bool = False,
) -> TableSim:
    """Monte Carlo of ``design.comparisons`` comparisons per table.

    Comparison ``j`` is paired with baseline cell ``j % baselines``; a baseline cell runs as
    many seeds as the longest of its comparisons. The comparisons are independent, or with
    ``shared`` their differences share the baseline cell's noise (correlation 0.5, as when
    variant and baseline runs are equally noisy).
    """
    k = design.comparisons
    baselines = _check_int("baselines", baselines, 1)
    if shared:
        sims = _shared_codes(design, effect=effect, sd=sd, n_studies=n_studies, rng=rng,
                             dist=dist, baselines=baselines)  # fmt: skip
    else:
        sims = simulate_codes(
            design, effect=effect, sd=sd, n_sims=n_studies * k, rng=rng, dist=dist
        )
    code, used = (a.reshape(n_studies, k) for a in sims)
    any_verdict = {v: float((code == i).any(axis=1).mean()) for i, v in enumerate(CODES)}
    probs = {v: float((code == i).mean()) for i, v in enumerate(CODES)}
    groups = [used[:, g::baselines].max(axis=1) for g in range(min(baselines, k))]
    trials = used.sum(axis=1) + np.sum(groups, axis=0)
    for table in (any_verdict, probs):
        del table[Verdict.CONTINUE]
    differs = float(np.isin(code, (_BETTER, _WORSE)).any(axis=1).mean())
    mean_seeds, mean_trials = float(used.mean()), float(trials.mean())
    return TableSim(any_verdict, differs, probs, mean_seeds, mean_trials, n_studies)


def _shared_codes(
    design: Design,
    *,
    effect: float,
    sd: float,
    n_studies: int,
    rng: np.random.Generator,
    dist: Dist,
    baselines: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Verdict codes and seeds of tables whose comparisons share their baseline's noise."""
    k, n = design.comparisons, design.max_seeds
    codes, seeds = [], []
    for start in range(0, n_studies, max(1, CHUNK // k)):
        rows = min(max(1, CHUNK // k), n_studies - start)
        noise = draw_diffs(effect=0.0, sd=1.0, shape=(rows, k + baselines, n), rng=rng, dist=dist)
        base = noise[:, k + np.arange(k) % baselines]  # (rows, k, n): each one's baseline
        diffs = effect + sd * (noise[:, :k] - base) / math.sqrt(2.0)
        code, used = decide_many(design, diffs.reshape(rows * k, n))
        codes.append(code), seeds.append(used)
    return np.concatenate(codes), np.concatenate(seeds)


def simulate_codes(
    design: Design,
    *,
    effect: float,
    sd: float,
    n_sims: int,
    rng: np.random.Generator,
    dist: Dist = "normal",
) -> tuple[np.ndarray, np.ndarray]:
    """Verdict codes and seeds used of ``n_sims`` simulated comparisons."""
    if not sd > 0:
        raise ValueError(f"sd must be > 0, got {sd!r}")
    n_sims = _check_int("n_sims", n_sims, 1)
    codes, seeds = [], []
    for start in range(0, n_sims, CHUNK):
        shape = (min(CHUNK, n_sims - start), design.max_seeds)
        code, used = decide_many(
            design, draw_diffs(effect=effect, sd=sd, shape=shape, rng=rng, dist=dist)
        )
        codes.append(code), seeds.append(used)
    return np.concatenate(codes), np.concatenate(seeds)


def fixed_seeds(
    design: Design, *, effect: float, sd: float, power: float, dist: Dist, rng: np.random.Generator
) -> int:
    """Seeds of the fixed paired t-test (at the design's per-comparison alpha) with ``power``.

    Exact (noncentral t) for normal differences; for ``t3`` the power of each seed count is
    simulated (20,000 tests), starting from the normal seed count.
    """
    alpha = design.alpha_per_comparison
    n = int(fixed_seeds_for_power(effect, sd, alpha, power, limit=MAX_PLAN_SEEDS))
    if dist == "normal":
        return n

    def enough(seeds: int) -> bool:
        one = Design((seeds,), margin=design.margin, alpha=alpha)
        return (
            simulate(one, effect=effect, sd=sd, n_sims=20_000, rng=rng, dist=dist).probs[
                direction(effect)
            ]
            >= power
        )

    while not enough(n):
        n += 1
    while n > 2 and enough(n - 1):
        n -= 1
    return n


def direction(effect: float) -> Verdict:
    """The verdict that detects a true difference of sign ``effect``."""
    return Verdict.WORSE if effect < 0 else Verdict.BETTER


def plan_design(
    *,
    min_seeds: int,
    step: int,
    effect: float,
    sd: float,
    margin: float,
    alpha: float,
    comparisons: int,
    power: float,
    rng: np.random.Generator,
    n_sims: int = 20_000,
    spending: Spending = "obf",
) -> tuple[Design, SimResult]:
    """The fewest max seeds (on the step grid from ``min_seeds``) whose power is ``power``.

    Power is the simulated chance of the right ``better``/``worse`` verdict at ``effect``, less
    two Monte Carlo standard errors; the search starts at the fixed design's seed count.
    """
    fixed = fixed_seeds_for_power(effect, sd, alpha / comparisons, power, limit=MAX_PLAN_SEEDS)
    start = max(min_seeds, int(fixed) if math.isfinite(fixed) else MAX_PLAN_SEEDS)
    top = min_seeds + step * math.ceil((start - min_seeds) / step)
    while top <= MAX_PLAN_SEEDS:
        design = Design.from_seeds(
            min_seeds, top, step, margin=margin, alpha=alpha, comparisons=comparisons,
            spending=spending,
        )  # fmt: skip
        sim = simulate(design, effect=effect, sd=sd, n_sims=n_sims, rng=rng)
        hit = direction(effect)
        if sim.probs[hit] - 2 * sim.se(hit) >= power:
            return design, sim
        top += step
    raise ValueError(
        f"no design with at most {MAX_PLAN_SEEDS} seeds reaches power {power} at effect "
        f"{effect} and sd {sd}"
    )


@dataclass(frozen=True)
class Check:
    """One criterion of the Monte Carlo self-test."""

    name: str
    dist: str
    value: float
    bound: float
    upper: bool  # the value must be at most the bound (else at least)
    detail: str = ""

    @property
    def ok(self) -> bool:
        """Whether the criterion holds."""
        return self.value <= self.bound if self.upper else self.value >= self.bound


SELFTEST: Final = {"margin": 0.5, "sd": 1.0, "alpha": 0.05, "comparisons": 6, "power": 0.8}


def selftest(
    *, n_studies: int = 20_000, seed: int = 0, spending: Spending = "obf"
) -> tuple[Design, list[Check]]:
    """The Monte Carlo evidence of docs/statistics.md: error rates, power and seeds saved."""
    rng = np.random.default_rng(seed)
    margin, sd, alpha = SELFTEST["margin"], SELFTEST["sd"], SELFTEST["alpha"]
    power, k = SELFTEST["power"], int(SELFTEST["comparisons"])
    design, _ = plan_design(
        min_seeds=3, step=3, effect=2 * margin, sd=sd, margin=margin, alpha=alpha,
        comparisons=k, power=power, rng=rng, spending=spending,
    )  # fmt: skip
    checks = []
    for dist in DISTS:
        checks += _dist_checks(design, dist=dist, n_studies=n_studies, rng=rng)
    return design, checks


def _dist_checks(
    design: Design, *, dist: Dist, n_studies: int, rng: np.random.Generator
) -> list[Check]:
    """The four criteria under one distribution of the paired differences."""
    m, sd, alpha = design.margin, SELFTEST["sd"], design.alpha

    def run(effect: float, shared: bool = False) -> TableSim:
        return simulate_table(
            design, effect=effect, sd=sd, n_studies=n_studies, rng=rng, dist=dist, shared=shared
        )

    null, at_margin, at_twice = run(0.0), run(m), run(2 * m)
    fw, fw_shared = null.any_difference, run(0.0, shared=True).any_difference
    se = math.sqrt(alpha * (1 - alpha) / n_studies)
    got = at_twice.probs[Verdict.BETTER]
    fixed = fixed_seeds(design, effect=2 * m, sd=sd, power=got, dist=dist, rng=rng)
    return [
        Check("family-wise better/worse, no difference", dist, fw, alpha + 2 * se, True),
        Check("family-wise better/worse, shared baseline", dist, fw_shared, alpha + 2 * se, True),
        Check("family-wise equivalent, difference = margin", dist,
              at_margin.any_verdict[Verdict.EQUIVALENT], alpha, True),
        Check("power, difference = 2 x margin", dist, got, SELFTEST["power"], False),
        Check("seeds saved vs fixed design of equal power", dist,
              1.0 - at_twice.expected_seeds / fixed, 0.25, False,
              f"expected {at_twice.expected_seeds:.2f} seeds vs fixed {fixed}"),
    ]  # fmt: skip


def selftest_lines(design: Design, checks: list[Check]) -> list[str]:
    """The self-test as printed (and quoted in docs/statistics.md)."""
    looks, alpha = design.looks, design.alpha_per_comparison
    nominal = null_error(looks, nominal_t_bounds(looks, alpha, design.spending))
    calibrated = null_error(looks, design.t_bounds())
    lines = [
        f"design: {design.spending} spending, looks {looks}, alpha {design.alpha} over "
        f"{design.comparisons} comparisons (Bonferroni, {alpha:.5f} each), margin "
        f"{design.margin}, sd {SELFTEST['sd']}",
        f"t bounds: {', '.join(f'{b:.3f}' for b in design.t_bounds())}",
        f"null error of one comparison ({CALIBRATION_SIMS} t processes): nominal levels "
        f"{nominal:.5f}, calibrated level {design.level:.5f}: {calibrated:.5f}",
    ]
    for c in checks:
        sign, state = ("<=" if c.upper else ">="), ("ok" if c.ok else "FAILS")
        text = f"{c.dist:6s} {c.name:45s} {c.value:.4f} {sign} {c.bound:.4f}  {state}"
        lines.append(f"{text} {c.detail}".rstrip())
    return lines


def main(argv: list[str] | None = None) -> None:
    """Print the self-test of each spending function named in ``argv`` (default both):
    ``python -m mpbench.report.sequential [obf] [pocock]``."""
    import sys

    names = (sys.argv[1:] if argv is None else argv) or list(SPENDINGS)
    for i, name in enumerate(names):
        print(*([""] if i else []), *selftest_lines(*selftest(spending=check_spending(name))),
              sep="\n")  # fmt: skip


if __name__ == "__main__":
    main()
