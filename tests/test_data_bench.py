"""``bench data``: throughput rows from the library function and the CLI table."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mpbench.bench.data import bench_data
from mpbench.cli import app
from mpbench.data import preset_spec, write_synth_dataset

runner = CliRunner()
TINY = {"classes": 2, "train_clips": 12, "val_clips": 2, "video_frames": 6, "size": 32}


def test_bench_data_reports_clips_per_second_per_worker_count(tmp_path: Path) -> None:
    write_synth_dataset(tmp_path, spec=preset_spec("easy", **TINY), seed=0)
    rows = bench_data("synth", root=tmp_path, frames=4, crop=32, batch=4, workers=[0, 1], batches=2)
    assert [r["workers"] for r in rows] == [0, 1]
    for r in rows:
        assert r["clips"] == 8 and r["skipped"] == 0
        assert r["clips_per_s"] > 0
        assert r["clips_per_s_per_worker"] == pytest.approx(r["clips_per_s"] / max(r["workers"], 1))


def test_bench_data_rejects_too_few_clips_and_bad_workers() -> None:
    with pytest.raises(ValueError, match=r"has 12 training clips; 10 \+ 1 batches of 8 need 88"):
        bench_data("synth", batch=8, batches=10, workers=[0], options=TINY)
    with pytest.raises(ValueError, match=r"workers must be a non-empty list of counts >= 0"):
        bench_data("synth", workers=[-1], options=TINY)


def test_cli_bench_data_prints_a_table(tmp_path: Path) -> None:
    write_synth_dataset(tmp_path, spec=preset_spec("easy", **TINY), seed=0)
    result = runner.invoke(
        app,
        [
            "bench",
            "data",
            "synth",
            "--root",
            str(tmp_path),
            "--workers",
            "0",
            "--batches",
            "2",
            "--batch",
            "4",
            "--crop",
            "32",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "clips/s per worker" in result.output and "workers=0:" in result.output


def test_cli_bench_data_errors_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["bench", "data", "synth", "--workers", "a,b"])
    assert result.exit_code == 2 and "--workers must be comma-separated integers" in result.output
    result = runner.invoke(app, ["bench", "data", "ucf101", "--root", str(tmp_path / "none")])
    assert result.exit_code == 2 and "not found" in result.output
