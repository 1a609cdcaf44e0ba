"""Figures from real MLflow runs: valid PNG/PDF files and the expected panels."""

from __future__ import annotations

import math
import time
import tomllib
import warnings
from pathlib import Path

import matplotlib
import numpy as np
import optuna
import pandas as pd
import pytest
from matplotlib.colors import to_hex
from report_fixtures import (
    log_ablation,
    log_run,
    log_search,
    log_sweep,
    make_client,
    make_clip,
)
from typer.testing import CliRunner

from mpbench import tracking as tk
from mpbench.cli import app
from mpbench.report import figures as fg
from mpbench.report.build import make_figures
from mpbench.report.load import LONG_COLUMNS, load_history, load_runs, long_form
from mpbench.report.stats import aggregate, summarize_cells, with_setting
from mpbench.variants import VARIANTS

PNG = b"\x89PNG\r\n\x1a\n"
PN_STUDY = Path(__file__).parents[1] / "studies" / "pn_functions.toml"


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
    # 'gamma' is no registered variant: its function is unknown, so it is not drawn
    assert [line.get_label() for line in fig.axes[0].lines] == [
        "x3d_xs / learnable_tav (a=12.00, b=-0.10)"
    ]
    d, a = fig.axes[0].lines[0].get_data()  # learnable_tav: a=12, b=-0.1
    assert a[np.argmin(np.abs(d + 0.1))] == pytest.approx(0.5, abs=0.02)


def test_attention_strip_layout() -> None:
    fig = fg.plot_attention_strip(make_clip(t=4))
    assert len(fig.axes) == 4 * 5
    assert sum(ax.get_visible() for ax in fig.axes) == 5 + 3 * 4
    assert [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()] == list(fg.STRIP_ROWS)
    bad = make_clip(t=4) | {"diffs": np.zeros((3, 8, 8))}
    with pytest.raises(ValueError, match=r"diffs must have shape \(4, 8, 8\)"):
        fg.plot_attention_strip(bad)


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


def test_ablation_of_many_settings_lies_down() -> None:
    """Past 8 settings in a panel (a nuisance study's 24) the bars lie down and the labels read
    across, in a taller figure, so no label collapses the axes; up to 8 they stand up."""
    rows = [
        {
            "run_id": f"r{v}{n}",
            "variant": f"{v} level={n}",
            "metric": tk.M_TEST_TOP1,
            "value": 0.9 - 0.1 * n,
        }
        for v in ("baseline", "learnable", "learnable_tav")
        for n in range(4)
    ]
    fig = fg.plot_ablation(_long(rows))
    ax = fig.axes[0]
    shown = [t.get_text() for t in ax.get_yticklabels()]
    assert shown == [r["variant"] for r in rows]  # top to bottom
    assert [p.get_width() for p in ax.patches][:4] == pytest.approx([90.0, 80.0, 70.0, 60.0])
    assert ax.get_xlim() == (0, 100) and ax.get_xlabel() == "test top-1 (%)"
    assert fig.get_size_inches()[1] == pytest.approx(fg.BAR_HEIGHT * 12)
    few = fg.plot_ablation(_long(rows[:4]))
    assert [p.get_height() for p in few.axes[0].patches] == pytest.approx([90.0, 80.0, 70.0, 60.0])


def _long(rows: list[dict]) -> pd.DataFrame:
    """A long frame of hand-made finished grid runs, one row per dict (run_id, variant, metric,
    value and what else differs)."""
    base = {
        "study": "s",
        "kind": "grid",
        "cell": None,
        "backbone": "x3d_xs",
        "dataset": "synth",
        "seed": 0,
        "status": tk.STATUS_FINISHED,
        "optuna_trial": None,
        "device": "cpu",
        "run_status": "FINISHED",
        "start_time": 0,
        "end_time": 0,
        "tav_weight": math.nan,
        "step": -1,
    }
    return pd.DataFrame([{**base, **row} for row in rows], columns=list(LONG_COLUMNS))


# strengths (a, gamma or eta) in their ranges, shift 0
STRENGTH = {"sigmoid": 12.0, "gamma": 0.5, "maxexp": 3.0, "sigme": 5.0, "asinhe": 5.0}


