"""Report tables from real MLflow runs: numbers equal a hand computation; files are stable."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

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
    load_runs,
    load_study,
)
from mpbench.report.stats import holm, paired_power, seeds_needed, summarize


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, str, Path]:
    """A SQLite MLflow store holding the ablation study 'demo'."""
    tmp = tmp_path_factory.mktemp("mlflow")
    client, uri = make_client(tmp)
    log_ablation(client)
    return client, uri, tmp


def _row(summary: pd.DataFrame, dataset: str, label: str) -> pd.Series:
    """The stats row of one setting."""
    hit = summary[(summary["dataset"] == dataset) & (summary["label"] == label)]
    assert len(hit) == 1
    return hit.iloc[0]


def _hand_t(diffs: list[float]) -> float:
    """Two-sided paired t-test p value from the textbook formula."""
    n = len(diffs)
    t = statistics.mean(diffs) / (statistics.stdev(diffs) / math.sqrt(n))
    return 2 * st.t.sf(abs(t), n - 1)


def test_long_frame_has_tags_and_latest_values(store: tuple) -> None:
    _, uri, _ = store
    df = load_study("demo", tracking_uri=uri)
    assert set(df["step"]) == {LATEST_STEP}
    top1 = df[(df["metric"] == tk.M_TEST_TOP1) & (df["status"] == tk.STATUS_FINISHED)]
    assert len(top1) == sum(len(v) for v in ABLATION.values())
    base = top1[(top1["dataset"] == "synth") & (top1["variant"] == "baseline")]
    assert sorted(base["value"]) == sorted(ABLATION[("synth", "baseline")])
    assert sorted(base["seed"].tolist()) == [0, 1, 2, 3]
    assert df["tav_weight"].dropna().unique().tolist() == [1.0]


def test_stats_equal_hand_computation(store: tuple) -> None:
    _, uri, _ = store
    summary = summarize(load_runs("demo", tracking_uri=uri))
    base, tav, gamma = (ABLATION[("synth", v)] for v in ("baseline", "learnable_tav", "gamma"))
    row = _row(summary, "synth", "learnable_tav")
    assert row["n"] == 4
    assert row["mean"] == pytest.approx(statistics.mean(tav))
    assert row["std"] == pytest.approx(statistics.stdev(tav))
    half = st.t.ppf(0.975, 3) * statistics.stdev(tav) / 2
    assert row["ci_low"] == pytest.approx(statistics.mean(tav) - half)
    diffs = [a - b for a, b in zip(tav, base, strict=True)]
    assert row["delta"] == pytest.approx(statistics.mean(diffs))
    p_tav = _hand_t(diffs)
    assert row["p_t"] == pytest.approx(p_tav)
    # Wilcoxon with 4 pairs, all positive: exact two-sided p = 2 / 2^4
    assert row["p_wilcoxon"] == pytest.approx(2 / 16)
    # Holm over the table's three comparisons
    p_gamma = _hand_t([a - b for a, b in zip(gamma, base, strict=True)])
    b_base, b_tav = ABLATION[("synth_b", "baseline")], ABLATION[("synth_b", "learnable_tav")]
    p_b = _hand_t([a - b for a, b in zip(b_tav, b_base, strict=True)])
    ordered = sorted([p_tav, p_gamma, p_b])
    adj = [min(1, 3 * ordered[0])]
    adj.append(max(adj[0], min(1, 2 * ordered[1])))
    adj.append(max(adj[1], min(1, ordered[2])))
    holm_of = dict(zip(ordered, adj, strict=True))
    assert row["p_holm"] == pytest.approx(holm_of[p_tav])
    assert _row(summary, "synth", "gamma")["p_holm"] == pytest.approx(holm_of[p_gamma])
    assert _row(summary, "synth_b", "learnable_tav")["p_holm"] == pytest.approx(holm_of[p_b])
    assert math.isnan(_row(summary, "synth", "baseline")["p_t"])


def test_failed_and_pruned_are_counted_not_averaged(store: tuple) -> None:
    _, uri, _ = store
    summary = summarize(load_runs("demo", tracking_uri=uri))
    tav = _row(summary, "synth", "learnable_tav")
    assert (tav["n_runs"], tav["n_finished"], tav["n_failed"]) == (5, 4, 1)
    assert tav["mean"] < 0.6  # the failed run logged 0.99: not in the mean
    assert _row(summary, "synth", "gamma")["n_pruned"] == 1
    assert _row(summary, "synth", "baseline")["n_diverged"] == 1


def test_costs(store: tuple) -> None:
    _, uri, _ = store
    row = _row(summarize(load_runs("demo", tracking_uri=uri)), "synth", "learnable_tav")
    assert row["params_ratio"] == pytest.approx(2 / 1000)
    assert row["gflops_ratio"] == pytest.approx(0.02 / 4)
    assert row["compute_hours"] == pytest.approx(5 * 0.5)  # the failed run's time counts
    assert row["compute_device"] == "cpu"
    assert row["clips_per_s"] == pytest.approx(100.0)


def test_power_analysis() -> None:
    assert paired_power(1.0, 10) == pytest.approx(0.8031, abs=1e-3)  # textbook value
    assert seeds_needed(pd.Series([0.1, 0.2, 0.15, 0.12]).to_numpy()) >= 2
    n = seeds_needed(pd.Series([0.01, 0.03, -0.01, 0.02]).to_numpy())
    d = 0.0125 / statistics.stdev([0.01, 0.03, -0.01, 0.02])
    assert paired_power(d, int(n)) >= 0.8 > paired_power(d, int(n) - 1)


def test_holm_keeps_nan() -> None:
    out = holm(pd.Series([0.01, float("nan"), 0.04, 0.03]))
    assert out.iloc[0] == pytest.approx(0.03)
    assert math.isnan(out.iloc[1])
    assert out.iloc[2] == pytest.approx(0.06) and out.iloc[3] == pytest.approx(0.06)


def test_report_files_and_byte_identical(store: tuple, tmp_path: Path) -> None:
    _, uri, _ = store
    first = make_report("demo", tracking_uri=uri, results_dir=tmp_path / "a")
    second = make_report("demo", tracking_uri=uri, results_dir=tmp_path / "b")
    for a, b in zip(first.paths, second.paths, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name
    md = first.paths[0].read_text()
    assert "| x3d_xs | learnable_tav | **55.50 ± 2.08*** | **34.67 ± 1.53** | 1 |" in md
    assert "x3d_xs / gamma / synth: 1 pruned" in md
    tex = first.paths[1].read_text()
    assert r"\toprule" in tex and r"\bfseries 55.50 $\pm$ 2.08$^{*}$" in tex
    csv = pd.read_csv(first.paths[2])
    assert len(csv) == 5 and {"p_holm", "seeds_needed", "compute_hours"} <= set(csv.columns)


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
        summarize(load_runs("demo", tracking_uri=uri), metric="nope")


def test_cli_report_and_unknown_study(
    store: tuple, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, uri, _ = store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    runner = CliRunner()
    res = runner.invoke(app, ["report", "demo", "--results-dir", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "learnable_tav" in res.output and (tmp_path / "demo" / "table.tex").exists()
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
