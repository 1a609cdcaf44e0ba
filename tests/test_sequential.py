"""The group-sequential decision rule: published boundaries, validation, the decision itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mpbench.report import sequential as sq

# Lan-DeMets O'Brien-Fleming spending, two-sided alpha 0.05 (one-sided 0.025 per side), equally
# spaced looks: gsDesign::gsDesign(k, test.type = 2, sfu = sfLDOF)$upper$bound and
# rpact::getDesignGroupSequential(kMax = k, alpha = 0.05, sided = 2, typeOfDesign = "asOF")
# (also the boundaries of Freidlin and Korn 2009, Clinical Trials 6:119, for K = 2, 3, 4).
LDOBF = {
    2: (2.9626, 1.9686),
    3: (3.7103, 2.5114, 1.9930),
    4: (4.3326, 2.9631, 2.3590, 2.0141),
    5: (4.8769, 3.3569, 2.6803, 2.2898, 2.0310),
}


@pytest.mark.parametrize("looks", sorted(LDOBF))
def test_ldobf_boundaries_match_published_values(looks: int) -> None:
    bounds = sq.ldobf_bounds(tuple(range(4, 4 * looks + 1, 4)), 0.05)
    np.testing.assert_allclose(bounds, LDOBF[looks], atol=1.5e-4)


# Lan-DeMets Pocock-type spending, one-sided alpha 0.025, information rates 0.4 and 0.7 (the
# final look short of full information): rpact's unit test of
# getDesignGroupSequential(informationRates = c(0.4, 0.7), typeOfDesign = "asP") (x6b in
# rpact's tests/testthat/test-f_design_group_sequential.R) expects alphaSpent 0.013078429,
# 0.0197432 and criticalValues 2.223875, 2.3050796. Two-sided at 0.05 the boundaries agree to
# 1e-6: crossing the far boundary first is negligible at |z| > 2.
ASP_RATES, ASP_SPENT, ASP_BOUNDS = (0.4, 0.7), (0.013078429, 0.0197432), (2.223875, 2.3050796)


def test_pocock_spending_matches_published_values() -> None:
    spent = sq.pocock_spending(np.asarray(ASP_RATES), 0.05)
    np.testing.assert_allclose(spent / 2, ASP_SPENT, rtol=1e-7)
    bounds = sq.spent_bounds(ASP_RATES, tuple(spent))
    np.testing.assert_allclose(bounds, ASP_BOUNDS, atol=1e-5)
    assert sq.pocock_spending(1.0, 0.05) == pytest.approx(0.05)


def test_pocock_boundaries_agree_with_the_canonical_joint_normal() -> None:
    from scipy import stats

    looks = (3, 6, 9, 12)
    bounds = np.asarray(sq.ld_bounds(looks, 0.05, "pocock"))
    corr = np.sqrt(np.minimum.outer(looks, looks) / np.maximum.outer(looks, looks))
    inside = stats.multivariate_normal(mean=np.zeros(4), cov=corr).cdf(
        bounds, lower_limit=-bounds, rng=np.random.default_rng(0)
    )
    assert 1.0 - inside == pytest.approx(0.05, abs=2e-4)
    # Pocock type: nearly flat boundaries, OBF type: steeply falling ones
    assert bounds.max() - bounds.min() < 0.05
    assert sq.ld_bounds(looks, 0.05, "obf")[0] > bounds[0] + 1.5


def test_spending_is_carried_by_the_design() -> None:
    obf = sq.Design.from_seeds(3, 12, 3, margin=0.5, comparisons=2)
    pocock = sq.Design.from_seeds(3, 12, 3, margin=0.5, comparisons=2, spending="pocock")
    assert (obf.spending, pocock.spending) == ("obf", "pocock")
    assert pocock.alpha_spent()[0] > 5 * obf.alpha_spent()[0]  # Pocock spends early
    assert pocock.alpha_spent()[-1] == pytest.approx(0.025)
    assert pocock.t_bounds()[0] < obf.t_bounds()[0]
    assert obf.t_bounds() == sq.nominal_t_bounds(obf.looks, obf.level)  # OBF stays the default
    assert sq.spending_words("pocock") == "Lan-DeMets Pocock-type"
    with pytest.raises(ValueError, match=r"spending must be one of \('obf', 'pocock'\), got 'x'"):
        sq.Design((3, 6), margin=0.5, spending="x")  # type: ignore[arg-type]


def test_from_seeds_builds_the_looks() -> None:
    design = sq.Design.from_seeds(3, 12, 3, margin=0.5, comparisons=6)
    assert design.looks == (3, 6, 9, 12)
    assert design.alpha_per_comparison == pytest.approx(0.05 / 6)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"looks": (3, 3)}, "strictly increasing"),
        ({"looks": (1, 3)}, "looks must be an integer >= 2, got 1"),
        ({"alpha": 1.5}, r"alpha must be in \(0, 1\), got 1.5"),
        ({"margin": 0.0}, "margin must be a finite number > 0, got 0.0"),
        ({"comparisons": 0}, "comparisons must be an integer >= 1, got 0"),
    ],
)
def test_design_names_the_bad_value(kwargs: dict, match: str) -> None:
    args = {"looks": (3, 6), "margin": 0.5} | kwargs
    with pytest.raises(ValueError, match=match):
        sq.Design(args.pop("looks"), **args)


def test_diffs_must_be_one_look_long() -> None:
    design = sq.Design((3, 6), margin=0.5)
    with pytest.raises(ValueError, match=r"one of the looks \(3, 6\), got 4"):
        sq.decide(design, [0.1, 0.2, 0.3, 0.4])


def test_verdicts_follow_the_repeated_interval() -> None:
    design = sq.Design((3, 6), margin=0.5)
    rng = np.random.default_rng(0)
    assert sq.decide(design, rng.normal(0.0, 1.0, 3)) is sq.Verdict.CONTINUE
    assert sq.decide(design, rng.normal(5.0, 0.1, 6)) is sq.Verdict.BETTER
    assert sq.decide(design, rng.normal(-5.0, 0.1, 6)) is sq.Verdict.WORSE
    assert sq.decide(design, rng.normal(0.0, 0.01, 6)) is sq.Verdict.EQUIVALENT
    assert sq.decide(design, rng.normal(0.0, 1.0, 6)) is sq.Verdict.UNDECIDED


def test_boundaries_agree_with_the_canonical_joint_normal() -> None:
    from scipy import stats

    looks = (3, 6, 9)
    bounds = np.asarray(sq.ldobf_bounds(looks, 0.05))
    corr = np.sqrt(np.minimum.outer(looks, looks) / np.maximum.outer(looks, looks))
    inside = stats.multivariate_normal(mean=np.zeros(3), cov=corr).cdf(
        bounds, lower_limit=-bounds, rng=np.random.default_rng(0)
    )
    assert 1.0 - inside == pytest.approx(0.05, abs=2e-4)
    spent = sq.crossing_probabilities(tuple(bounds), tuple(float(n) for n in looks)).cumsum()
    np.testing.assert_allclose(spent, sq.obf_spending(np.asarray(looks) / 9, 0.05), rtol=1e-6)


def test_classic_obrien_fleming_through_the_same_integration() -> None:
    # Jennison and Turnbull (2000), Table 2.3: C_B(K, 0.05) = 1.977, 2.004, 2.024, 2.040
    from scipy import optimize

    for k, published in zip(range(2, 6), (1.977, 2.004, 2.024, 2.040), strict=True):
        shape = np.sqrt(k / np.arange(1, k + 1))
        info = tuple(float(i) for i in range(1, k + 1))

        def error(c: float, shape: np.ndarray = shape, info: tuple = info) -> float:
            return sq.crossing_probabilities(tuple(c * shape), info).sum() - 0.05

        assert optimize.brentq(error, 1.5, 3.0) == pytest.approx(published, abs=6e-4)


def test_nominal_t_levels_err_above_alpha_and_calibration_repairs_it() -> None:
    looks, alpha = (3, 6, 9, 12, 15, 18), 0.05 / 6
    nominal = sq.null_error(looks, sq.nominal_t_bounds(looks, alpha))
    assert nominal > 1.03 * alpha  # the reason for the calibration
    level = sq.calibrated_alpha(looks, alpha)
    assert level < alpha
    assert sq.null_error(looks, sq.nominal_t_bounds(looks, level)) <= alpha
    assert sq.calibrated_alpha((17,), alpha) == alpha  # one look: the t test is exact


def test_vectorised_rule_agrees_with_decide() -> None:
    design = sq.Design((3, 6, 9), margin=0.3)
    rng = np.random.default_rng(3)
    diffs = rng.normal(rng.choice([0.0, 0.5, 2.0], (400, 1)), rng.choice([0.05, 1.0], (400, 1)))
    diffs = diffs * np.ones((1, 9))
    diffs += rng.normal(0.0, 0.2, diffs.shape)
    codes, seeds = sq.decide_many(design, diffs)
    states = [sq.look_state(design, row) for row in diffs]
    assert [sq.CODES[c] for c in codes] == [s.verdict for s in states]
    assert list(seeds) == [s.n for s in states]
    assert {s.verdict for s in states} == set(sq.Verdict) - {sq.Verdict.CONTINUE}


def test_look_state_reports_the_look_it_rests_on() -> None:
    design = sq.Design((3, 6, 9), margin=0.1, comparisons=2)
    going = sq.look_state(design, [0.1, -0.2, 0.3, 0.0, 0.2, -0.1])
    assert going.verdict is sq.Verdict.CONTINUE
    assert (going.look, going.n, going.seeds_left) == (1, 6, 3)
    assert going.bound == design.t_bounds()[1]
    assert going.alpha_spent == pytest.approx(sq.obf_spending(6 / 9, 0.025))
    assert going.low < going.mean < going.high
    stopped = sq.look_state(design, [3.0, 3.1, 2.9, 3.0, 3.05, 2.95, 0.0, -9.0, 9.0])
    assert (stopped.verdict, stopped.n, stopped.seeds_left) == (sq.Verdict.BETTER, 6, 0)
    assert design.alpha_spent()[-1] == pytest.approx(0.025)


def test_fixed_seeds_for_power_is_the_noncentral_t_count() -> None:
    assert sq.fixed_seeds_for_power(1.0, 1.0, 0.05, 0.8) == 10  # power 0.803 at 10 pairs
    assert sq.paired_power(1.0, 9, alpha=0.05) < 0.8
    assert sq.fixed_seeds_for_power(0.0, 1.0, 0.05, 0.8) == float("inf")


def test_simulate_names_bad_arguments() -> None:
    design, rng = sq.Design((3, 6), margin=0.5), np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"sd must be > 0, got 0\.0"):
        sq.simulate(design, effect=0.0, sd=0.0, n_sims=10, rng=rng)
    with pytest.raises(ValueError, match=r"dist must be one of \('normal', 't3'\), got 'cauchy'"):
        sq.simulate(design, effect=0.0, sd=1.0, n_sims=10, rng=rng, dist="cauchy")  # type: ignore[arg-type]


# --- the Monte Carlo of issue 25's "Done when" (printed by python -m mpbench.report.sequential)


@pytest.fixture(scope="module", params=sq.SPENDINGS)
def run_selftest(request: pytest.FixtureRequest) -> tuple[sq.Design, list[sq.Check]]:
    return sq.selftest(spending=request.param)


@pytest.fixture(scope="module")
def selftest(run_selftest) -> tuple[sq.Design, dict[tuple[str, str], sq.Check]]:
    design, checks = run_selftest
    return design, {(c.dist, c.name): c for c in checks}


def test_docs_quote_the_selftest(run_selftest, selftest) -> None:
    docs = (Path(__file__).resolve().parents[1] / "docs" / "statistics.md").read_text()
    for line in sq.selftest_lines(*run_selftest):
        assert line in docs
    saved = {d: selftest[1][(d, "seeds saved vs fixed design of equal power")] for d in sq.DISTS}
    prose = " ".join(docs.split())
    design = run_selftest[0]
    name = {"obf": "O'Brien-Fleming", "pocock": "Pocock-type"}[design.spending]
    assert (
        f"{name} design saves {100 * saved['normal'].value:.1f} % of the fixed design's seeds"
        in prose
    )
    assert f"{100 * saved['t3'].value:.1f} % with t3 differences" in prose
    if design.spending == "obf":
        nominal = sq.null_error(design.looks, sq.nominal_t_bounds(design.looks, 0.05 / 6))
        assert f"{nominal:.5f} against {0.05 / 6:.5f} for looks 3, 6, ..., 18" in prose


@pytest.mark.parametrize("baseline", ["no difference", "shared baseline"])
@pytest.mark.parametrize("dist", sq.DISTS)
def test_family_wise_false_difference_is_at_most_alpha(selftest, dist: str, baseline: str) -> None:
    check = selftest[1][(dist, f"family-wise better/worse, {baseline}")]
    assert check.value <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / 20_000)


@pytest.mark.parametrize("dist", sq.DISTS)
def test_false_equivalence_at_the_margin_is_at_most_alpha(selftest, dist: str) -> None:
    assert selftest[1][(dist, "family-wise equivalent, difference = margin")].value <= 0.05


@pytest.mark.parametrize("dist", sq.DISTS)
def test_power_at_twice_the_margin_at_the_planners_seed_count(selftest, dist: str) -> None:
    design, checks = selftest
    # Pocock-type spending pays for its early stops with a larger maximum
    assert (
        design.looks
        == {"obf": (3, 6, 9, 12, 15, 18), "pocock": tuple(range(3, 22, 3))}[design.spending]
    )
    assert checks[(dist, "power, difference = 2 x margin")].value >= 0.8


OBF_SAVING = pytest.mark.xfail(
    reason="at power 0.8 with 3-seed first looks, O'Brien-Fleming spending saves ~15 % of the "
    "fixed design's seeds with normal differences at the design effect and Pocock-type spending "
    "~10 %, not 25 %: see docs/statistics.md",
    strict=True,
)


@pytest.mark.parametrize("dist", [pytest.param("normal", marks=OBF_SAVING), "t3"])
def test_expected_seeds_a_quarter_below_the_fixed_design(selftest, dist: str) -> None:
    assert selftest[1][(dist, "seeds saved vs fixed design of equal power")].value >= 0.25


def test_seeds_saved_as_printed(selftest) -> None:
    saved = {d: selftest[1][(d, "seeds saved vs fixed design of equal power")] for d in sq.DISTS}
    assert all(0.0 < c.value < 1.0 for c in saved.values())
    assert all("expected" in c.detail for c in saved.values())


def test_calibration_is_deterministic() -> None:
    looks, alpha = (3, 5, 7), 0.01
    first = sq.calibrated_alpha(looks, alpha)
    sq.calibrated_alpha.cache_clear()
    sq._null_t.cache_clear()
    assert sq.calibrated_alpha(looks, alpha) == first


def test_no_spread_gives_a_point_interval_and_nan_is_refused() -> None:
    design = sq.Design((3, 6), margin=0.5)
    same = sq.look_state(design, [0.25, 0.25, 0.25])
    assert (same.verdict, same.low, same.high) == (sq.Verdict.BETTER, 0.25, 0.25)
    assert sq.decide(design, [0.0, 0.0, 0.0]) is sq.Verdict.EQUIVALENT
    with pytest.raises(ValueError, match="diffs must be finite numbers, got NaN or infinity"):
        sq.decide(design, [0.1, float("nan"), 0.2])
