"""The report of a sequential grid (verdicts, seeds used, repeated interval, the design) and
the seed variance by source, from runs logged to a real MLflow store with known numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from mpbench import tracking as tk
from mpbench.report.build import make_report
from mpbench.report.variance import components
from tests.report_fixtures import log_run, make_client

DESIGN = {"min": 3, "max": 6, "step": 3, "alpha": 0.05, "margin": 0.01, "power": 0.8}
DESIGN_TAG = {tk.TAG_DESIGN: json.dumps(DESIGN | {"metric": tk.M_TEST_TOP1}, sort_keys=True)}
# test_top1 by seed: "fixed" is 0.05 better on every seed, "learnable" equal to the baseline on
# every seed, "learnable_tav" noisy around the baseline (ran 6 seeds, the others 3)
BASE = [0.50, 0.52, 0.48, 0.51, 0.47, 0.53]
VALUES = {
    "baseline": BASE,
    "fixed": [b + 0.05 for b in BASE[:3]],
    "learnable": BASE[:3],
    "learnable_tav": [0.56, 0.45, 0.50, 0.58, 0.44, 0.52],
}


def _log_values(tmp_path: Path, tags: dict[str, str]) -> str:
    """:data:`VALUES` logged as study ``seq`` with the design ``tags``; the tracking URI."""
    client, uri = make_client(tmp_path)
    for variant, values in VALUES.items():
        for seed, value in enumerate(values):
            log_run(
                client,
                study="seq",
                variant=variant,
                dataset="synth",
                seed=seed,
                final=value,
                extra_tags=tags,
            )
    return uri


@pytest.fixture
def uri(tmp_path: Path) -> str:
    return _log_values(tmp_path, DESIGN_TAG)


def test_sequential_report_gains_verdicts_seeds_and_the_repeated_interval(
    tmp_path: Path, uri: str
) -> None:
    """table.csv gets verdict / seeds used / alpha spent / repeated interval on the test
    rows; table.md and table.tex state the design and list the comparisons."""
    report = make_report("seq", tracking_uri=uri, results_dir=tmp_path / "r", resamples=200)
    table = pd.read_csv(tmp_path / "r" / "seq" / "table.csv")
    test = table[table["metric"] == tk.M_TEST_TOP1].set_index("label")
    assert test.loc["fixed", "verdict"] == "better" and test.loc["fixed", "seeds_used"] == 3
    assert test.loc["fixed", "seq_low"] == pytest.approx(0.05)
    assert test.loc["fixed", "seq_high"] == pytest.approx(0.05)
    assert test.loc["learnable", "verdict"] == "equivalent"
    assert test.loc["learnable", "seeds_used"] == 3
    tav = test.loc["learnable_tav"]
    assert tav["verdict"] == "undecided" and tav["seeds_used"] == 6
    assert tav["seq_low"] < 0 < tav["seq_high"]
    assert tav["alpha_spent"] == pytest.approx(0.05 / 3)  # all of its share, at the last look
    assert pd.isna(test.loc["baseline", "verdict"])
    val = table[table["metric"] == tk.M_VAL_TOP1]
    assert val["verdict"].isna().all()  # the design decides on test_top1 only
    md = (tmp_path / "r" / "seq" / "table.md").read_text()
    assert "after 3, 6 seeds" in md and "family-wise alpha 0.05 over 3 comparison(s)" in md
    assert "two-sided Lan-DeMets O'Brien-Fleming alpha spending" in md
    assert "| fixed vs baseline (x3d_xs, synth) | better | 3 | 0.05 [0.05, 0.05] |" in md
    tex = (tmp_path / "r" / "seq" / "table.tex").read_text()
    assert "% Sequential design" in tex and "undecided" in tex
    assert report.decisions is not None and report.variance is not None
    assert report.variance.empty and not (tmp_path / "r" / "seq" / "variance.csv").exists()


def test_sequential_report_states_the_pocock_type_spending(tmp_path: Path) -> None:
    """A design tagged ``spending = "pocock"`` is decided and stated with Pocock-type spending;
    the OBF report above (no ``spending`` in its tag) names O'Brien-Fleming."""
    from mpbench.report.sequential import pocock_spending

    tag = json.dumps(DESIGN | {"metric": tk.M_TEST_TOP1, "spending": "pocock"}, sort_keys=True)
    uri = _log_values(tmp_path, {tk.TAG_DESIGN: tag})
    report = make_report("seq", tracking_uri=uri, results_dir=tmp_path / "r", resamples=100)
    table = pd.read_csv(tmp_path / "r" / "seq" / "table.csv")
    test = table[table["metric"] == tk.M_TEST_TOP1].set_index("label")
    assert test.loc["fixed", "verdict"] == "better" and test.loc["fixed", "seeds_used"] == 3
    assert test.loc["fixed", "alpha_spent"] == pytest.approx(pocock_spending(0.5, 0.05 / 3))
    assert test.loc["learnable_tav", "alpha_spent"] == pytest.approx(0.05 / 3)
    md = (tmp_path / "r" / "seq" / "table.md").read_text()
    assert "two-sided Lan-DeMets Pocock-type alpha spending" in md
    assert report.decisions is not None and "Pocock-type" in report.decisions.design


