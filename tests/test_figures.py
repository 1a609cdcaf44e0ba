"""Figures from real MLflow runs: valid PNG/PDF files and the expected panels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from report_fixtures import (
    log_ablation,
    log_run,
    log_search,
    log_sweep,
    make_client,
    make_clip,
)

from mpbench import tracking as tk
from mpbench.report import figures as fg
from mpbench.report.build import make_figures
from mpbench.report.load import load_history, load_runs, long_form
from mpbench.report.stats import aggregate, with_setting

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """A store with the ablation ('demo'), lambda sweep ('sweep') and search ('search')."""
    tmp = tmp_path_factory.mktemp("mlflow")
    client, uri = make_client(tmp)
    log_ablation(client)
    log_sweep(client)
    log_search(client)
    return uri, tmp


def _png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == PNG
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_ablation_panels(store: tuple) -> None:
    uri, _ = store
    fig = fg.plot_ablation(long_form(load_runs("demo", tracking_uri=uri)))
    assert fg.figure_titles(fig) == ["x3d_xs · synth", "x3d_xs · synth_b"]
    bars = [p.get_height() for p in fig.axes[0].patches]
    assert bars == pytest.approx([50.25, 50.5, 55.5])  # baseline, gamma, learnable_tav (%)
    assert fig.axes[0].get_ylabel() == "test top-1 (%)"  # the axis names the split


def test_aggregate_panels(store: tuple) -> None:
    uri, _ = store
    agg = aggregate(load_runs("demo", tracking_uri=uri), resamples=200)
    fig = fg.plot_aggregate(agg)
    assert fg.figure_titles(fig) == ["IQM over tasks and seeds", "probability of improvement"]
    left, right = fig.axes
    assert left.get_xlabel() == "IQM of test top-1 (%)"
    assert right.get_xlabel() == "P(variant > baseline), test split"
    labels = [t.get_text() for t in left.get_yticklabels()]
    assert labels == ["baseline", "gamma", "learnable_tav"]
    assert list(left.get_yticks()) == [2, 1, 0]  # baseline on top
    points = left.collections[-1].get_offsets()[:, 0]
    assert list(points) == pytest.approx([42.4, 50.0, 47.0])  # IQMs (%) of the hand computation
    assert list(right.collections[-1].get_offsets()[:, 0]) == pytest.approx([0.5, 1.0])
    val = fg.plot_aggregate(agg, metric=tk.M_VAL_TOP1)
    assert val.axes[0].get_xlabel() == "IQM of val top-1 (%)"
    with pytest.raises(fg.NoData, match="no aggregate of 'test_top5'"):
        fg.plot_aggregate(agg, metric=tk.M_TEST_TOP5)


def test_lambda_sweep_panels(store: tuple) -> None:
    uri, _ = store
    fig = fg.plot_lambda_sweep(long_form(load_runs("sweep", tracking_uri=uri)))
    assert fg.figure_titles(fig) == ["test top-1 (%)", "slope a", "shift b"]
    x, y = fig.axes[1].lines[0].get_data()
    assert list(x) == [0.0, 0.5, 1.0] and list(y) == [10.0, 11.0, 12.0]
    with pytest.raises(fg.NoData, match="two or more tav_weight"):
        fg.plot_lambda_sweep(long_form(load_runs("demo", tracking_uri=uri)))


def test_learning_curves_and_attention_function(store: tuple) -> None:
    uri, _ = store
    runs = load_runs("demo", tracking_uri=uri)
    hist = load_history(runs, metrics=(tk.M_VAL_TOP1,), tracking_uri=uri)
    fig = fg.plot_learning_curves(hist)
    assert fg.figure_titles(fig) == ["x3d_xs · synth", "x3d_xs · synth_b"]
    assert len(fig.axes[0].lines) == 3
    assert fig.axes[0].get_ylabel() == "val top-1 (%)"
    fig = fg.plot_attention_functions(long_form(runs))
    assert fg.figure_titles(fig) == ["synth", "synth_b"]
    d, a = fig.axes[0].lines[1].get_data()  # learnable_tav: a=12, b=-0.1
    assert a[np.argmin(np.abs(d + 0.1))] == pytest.approx(0.5, abs=0.02)


def test_attention_strip_layout() -> None:
    fig = fg.plot_attention_strip(make_clip(t=4))
    assert len(fig.axes) == 4 * 5
    assert sum(ax.get_visible() for ax in fig.axes) == 5 + 3 * 4
    assert [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()] == list(fg.STRIP_ROWS)
    bad = make_clip(t=4) | {"diffs": np.zeros((3, 8, 8))}
    with pytest.raises(ValueError, match=r"diffs must have shape \(4, 8, 8\)"):
        fg.plot_attention_strip(bad)


def test_search_figures(store: tuple) -> None:
    uri, _ = store
    runs = load_runs("search", tracking_uri=uri)
    fig = fg.plot_optimization_history(long_form(runs))
    assert fg.figure_titles(fig) == ["optimisation history"]
    imp = fg.param_importances(runs)
    assert imp["param"].tolist() == ["lr", "optimizer"]
    assert imp["importance"].tolist() == pytest.approx([1.0, 0.0])
    assert len(fg.plot_param_importances(imp).axes[0].patches) == 2


def test_make_figures_writes_png_and_pdf(store: tuple, tmp_path: Path) -> None:
    uri, _ = store
    notes: list[str] = []
    paths = make_figures("demo", tracking_uri=uri, results_dir=tmp_path, note=notes.append)
    names = sorted(p.name for p in paths)
    expected = ["ablation", "aggregate", "attention_function", "attention_strip", "learning_curves"]
    assert names == sorted(f"{n}.{ext}" for n in expected for ext in ("pdf", "png"))
    for path in paths:
        if path.suffix == ".png":
            width, height = _png_size(path)
            assert width > 200 and height > 200
        else:
            assert path.read_bytes()[:5] == b"%PDF-"
    assert any(n.startswith("skipped lambda_sweep") for n in notes)
    assert any(n.startswith("skipped search_history") for n in notes)


def test_ablation_bars_per_varied_field(tmp_path: Path) -> None:
    """Runs that differ in lr get one bar each (the label carries the varied fields)."""
    client, uri = make_client(tmp_path)
    for lr, values in (("0.001", [0.5, 0.6]), ("0.01", [0.2, 0.3])):
        for seed, value in enumerate(values):
            log_run(
                client,
                study="lr",
                variant="baseline",
                dataset="synth",
                seed=seed,
                final=value,
                params={"lr": lr},
            )
    runs = load_runs("lr", tracking_uri=uri)
    fig = fg.plot_ablation(long_form(with_setting(runs)))
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == ["baseline lr=0.001", "baseline lr=0.01"]
    assert [p.get_height() for p in fig.axes[0].patches] == pytest.approx([55.0, 25.0])
    agg = fg.plot_aggregate(aggregate(runs, resamples=50))
    assert [t.get_text() for t in agg.axes[0].get_yticklabels()] == labels
