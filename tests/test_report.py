"""Report tables from real MLflow runs: numbers equal a hand computation; files are stable."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from report_fixtures import ABLATION, log_ablation, log_run, make_client
from scipy import stats as st
from typer.testing import CliRunner

from mpbench import tracking as tk
from mpbench.cli import app
from mpbench.report.build import make_report
from mpbench.report.load import (
    LATEST_STEP,
    default_cache_dir,
    export_study,
    load_history,
    load_long_runs,
    load_runs,
)
from mpbench.report.stats import (
    add_labels,
    aggregate,
    boot_mean_ci,
    boot_rng,
    holm,
    iqm,
    paired_power,
    prob_greater,
    seeds_needed,
    stratified_iqm,
    stratified_prob_greater,
    summarize_cells,
    varied_fields,
    with_setting,
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, str, Path]:
    """A SQLite MLflow store holding the ablation study 'demo'."""
    tmp = tmp_path_factory.mktemp("mlflow")
    client, uri = make_client(tmp)
    log_ablation(client)
    return client, uri, tmp


def _row(summary: pd.DataFrame, dataset: str, label: str, split: str = "test") -> pd.Series:
    """The stats row of one setting and split."""
    hit = summary[
        (summary["dataset"] == dataset) & (summary["label"] == label) & (summary["split"] == split)
    ]
    assert len(hit) == 1
    return hit.iloc[0]


def _val(seed: int) -> float:
    """The last-epoch val_top1 the fixture logs for ``seed`` (every variant alike)."""
    return 0.2 + 0.1 * 2 + 0.01 * seed


def _hand_t(diffs: list[float]) -> float:
    """Two-sided paired t-test p value from the textbook formula."""
    n = len(diffs)
    t = statistics.mean(diffs) / (statistics.stdev(diffs) / math.sqrt(n))
    return 2 * st.t.sf(abs(t), n - 1)


def test_long_frame_has_tags_and_latest_values(store: tuple) -> None:
    _, uri, _ = store
    df = load_long_runs("demo", tracking_uri=uri)
    assert set(df["step"]) == {LATEST_STEP}
    top1 = df[(df["metric"] == tk.M_TEST_TOP1) & (df["status"] == tk.STATUS_FINISHED)]
    assert len(top1) == sum(len(v) for v in ABLATION.values())
    base = top1[(top1["dataset"] == "synth") & (top1["variant"] == "baseline")]
    assert sorted(base["value"]) == sorted(ABLATION[("synth", "baseline")])
    assert sorted(base["seed"].tolist()) == [0, 1, 2, 3]
    assert df["tav_weight"].dropna().unique().tolist() == [1.0]


def test_stats_equal_hand_computation(store: tuple) -> None:
    _, uri, _ = store
    summary = summarize_cells(load_runs("demo", tracking_uri=uri))
    base, tav = ABLATION[("synth", "baseline")], ABLATION[("synth", "learnable_tav")]
    row = _row(summary, "synth", "learnable_tav")
    assert row["n"] == 4
    assert row["mean"] == pytest.approx(statistics.mean(tav))
    assert row["std"] == pytest.approx(statistics.stdev(tav))
    half = st.t.ppf(0.975, 3) * statistics.stdev(tav) / 2
    assert row["ci_low"] == pytest.approx(statistics.mean(tav) - half)
    diffs = [a - b for a, b in zip(tav, base, strict=True)]
    assert row["delta"] == pytest.approx(statistics.mean(diffs))
    d_half = st.t.ppf(0.975, 3) * statistics.stdev(diffs) / 2  # paired t interval, 4 pairs
    assert row["delta_low"] == pytest.approx(statistics.mean(diffs) - d_half)
    assert row["delta_high"] == pytest.approx(statistics.mean(diffs) + d_half)
    p_tav = _hand_t(diffs)
    assert row["p_t"] == pytest.approx(p_tav)
    # Wilcoxon with 4 pairs, all positive: exact two-sided p = 2 / 2^4
    assert row["p_wilcoxon"] == pytest.approx(2 / 16)
    # Holm over the table's three comparisons, by hand. Paired t: learnable_tav on synth,
    # diffs 0.06 0.03 0.05 0.07, t = 6.148 (3 df), p = 0.0086565; learnable_tav on synth_b,
    # diffs 0.05 0.01 0.05, t = 2.75 (2 df), p = 0.1107027; gamma on synth, diffs
    # -0.01 0.01 0.02 -0.01, t = 0.3333 (3 df), p = 0.7608204. Sorted, times 3, 2, 1, each
    # raised to the one before: 0.0259696, 0.2214054, 0.7608204.
    assert p_tav == pytest.approx(0.0086565, rel=1e-4)
    assert row["p_holm"] == pytest.approx(0.0259696, rel=1e-4)
    assert _row(summary, "synth_b", "learnable_tav")["p_holm"] == pytest.approx(0.2214054, rel=1e-4)
    assert _row(summary, "synth", "gamma")["p_holm"] == pytest.approx(0.7608204, rel=1e-4)
    assert math.isnan(_row(summary, "synth", "baseline")["p_t"])


def test_failed_and_pruned_are_counted_not_averaged(store: tuple) -> None:
    _, uri, _ = store
    summary = summarize_cells(load_runs("demo", tracking_uri=uri))
    tav = _row(summary, "synth", "learnable_tav")
    assert (tav["n_runs"], tav["n_finished"], tav["n_failed"]) == (5, 4, 1)
    assert tav["mean"] < 0.6  # the failed run logged 0.99: not in the mean
    assert _row(summary, "synth", "gamma")["n_pruned"] == 1
    assert _row(summary, "synth", "baseline")["n_diverged"] == 1


def test_costs(store: tuple) -> None:
    _, uri, _ = store
    row = _row(summarize_cells(load_runs("demo", tracking_uri=uri)), "synth", "learnable_tav")
    assert row["params_ratio"] == pytest.approx(2 / 1000)
    assert row["gflops_ratio"] == pytest.approx(0.02 / 4)
    assert row["compute_hours"] == pytest.approx(5 * 0.5)  # the failed run's time counts
    assert row["compute_device"] == "cpu"
    assert row["clips_per_s"] == pytest.approx(100.0)


def test_power_analysis() -> None:
    # textbook sample sizes (G*Power) of a two-sided paired t-test, alpha 0.05, power 0.8:
    # d = 1 needs 10 pairs (power 0.8031), d = 0.5 needs 34, d = 0.2 needs 199
    assert paired_power(1.0, 10) == pytest.approx(0.8031, abs=1e-3)
    assert seeds_needed(np.array([0.0, 1.0, 2.0])) == 10  # mean 1, sd 1: d = 1
    assert seeds_needed(np.array([-0.5, 0.5, 1.5])) == 34  # mean 0.5, sd 1
    assert seeds_needed(np.array([-0.8, 0.2, 1.2])) == 199  # mean 0.2, sd 1
    assert seeds_needed(np.array([0.01, 0.01])) == 2  # no spread: the fewest a t-test takes
    assert math.isnan(seeds_needed(np.array([0.02, -0.02])))  # no effect to detect
    assert seeds_needed(np.array([-1e-4, 1e-4, 0.0, 2e-6])) == math.inf  # d = 0.04: > 10,000


def test_holm_keeps_nan() -> None:
    out = holm(pd.Series([0.01, float("nan"), 0.04, 0.03]))
    assert out.iloc[0] == pytest.approx(0.03)
    assert math.isnan(out.iloc[1])
    assert out.iloc[2] == pytest.approx(0.06) and out.iloc[3] == pytest.approx(0.06)


def test_report_files_and_byte_identical(store: tuple, tmp_path: Path) -> None:
    _, uri, _ = store
    first = make_report("demo", tracking_uri=uri, results_dir=tmp_path / "a", resamples=300)
    second = make_report("demo", tracking_uri=uri, results_dir=tmp_path / "b", resamples=300)
    names = [p.name for p in first.paths]
    assert names == ["table.md", "table.tex", "table.csv", "aggregate.md", "aggregate.csv"]
    for a, b in zip(first.paths, second.paths, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name
    md = first.paths[0].read_text().splitlines()
    assert "val top-1 % (val split: early stopping" in md[0]
    assert "test top-1 % (test split, reported only)" in md[0]
    head = "| backbone | variant | synth (val) | synth (test) | synth_b (val) | synth_b (test) |"
    assert md[2] == head + " excluded |"
    row = "| x3d_xs | learnable_tav | **41.50 ± 1.29** | **55.50 ± 2.08*** | **41.00 ± 1.00** |"
    assert row + " **34.67 ± 1.53** | 1 |" in md
    assert "x3d_xs / gamma / synth: 1 pruned" in md  # once, not once per split
    assert sum("1 pruned" in line for line in md) == 1
    tex = first.paths[1].read_text()
    assert tex.count(r"\toprule") == 1 and r"\multicolumn{2}{c}{synth}" in tex
    assert r"\bfseries 55.50 $\pm$ 2.08$^{*}$" in tex and "& val & test & val & test &" in tex
    assert tex.startswith("% Columns per dataset: val top-1 %")
    csv = pd.read_csv(first.paths[2])
    assert len(csv) == 10 and csv["split"].tolist() == ["val", "test"] * 5
    assert {"p_holm", "seeds_needed", "compute_hours", "boot_low", "boot_high"} <= set(csv.columns)
    assert (csv.loc[csv["split"] == "val", "metric"] == tk.M_VAL_TOP1).all()


def test_val_and_test_are_separate_rows(store: tuple) -> None:
    _, uri, _ = store
    summary = summarize_cells(load_runs("demo", tracking_uri=uri))
    val = _row(summary, "synth", "learnable_tav", "val")
    assert val["metric"] == tk.M_VAL_TOP1 and val["n"] == 4
    assert val["mean"] == pytest.approx(statistics.mean(_val(s) for s in range(4)))
    assert val["delta"] == pytest.approx(0.0) and math.isnan(val["p_holm"])
    test = _row(summary, "synth", "learnable_tav", "test")
    assert test["metric"] == tk.M_TEST_TOP1
    assert test["mean"] == pytest.approx(statistics.mean(ABLATION[("synth", "learnable_tav")]))


def test_metric_val_gives_the_same_report(store: tuple, tmp_path: Path) -> None:
    _, uri, _ = store
    test = make_report("demo", tracking_uri=uri, results_dir=tmp_path / "t", resamples=200)
    val = make_report(
        "demo", metric=tk.M_VAL_TOP1, tracking_uri=uri, results_dir=tmp_path / "v", resamples=200
    )
    for a, b in zip(test.paths, val.paths, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name
    loss = summarize_cells(
        load_runs("demo", tracking_uri=uri), metric=tk.M_TRAIN_LOSS, resamples=10
    )
    assert set(loss["split"]) == {"train"} and len(loss) == 5


def test_cell_bootstrap_ci(store: tuple) -> None:
    _, uri, _ = store
    summary = summarize_cells(load_runs("demo", tracking_uri=uri), resamples=500)
    for (dataset, variant), values in ABLATION.items():
        row = _row(summary, dataset, variant)
        # resampled means lie between the smallest and the largest seed (up to rounding)
        low, high = min(values) - 1e-12, max(values) + 1e-12
        assert low <= row["boot_low"] <= row["mean"] <= row["boot_high"] <= high
    again = summarize_cells(load_runs("demo", tracking_uri=uri), resamples=500)
    assert again[["boot_low", "boot_high"]].equals(summary[["boot_low", "boot_high"]])


def test_aggregate_equals_hand_computation(store: tuple) -> None:
    _, uri, _ = store
    agg = aggregate(load_runs("demo", tracking_uri=uri), resamples=500)
    test = agg[agg["split"] == "test"].set_index("label")
    assert test.index.tolist() == ["baseline", "gamma", "learnable_tav"]
    # learnable_tav pooled: 0.33 0.35 0.36 0.53 0.55 0.56 0.58; n = 7 cuts one at each end
    assert test.loc["learnable_tav", "iqm"] == pytest.approx((0.35 + 0.36 + 0.53 + 0.55 + 0.56) / 5)
    assert test.loc["baseline", "iqm"] == pytest.approx((0.31 + 0.32 + 0.48 + 0.50 + 0.51) / 5)
    assert test.loc["gamma", "iqm"] == pytest.approx(0.50)  # 0.49 [0.50 0.50] 0.53
    assert test.loc["learnable_tav", ["n_tasks", "n_runs", "p_tasks"]].tolist() == [2, 7, 2]
    # every learnable_tav run beats every baseline run of its task, in every resample too
    assert test.loc["learnable_tav", ["p_improve", "p_low", "p_high"]].tolist() == [1.0] * 3
    # gamma vs baseline on synth: 1 + 4 + 1.5 + 1.5 wins out of 16 pairs
    assert test.loc["gamma", "p_improve"] == pytest.approx(8 / 16)
    assert math.isnan(test.loc["baseline", "p_improve"])
    for label, row in test.iterrows():
        assert row["iqm_low"] <= row["iqm"] <= row["iqm_high"], label
    val = agg[agg["split"] == "val"].set_index("label")
    assert (val["metric"] == tk.M_VAL_TOP1).all()
    assert val.loc["learnable_tav", "p_improve"] == pytest.approx(0.5)  # identical val values


def test_iqm_trims_floor_of_a_quarter() -> None:
    x = np.array([10.0, 1.0, 2.0, 3.0, 4.0, 100.0, 5.0])  # n = 7: one cut at each end
    assert iqm(x) == pytest.approx((2 + 3 + 4 + 5 + 10) / 5)
    assert iqm(x) == pytest.approx(st.trim_mean(x, 0.25))
    y = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 100.0])  # n = 8: two cut at each end
    assert iqm(y) == pytest.approx((3 + 4 + 5 + 6) / 4)
    assert iqm(np.array([1.0, 2.0, 9.0])) == pytest.approx(4.0)  # n < 4: plain mean
    assert iqm(np.stack([x, x + 1])) == pytest.approx([4.8, 5.8])  # along the last axis


def test_prob_greater_counts_ties_half() -> None:
    # 0.5 vs (0.5, 0.6, 0.8): 0.5 win; 0.7 vs (0.5, 0.6, 0.8): 2 wins -> 2.5 / 6
    assert prob_greater(np.array([0.5, 0.7]), np.array([0.5, 0.6, 0.8])) == pytest.approx(5 / 12)
    assert prob_greater(np.array([1.0]), np.array([1.0])) == 0.5


def test_bootstrap_cis_by_hand() -> None:
    rng = boot_rng(0, "x")
    low, high = boot_mean_ci(np.full(5, 0.25), resamples=200, rng=rng)
    assert low == high == pytest.approx(0.25)  # a constant sample: the constant
    # resampled means of (0, 1) are 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4
    assert boot_mean_ci(np.array([0.0, 1.0]), resamples=2000, rng=rng) == (0.0, 1.0)
    # P(X > Y) of x = (0, 1) resampled against y = (0.5): 0, 0.5 or 1
    p = stratified_prob_greater([(np.array([0.0, 1.0]), np.array([0.5]))], rng=rng)
    assert p == (0.5, 0.0, 1.0)
    a = boot_mean_ci(np.arange(6.0), resamples=300, rng=boot_rng(0, "cell"))
    assert a == boot_mean_ci(np.arange(6.0), resamples=300, rng=boot_rng(0, "cell"))


def test_stratified_bootstrap_never_mixes_tasks() -> None:
    tasks = [np.zeros(4), np.ones(4)]
    # each resample keeps four 0s and four 1s: IQM of 0 0 [0 0 1 1] 1 1 is always 0.5
    assert stratified_iqm(tasks, resamples=500, rng=boot_rng(0, "a")) == (0.5, 0.5, 0.5)
    # resampling the pooled runs instead would move the IQM
    pooled = np.concatenate(tasks)
    low, high = boot_mean_ci(pooled, resamples=500, rng=boot_rng(0, "a"))
    assert low < 0.5 < high
    # P = 1 on one task and 0 on the other: 0.5 in every stratified resample
    pairs = [(np.ones(2), np.zeros(2)), (np.zeros(2), np.ones(2))]
    assert stratified_prob_greater(pairs, resamples=500, rng=boot_rng(0, "b")) == (0.5, 0.5, 0.5)


def test_aggregate_of_a_loss_counts_lower_as_better() -> None:
    rows = [
        {"variant": v, "seed": s, "metric.val_loss": loss}
        for v, losses in (("baseline", [2.0, 3.0]), ("learnable_tav", [1.0, 1.5]))
        for s, loss in enumerate(losses)
    ]
    runs = pd.DataFrame(rows).assign(
        backbone="b", dataset="d", tav_weight=1.0, status=tk.STATUS_FINISHED, end_time=0, run_id="r"
    )
    agg = aggregate(runs, metric=tk.M_VAL_LOSS, resamples=200).set_index("label")
    assert agg.loc["learnable_tav", "p_improve"] == 1.0
    assert agg.loc["learnable_tav", "iqm"] == pytest.approx(1.25)
    assert agg.loc["learnable_tav", "iqm_low"] <= 1.25 <= agg.loc["learnable_tav", "iqm_high"]
    with pytest.raises(ValueError, match=r"resamples must be a positive int .* got 0"):
        aggregate(runs, metric=tk.M_VAL_LOSS, resamples=0)


def test_cache_is_refreshed_incrementally(tmp_path: Path) -> None:
    client, uri = make_client(tmp_path)
    log_run(client, study="inc", variant="baseline", dataset="synth", seed=0, final=0.5)
    cache = default_cache_dir("inc", results_dir=tmp_path / "results")
    assert len(load_runs("inc", tracking_uri=uri, cache_dir=cache)) == 1
    assert (cache / "runs.parquet").exists()
    log_run(client, study="inc", variant="baseline", dataset="synth", seed=1, final=0.6)
    runs = load_runs("inc", tracking_uri=uri, cache_dir=cache)
    assert sorted(runs["seed"].tolist()) == [0, 1]
    assert runs.equals(load_runs("inc", tracking_uri=uri, cache_dir=cache, refresh=True))
    hist = load_history(runs, metrics=(tk.M_VAL_TOP1,), tracking_uri=uri, cache_dir=cache)
    assert sorted(hist["step"].unique()) == [0, 1, 2]
    again = load_history(runs, metrics=(tk.M_VAL_TOP1,), tracking_uri=uri, cache_dir=cache)
    assert again.equals(hist)


def test_export_csv_and_parquet(store: tuple, tmp_path: Path) -> None:
    _, uri, _ = store
    csv = export_study("demo", fmt="csv", tracking_uri=uri, results_dir=tmp_path)
    pq = export_study("demo", fmt="parquet", tracking_uri=uri, results_dir=tmp_path)
    assert csv.name == "runs.csv" and pq.name == "runs.parquet"
    assert len(pd.read_csv(csv)) == len(pd.read_parquet(pq)) > 0
    with pytest.raises(ValueError, match="'csv' or 'parquet', got 'xlsx'"):
        export_study("demo", fmt="xlsx", tracking_uri=uri, results_dir=tmp_path)


def test_unknown_metric(store: tuple) -> None:
    _, uri, _ = store
    with pytest.raises(ValueError, match="metric 'nope' was not logged"):
        summarize_cells(load_runs("demo", tracking_uri=uri), metric="nope")


def test_cli_report_and_unknown_study(
    store: tuple, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, uri, _ = store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    runner = CliRunner()
    res = runner.invoke(
        app, ["report", "demo", "--results-dir", str(tmp_path), "--resamples", "100"]
    )
    assert res.exit_code == 0, res.output
    assert "learnable_tav" in res.output and (tmp_path / "demo" / "table.tex").exists()
    assert "val top-1 % | test top-1 %" in res.output and "aggregate.md" in res.output
    assert "100 resamples" in (tmp_path / "demo" / "aggregate.md").read_text()
    res = runner.invoke(app, ["report", "demo", "--metric", tk.M_VAL_TOP1, "--resamples", "0"])
    assert res.exit_code == 2 and "--resamples" in res.output
    res = runner.invoke(app, ["report", "nosuch", "--results-dir", str(tmp_path)])
    assert res.exit_code == 2
    assert "no runs of study 'nosuch'" in res.output and "demo" in res.output
    res = runner.invoke(app, ["report", "demo", "--experiment", "other"])
    assert res.exit_code == 2 and "unknown MLflow experiment 'other'" in res.output
    res = runner.invoke(
        app, ["export", "demo", "--format", "parquet", "--results-dir", str(tmp_path)]
    )
    assert res.exit_code == 0 and (tmp_path / "demo" / "runs.parquet").exists()


def test_empty_experiment_is_a_user_error(tmp_path: Path) -> None:
    _, uri = make_client(tmp_path)
    with pytest.raises(ValueError, match=r"no runs of study 'x'.*studies found: none"):
        load_runs("x", tracking_uri=uri)


# variant x lr x 2 seeds: test_top1 by seed (issue 16: two lrs were averaged together)
MULTI = {
    ("baseline", 0.001): [0.50, 0.52],
    ("baseline", 0.01): [0.30, 0.34],
    ("learnable_tav", 0.001): [0.56, 0.60],
    ("learnable_tav", 0.01): [0.31, 0.33],
}


@pytest.fixture(scope="module")
def multi(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A store holding the grid 'multi' (variant x lr x 2 seeds), logged lr by lr."""
    client, uri = make_client(tmp_path_factory.mktemp("multi"))
    for (variant, lr), values in MULTI.items():
        for seed, value in enumerate(values):
            params = {
                "lr": str(lr),
                "tav_weight": "None" if variant == "baseline" else "1.0",
                "batch_size": "8",  # the same everywhere: no column
                "run_dir": f"runs/multi/trials/{variant}-{lr}-{seed}",  # execution: no column
                "dataset_options": json.dumps({"classes": 4, "cache": seed == 0}),  # cache: none
            }
            log_run(
                client,
                study="multi",
                variant=variant,
                dataset="synth",
                seed=seed,
                final=value,
                params=params,
            )
    return uri