def test_design_tag_records_a_non_default_spending() -> None:
    """OBF studies keep the tag they had before ``spending`` existed; Pocock records it."""
    from mpbench.study.spec import parse_study
    from mpbench.study.worker import design_tag

    data = {"name": "t", "grid": {"variant": ["baseline", "fixed"], "seeds": {"min": 3, "max": 6,
            "step": 3}}, "resolve": {"margin": 0.01}}  # fmt: skip
    obf = json.loads(design_tag(parse_study(data)))
    assert "spending" not in obf and obf["min"] == 3 and obf["margin"] == 0.01
    data["resolve"]["spending"] = "pocock"
    assert json.loads(design_tag(parse_study(data))) == obf | {"spending": "pocock"}


def test_fixed_seed_report_has_no_verdict_columns(tmp_path: Path) -> None:
    """A grid without a design tag: table.csv without the sequential columns."""
    client, uri = make_client(tmp_path)
    for variant in ("baseline", "fixed"):
        for seed in range(3):
            log_run(client, study="fx", variant=variant, dataset="synth", seed=seed, final=0.5)
    make_report("fx", tracking_uri=uri, results_dir=tmp_path / "r", resamples=100)
    table = pd.read_csv(tmp_path / "r" / "fx" / "table.csv")
    assert "verdict" not in table and "seq_low" not in table
    assert "Sequential design" not in (tmp_path / "r" / "fx" / "table.md").read_text()


# test_top1 = init effect of the seed + data effect of the data seed (no interaction)
INIT = [0.50, 0.54]
DATA = [0.00, 0.01, 0.02]


def test_variance_by_source_splits_init_and_data(tmp_path: Path) -> None:
    """Seeds 0, 1 crossed with data seeds 0, 1, 2: var_init 0.0008 (the variance of 0.50,
    0.54), var_data 0.0001 (of 0, 0.01, 0.02), no residual; variance.csv and table.md."""
    client, uri = make_client(tmp_path)
    for seed, a in enumerate(INIT):
        for data_seed, b in enumerate(DATA):
            params = {"data_seed": str(data_seed)}
            for variant in ("baseline", "fixed"):
                log_run(
                    client,
                    study="var",
                    variant=variant,
                    dataset="synth",
                    seed=seed,
                    final=a + b,
                    params=params,
                )
    report = make_report("var", tracking_uri=uri, results_dir=tmp_path / "r", resamples=100)
    var = pd.read_csv(tmp_path / "r" / "var" / "variance.csv").set_index("label")
    row = var.loc["baseline"]
    assert (row["n_seeds"], row["n_data_seeds"], row["n_runs"]) == (2, 3, 6)
    assert row["var_init"] == pytest.approx(0.0008)
    assert row["var_data"] == pytest.approx(0.0001)
    assert row["var_residual"] == pytest.approx(0.0, abs=1e-15)
    assert row["share_init"] == pytest.approx(8 / 9) and row["share_data"] == pytest.approx(1 / 9)
    md = (tmp_path / "r" / "var" / "table.md").read_text()
    assert "Seed variance of test_top1 by source" in md
    assert "| x3d_xs | synth | baseline | 2 x 3 | 0.0009 | 88.9 | 11.1 | 0.0 |" in md
    assert len(report.variance) == 2


def test_variance_components_of_a_table_with_interaction() -> None:
    """A 2 x 2 table with only interaction: every bit of variance is residual."""
    got = components(pd.DataFrame([[1.0, -1.0], [-1.0, 1.0]]).to_numpy())
    assert got == {"init": 0.0, "data": 0.0, "residual": 4.0}