def _variant_runs(variants: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Latest values (test_top1, slope, shift) and val_top1 histories of one run per variant."""
    rows, history = [], []
    for k, name in enumerate(variants):
        run = {"run_id": f"r{k:02d}", "variant": name}
        rows.append({**run, "metric": tk.M_TEST_TOP1, "value": 0.3 + 0.01 * k})
        if VARIANTS.get(name).prompt:
            slope = STRENGTH[VARIANTS.get(name).pn]
            rows.append({**run, "metric": tk.M_SLOPE, "value": slope})
            rows.append({**run, "metric": tk.M_SHIFT, "value": 0.0})
        history += [{**run, "metric": tk.M_VAL_TOP1, "value": 0.1 * s, "step": s} for s in (0, 1)]
    return _long(rows), _long(history)


def _line_colours(fig: object) -> dict[str, str]:
    """Label (the variant) -> colour of the lines of the first axes."""
    return {
        line.get_label().split(" / ")[-1].split(" (")[0]: to_hex(line.get_color())
        for line in fig.axes[0].lines  # type: ignore[attr-defined]
    }


def test_every_variant_has_its_own_colour() -> None:
    """Sixteen registered variants in one figure: sixteen colours (not the index mod 10)."""
    names = VARIANTS.names()
    assert len(names) > 10
    df, _ = _variant_runs(names)
    fig = fg.plot_ablation(df)
    colours = [to_hex(p.get_facecolor(), keep_alpha=False) for p in fig.axes[0].patches]
    assert len(colours) == len(names) == len(set(colours))


def test_a_variant_keeps_its_colour_across_the_figures() -> None:
    """The variants of studies/pn_functions.toml: distinct colours, the same in bars, learning
    curves and attention functions drawn with one study palette."""
    variants = tomllib.loads(PN_STUDY.read_text())["grid"]["variant"]
    df, history = _variant_runs(variants)
    palette = fg.study_palette(df)
    ablation = fg.plot_ablation(df, palette=palette)
    ticks = [t.get_text() for t in ablation.axes[0].get_xticklabels()]
    bars = {
        lb: to_hex(p.get_facecolor(), keep_alpha=False)
        for lb, p in zip(ticks, ablation.axes[0].patches, strict=True)
    }
    curves = _line_colours(fg.plot_learning_curves(history, palette=palette))
    functions = _line_colours(fg.plot_attention_functions(df, palette=palette))
    assert sorted(bars) == sorted(curves) == sorted(variants)
    assert len(set(bars.values())) == len(variants)
    assert curves == bars
    assert functions == {v: bars[v] for v in variants if v != "baseline"}


def test_attention_function_is_each_variants_own() -> None:
    """The drawn curve is the variant's layer: a sigmoid for learnable, 1 - (1 - |D|)^eta for
    pn_maxexp (hand-computed values)."""
    rows = []
    for run, variant, slope, shift in (
        ("a", "learnable", 12.0, -0.1),
        ("b", "pn_maxexp", 3.0, 0.0),
    ):
        rows.append({"run_id": run, "variant": variant, "metric": tk.M_SLOPE, "value": slope})
        rows.append({"run_id": run, "variant": variant, "metric": tk.M_SHIFT, "value": shift})
    fig = fg.plot_attention_functions(_long(rows))
    lines = {line.get_label(): line.get_data() for line in fig.axes[0].lines}
    assert sorted(lines) == [
        "x3d_xs / learnable (a=12.00, b=-0.10)",
        "x3d_xs / pn_maxexp (eta=3.00, b=0.00)",
    ]

    def at(label: str, diff: float) -> float:
        d, a = lines[label]
        return float(a[np.argmin(np.abs(d - diff))])

    sigmoid, maxexp = sorted(lines)
    assert at(sigmoid, 0.0) == pytest.approx(1 / (1 + math.exp(-1.2)), abs=1e-6)
    assert at(sigmoid, 0.5) == pytest.approx(1 / (1 + math.exp(-7.2)), abs=1e-6)
    assert at(maxexp, 0.5) == pytest.approx(0.875, abs=1e-6)  # 1 - 0.5^3
    assert at(maxexp, -0.2) == pytest.approx(0.488, abs=1e-6)  # 1 - 0.8^3: the sign is lost
    assert at(maxexp, 0.0) == pytest.approx(0.0, abs=1e-6)  # sigmoid(3 D) would give 0.5


def _study(direction: str, metric: str, values: list[float]) -> optuna.Study:
    """An in-memory study of ``len(values)`` complete trials over x and y."""
    study = optuna.create_study(direction=direction, sampler=optuna.samplers.RandomSampler(seed=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([metric])
    for value in values:
        trial = study.ask()
        trial.suggest_float("x", 0.0, 1.0)
        trial.suggest_categorical("y", ["a", "b"])
        study.tell(trial, value)
    return study


@pytest.mark.parametrize(
    ("direction", "metric", "values", "best"),
    [
        # a maximised metric whose name says "loss": the best so far rises
        ("maximize", "val_loss_ratio", [0.2, 0.5, 0.3, 0.7], [0.2, 0.5, 0.5, 0.7]),
        # a minimised metric without "loss" in its name: the best so far falls
        ("minimize", "seconds_per_clip", [0.5, 0.2, 0.3, 0.1], [0.5, 0.2, 0.2, 0.1]),
    ],
)
def test_best_so_far_follows_the_study_direction(
    direction: str, metric: str, values: list[float], best: list[float]
) -> None:
    fig = fg.plot_optimization_history(_study(direction, metric, values))
    ax = fig.axes[0]
    drawn = {line.get_label(): line.get_ydata() for line in ax.lines}
    assert list(drawn["Best Value"]) == pytest.approx(best)
    assert ax.get_ylabel() == metric


def test_param_importances_are_optunas() -> None:
    """The figure's bars and the table are optuna.importance's values for a real study."""
    values = [float(v) for v in np.random.default_rng(0).random(12)]
    study = _study("maximize", tk.M_VAL_TOP1, values)
    expected = optuna.importance.get_param_importances(study)
    table = fg.param_importances(study)
    assert dict(zip(table["param"], table["importance"], strict=True)) == pytest.approx(expected)
    ax = fg.plot_param_importances(study).axes[0]
    names = [t.get_text() for t in ax.get_yticklabels()]
    widths = [p.get_width() for p in ax.patches]
    assert dict(zip(names, widths, strict=True)) == pytest.approx(expected)
    with pytest.raises(fg.NoData, match="1 complete trials"):
        fg.param_importances(_study("maximize", tk.M_VAL_TOP1, [0.5]))


def test_ablation_bars_equal_the_table_after_a_rerun(tmp_path: Path) -> None:
    """A re-run seed replaces the earlier run in the bars as in the table."""
    client, uri = make_client(tmp_path)
    for seed, value in ((0, 0.5), (1, 0.6), (1, 0.9)):  # seed 1 re-run (later): 0.9 counts
        log_run(client, study="retry", variant="baseline", dataset="synth", seed=seed, final=value)
        time.sleep(0.01)  # the re-run ends later
    runs = load_runs("retry", tracking_uri=uri)
    fig = fg.plot_ablation(long_form(runs))
    table = summarize_cells(runs, resamples=50)
    mean = table.loc[table["split"] == "test", "mean"].item()
    assert mean == pytest.approx(0.7)  # (0.5 + 0.9) / 2, by hand
    assert [p.get_height() for p in fig.axes[0].patches] == pytest.approx([100 * mean])
    assert len(fig.axes[0].collections[-1].get_offsets()) == 2  # two seeds drawn, not three


def test_figures_leave_no_global_state(store: tuple) -> None:
    """No backend switch, no rcParams change (Optuna's ggplot sheet included), no pyplot
    figure left open."""
    import matplotlib.pyplot as plt

    uri, _ = store
    backend, rc, open_figures = (
        matplotlib.get_backend(),
        dict(matplotlib.rcParams),
        plt.get_fignums(),
    )
    runs = load_runs("demo", tracking_uri=uri)
    fg.plot_ablation(long_form(runs))
    fg.plot_attention_functions(long_form(runs))
    fg.plot_attention_strip(make_clip(t=2))
    study = _study("maximize", tk.M_VAL_TOP1, [0.1, 0.3, 0.2])
    fg.plot_optimization_history(study)
    fg.plot_param_importances(study)
    assert matplotlib.get_backend() == backend
    assert dict(matplotlib.rcParams) == rc
    assert plt.get_fignums() == open_figures


def test_make_figures_draws_the_search_from_its_storage(
    store: tuple, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the study's Optuna storage the search figures are drawn; without it they are
    skipped with a note that says what to give."""
    uri, _ = store
    journal = tmp_path / "optuna.journal"
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(journal))
    )
    study = optuna.create_study(study_name="search", storage=storage, direction="maximize")
    for trial in range(6):
        study.enqueue_trial({"lr": 10.0 ** (-4 + trial % 3), "optimizer": "adamw"})
        study.optimize(
            lambda t: (
                0.4
                + 0.01 * -math.log10(t.suggest_float("lr", 1e-4, 1e-2, log=True))
                + 0.0 * (t.suggest_categorical("optimizer", ["adamw", "sgd"]) == "sgd")
            ),
            n_trials=1,
        )
    notes: list[str] = []
    paths = make_figures("search", tracking_uri=uri, results_dir=tmp_path, note=notes.append)
    assert not any(p.stem in ("search_history", "param_importances") for p in paths)
    assert any("give its storage (--storage)" in n for n in notes)
    paths = make_figures(
        "search", tracking_uri=uri, results_dir=tmp_path, note=print, storage=str(journal)
    )
    drawn = {p.name for p in paths}
    assert {"search_history.png", "param_importances.pdf"} <= drawn
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    out = tmp_path / "cli"
    args = ["figures", "search", "--results-dir", str(out), "--storage", str(journal)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert (out / "search" / "param_importances.png").read_bytes()[:8] == PNG
