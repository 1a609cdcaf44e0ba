"""`mpbench viz` on a real video and `mpbench bench report` on a small synthetic store."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from report_fixtures import log_run, make_client
from typer.testing import CliRunner

from mpbench.bench.report import bench_report
from mpbench.cli import app

PNG = b"\x89PNG\r\n\x1a\n"


def write_video(path: Path, *, frames: int = 12, width: int = 64, height: int = 48) -> Path:
    """An mp4 of a white square moving right on black, written with PyAV."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=12)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            img = np.zeros((height, width, 3), dtype=np.uint8)
            img[16:32, 4 * i : 4 * i + 16] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture
def video(tmp_path: Path) -> Path:
    """A small real mp4 file."""
    return write_video(tmp_path / "clip.mp4")


def test_cli_viz_by_hand_and_by_run(
    video: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    out = tmp_path / "strip.png"
    res = runner.invoke(
        app,
        [
            "viz",
            str(video),
            "--slope",
            "12",
            "--shift",
            "0.1",
            "--frames",
            "5",
            "--size",
            "32",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert out.read_bytes()[:8] == PNG
    client, uri = make_client(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    run_id = log_run(
        client, study="s", variant="learnable_tav", dataset="synth", seed=0, slope=15.0, shift=-0.2
    )
    res = runner.invoke(
        app,
        [
            "viz",
            str(video),
            "--run",
            run_id,
            "--frames",
            "5",
            "--size",
            "32",
            "--out",
            str(tmp_path / "run.png"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "run.png").read_bytes()[:8] == PNG
    base = log_run(client, study="s", variant="baseline", dataset="synth", seed=0)
    res = runner.invoke(app, ["viz", str(video), "--run", base])
    assert res.exit_code == 2 and "logged no 'slope'" in res.output
    res = runner.invoke(app, ["viz", str(video), "--slope", "12"])
    assert res.exit_code == 2 and "both --slope A and --shift B" in res.output
    res = runner.invoke(
        app, ["viz", str(tmp_path / "missing.mp4"), "--slope", "12", "--shift", "0"]
    )
    assert res.exit_code == 2 and "video file not found" in res.output


def test_bench_report_small(tmp_path: Path) -> None:
    result = bench_report(runs=200, keep=tmp_path)
    # 2 backbones x 5 datasets x 10 variants x 2 splits (val, test)
    assert result.runs == 200 and result.rows == 200
    assert result.log_s > 0 and result.cold_s > 0 and result.warm_s > 0
    md = (tmp_path / "results" / "bench" / "table.md").read_text()
    assert "| backbone0 | baseline |" in md and "| dataset0 (val) | dataset0 (test) |" in md
    assert (tmp_path / "results" / "bench" / "aggregate.md").exists()
    res = CliRunner().invoke(app, ["bench", "report", "--runs", "100"])
    assert res.exit_code == 0, res.output
    assert "runs 100: logged in" in res.output and "warm (cache)" in res.output


@pytest.mark.parametrize("command", ["report", "figures", "export"])
def test_report_without_a_store_creates_none(
    command: str, tmp_path: Path, mlflow_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a folder without an MLflow store, report/figures/export say so (exit 2) and leave no
    mlflow.db behind (they used to create an empty one); the MLflow default store as well."""
    store = tmp_path / "mlflow.db"
    res = CliRunner().invoke(app, [command, "quickstart"])
    assert res.exit_code == 2, res.output
    assert res.output.startswith(
        f"error: no MLflow store at {store} (tracking URI {mlflow_uri!r}): no run has been "
        "logged there, so there is nothing to report; set MLFLOW_TRACKING_URI"
    )
    assert not store.exists() and not (tmp_path / "results").exists()
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    res = CliRunner().invoke(app, [command, "quickstart"])
    assert res.exit_code == 2 and "error: no MLflow store at " in res.output, res.output
    assert list((tmp_path / "elsewhere").iterdir()) == []
    make_client(tmp_path)  # a store without runs of the study: the error it always gave
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    res = CliRunner().invoke(app, [command, "quickstart"])
    assert res.exit_code == 2 and "no runs of study 'quickstart'" in res.output, res.output