def test_multi_axis_grid_never_averages_differing_configs(multi: str, tmp_path: Path) -> None:
    runs = load_runs("multi", tracking_uri=multi)
    summary = summarize_cells(runs, resamples=200)
    test = summary[summary["split"] == "test"]
    assert list(summary.columns[:4]) == ["backbone", "dataset", "label", "lr"]
    assert list(zip(test["label"], test["lr"], strict=True)) == [
        ("baseline", "0.001"),
        ("baseline", "0.01"),
        ("learnable_tav", "0.001"),
        ("learnable_tav", "0.01"),
    ]
    assert test["n"].tolist() == [2, 2, 2, 2] and test["n_finished"].tolist() == [2, 2, 2, 2]
    for (_, row), values in zip(test.iterrows(), MULTI.values(), strict=True):
        assert row["mean"] == pytest.approx(statistics.mean(values))
    tav = test[test["label"] == "learnable_tav"].set_index("lr")
    # paired with the baseline of the same lr, never across lrs
    assert tav.loc["0.001", "delta"] == pytest.approx(0.07)
    assert tav.loc["0.01", "delta"] == pytest.approx(0.0)
    assert tav.loc["0.01", "n_pairs"] == 2
    assert not {"batch_size", "run_dir", "dataset_options", "seed"} & set(summary.columns)
    report = make_report("multi", tracking_uri=multi, results_dir=tmp_path, resamples=200)
    md = report.paths[0].read_text().splitlines()
    assert md[2] == "| backbone | variant | lr | synth (val) | synth (test) | excluded |"
    assert "| x3d_xs | baseline | 0.01 | **40.50 ± 0.71** | 32.00 ± 2.83 | 0 |" in md
    assert "| x3d_xs | learnable_tav | 0.001 | **40.50 ± 0.71** | **58.00 ± 2.83** | 0 |" in md
    csv = pd.read_csv(report.paths[2])
    assert "lr" in csv.columns and len(csv) == 8
    agg = report.aggregate
    assert list(agg.columns[:4]) == ["split", "metric", "label", "lr"] and len(agg) == 8
    agg_md = report.paths[3].read_text()
    assert (
        "| variant | lr | tasks | runs |" in agg_md and "| learnable_tav | 0.01 | 1 | 2 |" in agg_md
    )


