"""The loader's share of the training loop: measured in every trial, warned of, reported."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import torch
from mlflow import MlflowClient
from typer.testing import CliRunner

from mpbench import tracking as tk
from mpbench.config import TrialConfig
from mpbench.data import preset_spec, write_synth_dataset
from mpbench.engine import run_trial
from mpbench.engine import train as train_mod
from mpbench.engine.step import LoopClock, trial_rates, wait_share

TINY = {"classes": 2, "train_clips": 8, "val_clips": 4, "test_clips": 2, "video_frames": 8}
FACTOR = 3.0  # the slowed loader takes 3 times as long as the step that consumed its last batch
STEPS = 4
MIN_DELAY_S = 0.1


class SlowSource:
    """A real video source slowed on purpose, on any machine load: every read sleeps FACTOR
    times the gap since the previous read ended (between batches: the step that consumed the
    last batch), and at least MIN_DELAY_S. So the loop waits >= FACTOR / (1 + FACTOR) of its
    time over many steps, however long a step takes on a loaded CPU (workers 0: the loop's own
    process). The last step is followed by no wait: over STEPS steps of equal time the share is
    3 x 3 / (3 x 3 + 4) = 0.69, and 0.6 when the last step takes three times as long."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.slept, self._last = inner, 0.0, None

    def __len__(self) -> int:
        return len(self.inner)

    def label(self, index: int) -> int:
        return self.inner.label(index)

    def describe(self, index: int) -> str:
        return self.inner.describe(index)

    def read(self, index: int, select: Any) -> torch.Tensor:
        gap = 0.0 if self._last is None else time.perf_counter() - self._last
        delay = max(MIN_DELAY_S, FACTOR * gap)
        time.sleep(delay)
        self.slept += delay
        try:
            return self.inner.read(index, select)
        finally:
            self._last = time.perf_counter()


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic dataset written as mp4 files."""
    root = tmp_path_factory.mktemp("synth")
    write_synth_dataset(root, spec=preset_spec("easy", size=48, **TINY), seed=0)
    return root


@pytest.fixture
def slowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Trials built from now on read their training clips through :class:`SlowSource`."""
    real = train_mod.build_data_for
    monkeypatch.setattr(train_mod, "build_data_for", lambda config: _slow(real(config)))


def _config(root: Path, tmp_path: Path, **kw: Any) -> TrialConfig:
    base = dict(
        backbone="x3d_xs",
        size="tiny",
        variant="learnable",
        dataset="synth",
        data_root=str(root),
        frames=4,
        crop=32,
        epochs=1,
        max_steps=STEPS,
        batch_size=1,
        test_clips=1,
        test_crops=1,
        device="cpu",
        run_dir=str(tmp_path / "trial"),
    )
    return TrialConfig(**{**base, **kw})


def _history(client: MlflowClient, run_id: str, key: str) -> list[float]:
    return [m.value for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)]


def test_loop_clock_splits_the_loop_and_trial_rates_sum_the_epochs() -> None:
    clock = LoopClock(torch.device("cpu"))
    time.sleep(0.05)
    clock.lap("data")
    clock.lap("step")
    assert clock.seconds["data"] >= 0.05 and clock.total == pytest.approx(
        sum(clock.seconds.values())
    )
    assert wait_share(1.0, 3.0) == 0.25 and wait_share(0.0, 0.0) == 0.0
    history = [
        {tk.M_DATA_WAIT_SECONDS: 1.0, tk.M_STEP_SECONDS: 3.0, tk.M_CLIPS_PER_S: 10.0},
        {tk.M_DATA_WAIT_SECONDS: 3.0, tk.M_STEP_SECONDS: 1.0, tk.M_CLIPS_PER_S: 20.0},
        {tk.M_CLIPS_PER_S: 99.0},  # an epoch of an old checkpoint, before the loop was timed
    ]
    # (1 + 3) / 8 waited; (10 clips/s x 4 s + 20 x 4 s) / 8 s
    assert trial_rates(history) == {tk.M_DATA_WAIT_SHARE: 0.5, tk.M_CLIPS_PER_S: 15.0}
    assert trial_rates(history[2:]) == {}


