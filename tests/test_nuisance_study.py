"""studies/nuisance.toml at toy size: every cell runs, and the nuisance figure draws accuracy vs
nuisance strength per variant (test, test_shift and the appearance gap)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.collections import PathCollection
from matplotlib.container import ErrorbarContainer
from typer.testing import CliRunner

from mpbench.cli import app

REPO = Path(__file__).resolve().parents[1]
TOY_CLIPS = (
    "train_clips = 480, val_clips = 96, test_clips = 160",
    "train_clips = 8, val_clips = 4, test_clips = 4",
)
TOY_SETS = ["--set", "epochs=1", "--set", "max_steps=1", "--set", "batch_size=4"]


def toy_study(folder: Path) -> Path:
    """studies/nuisance.toml with 8 / 4 / 4 clips and one seed."""
    text = (REPO / "studies" / "nuisance.toml").read_text()
    assert text.count(TOY_CLIPS[0]) == 8 and text.count("seeds = 2") == 1
    path = folder / "studies" / "nuisance.toml"
    path.parent.mkdir(parents=True)
    path.write_text(text.replace(*TOY_CLIPS).replace("seeds = 2", "seeds = 1"))
    return path


@pytest.mark.slow
def test_nuisance_study_runs_at_toy_size_and_draws_its_figure(tmp_path, mlflow_uri) -> None:
    from mpbench.report.figures import plot_nuisance
    from mpbench.report.load import load_runs

    study = toy_study(tmp_path)
    runner = CliRunner()
    res = runner.invoke(app, ["grid", str(study), *TOY_SETS])
    assert res.exit_code == 0, res.output
    figs = runner.invoke(app, ["figures", "nuisance", "--results-dir", str(tmp_path / "out")])
    assert figs.exit_code == 0, figs.output
    for ext, head in (("png", b"\x89PNG"), ("pdf", b"%PDF")):
        assert (tmp_path / "out" / "nuisance" / f"nuisance.{ext}").read_bytes()[:4] == head
    runs = load_runs("nuisance")
    assert len(runs) == 3 * 8 and runs["metric.test_shift_top1"].notna().all()
    fig = plot_nuisance(runs)
    axes = fig.axes
    assert [ax.get_title() for ax in axes[:2]] == ["nuisance: distractors", "nuisance: flicker"]
    assert len(axes) == 3 * 2  # test, test_shift, appearance gap x the two ladders
    for k, ax in enumerate(axes):  # one error-bar line per variant (caps are lines of their own)
        bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
        xs = np.array([c.lines[0].get_xdata() for c in bars], dtype=float)
        offsets = xs - np.arange(4)  # levels 0-3, each variant nudged aside by its own offset
        assert len(bars) == 3 and np.allclose(offsets, offsets[:, :1])
        assert np.allclose(offsets[:, 0], [-0.08, 0.0, 0.08])
        dots = [c.get_offsets() for c in ax.collections if isinstance(c, PathCollection)]
        assert sum(len(d) for d in dots) == 3 * 4  # one seed's dot per variant and level
        if k < 4:  # rows test and test_shift (row-major axes): accuracy in [0, 100] %
            assert ax.get_ylim() == (0, 100)
        else:  # the appearance gap: its seeds' range, 10 points either side
            gaps = np.concatenate(dots)[:, 1]
            assert ax.get_ylim() == pytest.approx((gaps.min() - 10, gaps.max() + 10))