def test_only_variant_and_seed_varying_gives_no_extra_column(store: tuple) -> None:
    _, uri, _ = store
    runs = add_labels(load_runs("demo", tracking_uri=uri))
    assert varied_fields(runs) == []  # tav_weight differs by variant only: it is in the label
    assert with_setting(runs)["setting"].eq("").all()


def test_varied_dataset_options_show_only_the_keys_that_differ() -> None:
    """A nuisance study's settings read ``ladder=flicker, level=2``, not the whole options dict;
    the shown values stay as distinct as the options (the other keys are equal everywhere)."""
    from mpbench.study.pairing import varied_options

    opts = [
        {"classes": 4, "ladder": "flicker", "level": 0, "speed": [4.0, 5.0]},
        {"classes": 4, "ladder": "flicker", "level": 2, "speed": [4.0, 5.0]},
        {"classes": 4, "ladder": "distractors", "level": 2, "speed": [4.0, 5.0]},
        {"classes": 4, "speed": [4.0, 6.0]},
    ]
    shown = varied_options(
        pd.Series([json.dumps(o, sort_keys=True) for o in opts], index=[3, 5, 7, 9])
    )
    assert shown.to_dict() == {
        3: "ladder=flicker, level=0, speed=[4.0, 5.0]",
        5: "ladder=flicker, level=2, speed=[4.0, 5.0]",
        7: "ladder=distractors, level=2, speed=[4.0, 5.0]",
        9: "speed=[4.0, 6.0]",
    }
    same = pd.Series(['{"classes": 4}', '{"classes": 4}'])
    assert varied_options(same).tolist() == ["{}", "{}"]
    assert varied_options(pd.Series(["unknown", '{"a": 1}'])).tolist() == ["unknown", '{"a": 1}']
