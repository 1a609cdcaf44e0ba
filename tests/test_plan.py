"""``mpbench plan``: the planner's simulation of a sequential grid, and its command line."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mpbench.cli import app
from mpbench.report import planner
from mpbench.report import sequential as sq
from mpbench.study import spec as spec_module

REPO = Path(__file__).resolve().parents[1]
SEQUENTIAL_SCHEMA = pytest.mark.skipif(
    not hasattr(spec_module, "SeedSchedule"), reason="needs [grid] seeds = { min, max, step }"
)


def test_plan_simulates_each_true_difference_beside_the_fixed_design() -> None:
    design = sq.Design.from_seeds(3, 12, 3, margin=0.5, comparisons=2)
    p = planner.plan(design, sd=1.0, baselines=1, min_step=(3, 3), hours_per_trial=2.0)
    assert [s.effect for s in p.scenarios] == [0.0, 0.5, 1.0]
    for s in p.scenarios:
        assert sum(s.sim.probs.values()) == pytest.approx(1.0)
        assert 3 <= s.sim.expected_seeds <= 12
        assert 2 * s.sim.expected_seeds <= s.sim.expected_trials <= p.max_trials == 36
    assert p.power == p.scenarios[-1].sim.probs[sq.Verdict.BETTER]
    alpha = design.alpha_per_comparison
    assert p.fixed_seeds == sq.fixed_seeds_for_power(1.0, 1.0, alpha, p.power)
    assert p.fixed_trials == 3 * p.fixed_seeds
    rows = planner.plan_rows(p)
    assert rows[-1]["mean trial-h"] == f"{2.0 * p.fixed_trials:.1f}"
    assert p.needed_max is not None and p.needed_max % 3 == 0


def test_default_sd_is_the_one_the_max_seeds_resolve() -> None:
    design = sq.Design.from_seeds(3, 12, 3, margin=0.5, comparisons=2)
    sd = planner.resolvable_sd(design, effect=1.0, power=0.8)
    power = sq.paired_power(1.0 / sd, 12, alpha=design.alpha_per_comparison)
    assert power == pytest.approx(0.8, abs=1e-6)
    assert planner.plan(design, power=0.8).sd == pytest.approx(sd)


def test_planners_seed_count_has_the_power() -> None:
    found, sim = sq.plan_design(
        min_seeds=3, step=3, effect=1.0, sd=1.0, margin=0.5, alpha=0.05, comparisons=6,
        power=0.8, rng=np.random.default_rng(1),
    )  # fmt: skip
    assert sim.probs[sq.Verdict.BETTER] - 2 * sim.se(sq.Verdict.BETTER) >= 0.8
    smaller = sq.Design.from_seeds(3, found.max_seeds - 3, 3, margin=0.5, comparisons=6)
    below = sq.simulate(smaller, effect=1.0, sd=1.0, n_sims=20_000, rng=np.random.default_rng(2))
    assert below.probs[sq.Verdict.BETTER] < 0.8 + 4 * below.se(sq.Verdict.BETTER)


def test_plan_of_a_fixed_grid_is_a_user_error() -> None:
    res = CliRunner().invoke(app, ["plan", str(REPO / "studies" / "paper_ablation.toml")])
    assert res.exit_code == 2
    assert "paper_ablation.toml: not a sequential grid: it needs [grid] seeds = {" in res.output


def _sequential_study(folder: Path) -> Path:
    path = folder / "seq.toml"
    path.write_text(
        textwrap.dedent(
            """
            name = "seq"
            [base]
            backbone = "x3d_xs"
            size = "tiny"
            dataset = "synth"
            [grid]
            variant = ["baseline", "learnable", "fixed"]
            seeds = { min = 3, max = 9, step = 3 }
            [resolve]
            margin = 0.02
            """
        )
    )
    return path


@SEQUENTIAL_SCHEMA
def test_plan_prints_verdicts_seeds_and_trial_hours(tmp_path: Path) -> None:
    args = ["plan", str(_sequential_study(tmp_path)), "--sd", "0.02", "--hours-per-trial", "0.5"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "plan of seq: 2 comparison(s)" in res.output
    assert "looks (3, 6, 9), family-wise alpha 0.05 split over 2 comparison(s)" in res.output
    assert re.search(r"│ fixed +│ +any │ +9 │ +9 │ +27 │ +27 │ +13\.5 │", res.output)
    assert "Lan-DeMets O'Brien-Fleming alpha spending" in res.output
    res = CliRunner().invoke(app, [*args[:4], "--hours-per-trial", "0"])
    assert res.exit_code == 2 and "--hours-per-trial must be > 0, got 0.0" in res.output


@SEQUENTIAL_SCHEMA
def test_plan_carries_the_pocock_type_spending(tmp_path: Path) -> None:
    path = _sequential_study(tmp_path)
    path.write_text(path.read_text() + 'spending = "pocock"\n')
    design, baselines = planner.study_design(spec_module.read_study(path), str(path))
    assert (design.spending, design.looks, design.comparisons, baselines) == (
        "pocock",
        (3, 6, 9),
        2,
        1,
    )
    res = CliRunner().invoke(app, ["plan", str(path), "--sd", "0.02"])
    assert res.exit_code == 0, res.output
    assert "(Bonferroni), Lan-DeMets Pocock-type alpha spending, margin 0.02" in res.output
    # the planner's max seeds for power 0.8 is searched with the same spending
    p = planner.plan(design, sd=0.02, baselines=1, min_step=(3, 3))
    found, _ = sq.plan_design(
        min_seeds=3, step=3, effect=0.04, sd=0.02, margin=0.02, alpha=0.05, comparisons=2,
        power=0.8, rng=np.random.default_rng(0), spending="pocock",
    )  # fmt: skip
    assert p.needed_max is not None and abs(p.needed_max - found.max_seeds) <= 3


@pytest.mark.slow
def test_probe_times_one_trial_per_grid_point(tmp_path: Path) -> None:
    from mpbench.cli.plan_cmd import probe_hours
    from mpbench.study.spec import parse_study

    spec = parse_study(
        {
            "name": "probe",
            "base": {"backbone": "x3d_xs", "size": "tiny", "frames": 4, "crop": 32,
                     "batch_size": 2, "max_steps": 3, "device": "cpu"},
            "grid": {"variant": ["baseline", "learnable"], "seeds": 1},
        }
    ).with_folder(tmp_path, source="probe")  # fmt: skip
    hours = probe_hours(spec)
    assert 0.0 < hours < 0.01  # 3 tiny steps: well under a minute


DRY_SEQUENTIAL = """max_steps = 2
[grid]
variant = {variants}
seeds = {{ min = 2, max = 6, step = 2 }}
[resolve]
metric = "tav_loss"
margin = 0.01
"""


def _dry_run(
    tmp_path: Path, *args: str, variants: str = '["baseline", "learnable", "fixed"]'
) -> tuple[Path, str]:
    from tests.test_study_run import study_file

    path = study_file(tmp_path, DRY_SEQUENTIAL.format(variants=variants), name="seqdry")
    journal = str(tmp_path / "journal.log")
    res = CliRunner().invoke(app, ["grid", str(path), "--dry-run", "--storage", journal, *args])
    assert res.exit_code == 0, res.output
    return path, " ".join(res.output.split())


def _hours(pattern: str, text: str) -> float:
    found = re.search(pattern + r" ([0-9.e-]+) trial-hours", text)
    assert found is not None, text
    return float(found.group(1))


def test_dry_run_of_a_sequential_grid_costs_its_first_look_most_and_expected(
    tmp_path: Path,
) -> None:
    """3 points, looks after 2, 4, 6 seeds: 6 cells at the first look, 18 at most, and the
    planner's expected cells at its defaults; trial-hours from the probe, in proportion."""
    path, out = _dry_run(tmp_path, "--probe-steps", "1")
    assert "sequential design, looks after 2, 4, 6 seeds:" in out
    spec = spec_module.read_study(path)
    design, baselines = planner.study_design(spec, str(path))
    p = planner.plan(design, power=spec.resolve.power, baselines=baselines)
    expected = p.scenarios[-1].sim.expected_trials
    assert 6 < expected < 18 and p.max_trials == 18
    first = _hours(r"first look \(2 seeds\): 6 cells,", out)
    most = _hours(r"at most \(6 seeds\): 18 cells,", out)
    mean = _hours(rf"expected: {expected:.1f} cells,", out)
    # printed to 3 significant digits: each within 0.5 %
    assert first > 0 and first == pytest.approx(most * 2 / 6, rel=1e-2)
    assert mean == pytest.approx(most * expected / 18, rel=1e-2)
    assert (
        f"true difference 0.02 (twice the margin), sd of the paired differences {p.sd:.4g}" in out
    )


def test_dry_run_of_a_sequential_grid_without_probe_or_plan(tmp_path: Path) -> None:
    """No probe: cells without trial-hours; no baseline to pair with: the planner is named."""
    _, out = _dry_run(tmp_path, "--probe-steps", "0")
    assert "first look (2 seeds): 6 cells, trial-hours unknown" in out
    assert "at most (6 seeds): 18 cells, trial-hours unknown" in out
    assert re.search(r"expected: 1[0-7]\.\d cells, trial-hours unknown \(mpbench plan's", out)
    _, out = _dry_run(tmp_path, "--probe-steps", "0", variants='["learnable", "fixed"]')
    assert "first look (2 seeds): 4 cells" in out and "at most (6 seeds): 12 cells" in out
    assert "expected: run `mpbench plan` for the expected count (" in out
    assert "[grid] variant must hold 'baseline' and at least one other variant" in out
