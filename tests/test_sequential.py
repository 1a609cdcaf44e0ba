"""The group-sequential decision rule: published boundaries, validation, the decision itself."""

from __future__ import annotations

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