@pytest.mark.slow
def test_slowed_loader_logs_a_high_share_and_prints_the_warning(
    synth_root: Path, tmp_path: Path, mlflow_uri: str, slowed: None
) -> None:
    from mpbench.cli import app

    args = ["train", "--backbone", "x3d_xs", "--variant", "learnable", "--data-root",
            str(synth_root), "--epochs", "1", "--run-dir", str(tmp_path / "r"), "--device", "cpu",
            "--set", "frames=4", "--set", "crop=32", "--set", "batch_size=1", "--set",
            f"max_steps={STEPS}", "--set", "test_clips=1", "--set", "test_crops=1"]  # fmt: skip
    res = CliRunner().invoke(app, args, env={"COLUMNS": "300"})
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert "epoch 0: the training loop waited for data" in out, out
    assert "more DataLoader workers (workers = 0 now)" in out
    assert "the decoded-clip cache (dataset option cache = true)" in out
    assert "a smaller short side (dataset option short_side, 37 now, >= crop)" in out
    client = MlflowClient(mlflow_uri)
    run = client.search_runs([client.get_experiment_by_name("mpbench").experiment_id])[0]
    per_epoch = _history(client, run.info.run_id, tk.M_DATA_WAIT_SHARE)
    assert len(per_epoch) == 2 and all(s > 0.5 for s in per_epoch), per_epoch  # epoch 0, final
    waited = _history(client, run.info.run_id, tk.M_DATA_WAIT_SECONDS)[0]
    assert waited >= STEPS * MIN_DELAY_S  # STEPS steps of 1 clip, each read slept that at least
    print(f"slowed loader: data_wait_share {per_epoch}")


@pytest.mark.slow
def test_cached_trial_waits_little_and_the_report_shows_the_share_per_cell(
    synth_root: Path, tmp_path: Path, mlflow_uri: str, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    """The cached trial reads clips from memory-mapped frames in the loop's own process
    (workers 0): next to a step of the tiny X3D that costs 10-100 times more on any load, its
    share stays far below 0.2 (0.01 measured at a load average of 8 on 2 cores)."""
    from mpbench.report.build import make_report

    tags = {tk.TAG_STUDY: "waits", tk.TAG_KIND: "grid"}
    cfg = _config(synth_root, tmp_path, variant="baseline", dataset_options={"cache": True})
    with caplog.at_level("WARNING", logger="mpbench"):
        cached = run_trial(cfg, experiment=tk.DEFAULT_EXPERIMENT, tags=tags, progress=False)
    assert cached.history[0][tk.M_DATA_WAIT_SHARE] < 0.2, cached.history
    assert cached.metrics[tk.M_DATA_WAIT_SHARE] < 0.2
    assert not [r for r in caplog.records if "waited for data" in r.getMessage()]
    real = train_mod.build_data_for
    monkeypatch.setattr(train_mod, "build_data_for", lambda config: _slow(real(config)))
    slow = run_trial(
        _config(synth_root, tmp_path, run_dir=str(tmp_path / "slow")),
        experiment=tk.DEFAULT_EXPERIMENT,
        tags=tags,
        progress=False,
    )
    assert slow.metrics[tk.M_DATA_WAIT_SHARE] > 0.5
    report = make_report("waits", results_dir=tmp_path / "results", resamples=10)
    table = (tmp_path / "results" / "waits" / "table.md").read_text()
    header = "| synth (val) | synth (test) | synth (test_shift) | synth (data wait %) | excluded |"
    assert header in table
    for variant, result in (("baseline", cached), ("learnable", slow)):
        share = f"{100 * result.metrics[tk.M_DATA_WAIT_SHARE]:.1f}"
        assert f"| x3d_xs | {variant} |" in table
        row = next(line for line in table.splitlines() if f"| {variant} |" in line)
        assert row.split("|")[-3].strip() == share, row
    assert "data wait %: the share of the training loop spent waiting" in table
    assert "data_wait_share" in report.summary.columns
    print(
        f"cached: data_wait_share {cached.metrics[tk.M_DATA_WAIT_SHARE]:.4f}; "
        f"slowed: {slow.metrics[tk.M_DATA_WAIT_SHARE]:.4f}"
    )


def _slow(data: Any) -> Any:
    """``data`` (a DataBundle) with its training clips read through :class:`SlowSource`."""
    data.train.source = SlowSource(data.train.source)
    return data
