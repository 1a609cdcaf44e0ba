"""``bench decoders``: the decoder comparison (test videos, worker rows, ratios), and
``bench loader``: the DataLoader throughput of a dataset. Speeds are never asserted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from typer.testing import CliRunner

import mpbench.bench.data as data_mod
import mpbench.bench.decoders as decoders_mod
from mpbench.bench.data import (
    BenchVideo,
    VideoProbe,
    bench_data,
    data_vs_step,
    decoder_ratios,
    full_skip_reason,
    probe_video,
    write_bench_video,
)
from mpbench.bench.decoders import WorkerSpec, worker_main
from mpbench.cli import app
from mpbench.config import TrialConfig
from mpbench.data import preset_spec, write_synth_dataset

runner = CliRunner()
TINY = {"classes": 2, "train_clips": 12, "val_clips": 2, "video_frames": 6, "size": 32}


def _config(**fields: Any) -> TrialConfig:
    """The trial config whose loader is measured: synth, 4+1 frames, 32 px crops, batch 4."""
    return TrialConfig(**({"frames": 4, "crop": 32, "batch_size": 4} | fields))


def test_bench_data_reports_clips_per_second_per_worker_count(tmp_path: Path) -> None:
    write_synth_dataset(tmp_path, spec=preset_spec("easy", **TINY), seed=0)
    rows = bench_data(_config(data_root=str(tmp_path)), workers=[0, 1], batches=2)
    assert [r["workers"] for r in rows] == [0, 1]
    for r in rows:
        assert r["clips"] == 8 and r["skipped"] == 0
        assert r["clips_per_s"] > 0


def test_bench_data_rates_from_a_scripted_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    # every loader delivers 8 clips in 2.0 s: 4 clips/s in total; per worker that is 4 for the
    # main process alone (0 workers) and 4 / 2 = 2 with 2 worker processes
    monkeypatch.setattr(data_mod, "time_loader", lambda loader, batches: (8, 2.0, 0))
    rows = bench_data(_config(dataset_options=TINY), workers=[0, 2], batches=2)
    assert [(r["workers"], r["clips_per_s"], r["clips_per_s_per_worker"]) for r in rows] == [
        (0, 4.0, 4.0),
        (2, 4.0, 2.0),
    ]


def test_bench_data_rejects_too_few_clips_and_bad_workers() -> None:
    with pytest.raises(ValueError, match=r"has 12 training clips; 10 \+ 1 batches of 8 need 88"):
        bench_data(_config(dataset_options=TINY, batch_size=8), batches=10, workers=[0])
    with pytest.raises(ValueError, match=r"workers must be a non-empty list of counts >= 0"):
        bench_data(_config(dataset_options=TINY), workers=[-1])


def test_cli_bench_prints_a_table(tmp_path: Path) -> None:
    write_synth_dataset(tmp_path, spec=preset_spec("easy", **TINY), seed=0)
    result = runner.invoke(
        app,
        [
            "bench",
            "loader",
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


def test_cli_bench_loader_and_decoders_errors_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["bench", "loader", "synth", "--workers", "a,b"])
    assert result.exit_code == 2 and "--workers must be comma-separated integers" in result.output
    result = runner.invoke(app, ["bench", "loader", "ucf101", "--root", str(tmp_path / "none")])
    assert result.exit_code == 2 and "not found" in result.output
    # each command has only its own options: the other's are usage errors
    result = runner.invoke(app, ["bench", "loader", "synth", "--json", "x.json"])
    assert result.exit_code == 2 and "No such option: --json" in result.output
    result = runner.invoke(app, ["bench", "decoders", "--root", str(tmp_path)])
    assert result.exit_code == 2 and "No such option: --root" in result.output
    result = runner.invoke(app, ["bench", "decoders", "--decoders", "seek,ffmpeg"])
    assert result.exit_code == 2 and "--decoders must be among full, seek" in result.output
    result = runner.invoke(app, ["bench", "data", "--help"])
    assert result.exit_code == 2 and "No such command 'data'" in result.output


# --- the decoder comparison --------------------------------------------------------------------


def _row(video: str, seconds: float, decoder: str, ms: float | None, rss: float = 700.0) -> dict:
    status = "skipped" if ms is None else "ok"
    row = {
        "video": video,
        "kind": "h264",
        "seconds": seconds,
        "decoder": decoder,
        "workers": 1,
        "status": status,
        "reason": "too big" if ms is None else None,
    }
    if ms is not None:
        row.update(ms_per_clip=ms, clips_per_s_per_worker=1e3 / ms, peak_rss_mb=rss)
    return row


def test_decoder_ratios_follow_the_rows_and_the_targets() -> None:
    rows = [
        _row("a", 10.0, "full", 500.0),
        _row("a", 10.0, "seek", 50.0),
        _row("b", 60.0, "full", 3000.0),
        _row("b", 60.0, "seek", 60.0),
        _row("b", 60.0, "cache", 1.0),
        _row("c", 300.0, "full", None),
        _row("c", 300.0, "seek", 150.0, rss=900.0),
        {**_row("a", 10.0, "seek", 1.0), "workers": 2},  # another worker count: not used
    ]
    ratios = decoder_ratios(rows)
    assert [(r["key"], r["value"], r["verdict"]) for r in ratios] == [
        ("seek_vs_full", 10.0, "PASS"),  # 10 s video: target 4x
        ("seek_vs_full_long", 50.0, "PASS"),  # 60 s and longer: target 30x
        ("seek_vs_full_long", None, "n/a"),
        ("seek_long_vs_short", 3.0, "MISS"),
        ("seek_rss_long", 900.0, "PASS"),
        ("cache_vs_seek", 60.0, "PASS"),
    ]
    assert ratios[2]["label"].startswith("seek vs full, 300 s video")
    assert ratios[2]["reason"] == "full skipped"
    assert [r["target"] for r in ratios] == [
        ">= 4x",
        ">= 30x",
        ">= 30x",
        "<= 2x",
        "< 1000 MB",
        ">= 20x",
    ]
    assert (
        decoder_ratios([_row("b", 60.0, "full", 2000.0), _row("b", 60.0, "seek", 100.0)])[0][
            "verdict"
        ]
        == "MISS"
    )  # 20x on a 60 s video misses the 30x target


def test_full_is_skipped_when_twice_the_decoded_frames_exceed_the_limit() -> None:
    probe = VideoProbe("v.mp4", "h264", 1500, "25", 1280, 720, 455, 256)
    # full decodes at the stored size, as mpbench did before the seeking decoder
    assert full_skip_reason(probe, limit_gb=10.0) is None  # 2 x 4.15 GB
    assert full_skip_reason(probe, limit_gb=4.0) == (
        "full decoding would hold 2 x 1500 x 720 x 1280 x 3 bytes = 8.29 GB per worker, "
        "over the 4 GB limit"
    )


def test_bench_videos_are_written_once_with_their_codec_and_keyframe_interval(
    tmp_path: Path,
) -> None:
    h264 = write_bench_video(BenchVideo("h264", 11, 28, 16), tmp_path)
    xvid = write_bench_video(BenchVideo("xvid", 1, 32, 16), tmp_path)
    with av.open(str(h264)) as c:
        stream = c.streams.video[0]
        assert stream.codec_context.name == "h264"
        keys = [i for i, p in enumerate(c.demux(stream)) if p.size and p.is_keyframe]
    assert keys == [0, 250]
    with av.open(str(xvid)) as c:
        assert c.streams.video[0].codec_context.codec_tag == "XVID"
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 25 and not np.array_equal(frames[0], frames[12])  # moving content
    mtime = h264.stat().st_mtime_ns
    assert write_bench_video(BenchVideo("h264", 11, 28, 16), tmp_path) == h264
    assert h264.stat().st_mtime_ns == mtime and not list(tmp_path.glob(".*partial*"))
    probe = probe_video(h264, short_side=8, kind="h264")
    assert (probe.frames, probe.seconds, probe.out_height, probe.out_width) == (275, 11.0, 8, 14)


def test_a_worker_reports_a_failing_decoder_as_unavailable_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = WorkerSpec("seek", str(tmp_path / "none.mp4"), [[0, 1]], 8, 14, "25", 8)
    worker_main(spec)
    message = json.loads(capsys.readouterr().out)
    assert message["status"] == "unavailable"
    assert message["reason"].startswith("VideoDecodeError:") and "none.mp4" in message["reason"]


def test_cli_bench_compares_decoders_and_prints_the_ratios_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(decoders_mod.OPTIONAL_PACKAGES, "pytorchvideo", "mpbench_no_such_pkg")
    out = tmp_path / "rows.json"
    args = [
        "bench",
        "decoders",
        "--durations",
        "1,2",
        "--height",
        "32",
        "--size",
        "16",
        "--no-xvid",
        "--videos-dir",
        str(tmp_path / "videos"),
        "--clips",
        "2",
        "--decoders",
        "full,seek,pytorchvideo,cache",
        "--full-limit-gb",
        "1e-6",
        "--json",
        str(out),
    ]
    result = runner.invoke(app, args, terminal_width=200)
    assert result.exit_code == 0, result.output
    record = json.loads(out.read_text())
    rows = {(r["seconds"], r["decoder"]): r for r in record["rows"]}
    assert sorted(rows) == [
        (s, d) for s in (1.0, 2.0) for d in ("cache", "full", "pytorchvideo", "seek")
    ]
    for s in (1.0, 2.0):
        assert rows[s, "full"]["status"] == "skipped"
        assert "GB per worker, over the 1e-06 GB limit" in rows[s, "full"]["reason"]
        assert rows[s, "pytorchvideo"]["status"] == "not installed"
        for d in ("seek", "cache"):
            assert rows[s, d]["status"] == "ok" and rows[s, d]["clips"] == 2
            assert rows[s, d]["peak_rss_mb"] > 0
    out_text = result.output
    assert "pytorchvideo x 1 not installed: no module named 'mpbench_no_such_pkg'" in out_text
    assert "full x 1 skipped: full decoding would hold 2 x 25 x 32 x 56 x 3 bytes" in out_text
    assert len(record["cache_builds"]) == 2 and "cache: store built once in" in result.output
    # the record's ratios are decoder_ratios of its rows (whose values the test above checks by
    # hand), and they are the last lines printed
    assert record["ratios"] == decoder_ratios(record["rows"])
    expected = [r["value"] for r in record["ratios"]]
    assert expected[:2] == [None, None]  # seek vs full on the 1 s and 2 s videos: full skipped
    lines = result.output.strip().splitlines()
    assert lines[-6].startswith("ratios against the targets (1 worker)")
    assert lines[-5:-3] == [
        f"  seek vs full, {s} s video (full ms/clip / seek ms/clip): n/a (full skipped), "
        "target >= 4x n/a"
        for s in (1, 2)
    ]
    assert lines[-3].endswith(
        f": {expected[2]:.2f}x, target <= 2x {record['ratios'][2]['verdict']}"
    )
    assert lines[-2].endswith(
        f": {expected[3]:.2f} MB, target < 1000 MB {'PASS' if expected[3] < 1000 else 'MISS'}"
    )
    assert lines[-1].endswith(
        f": {expected[4]:.2f}x, target >= 20x {'PASS' if expected[4] >= 20 else 'MISS'}"
    )


def test_cli_bench_device_cuda_without_cuda_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    videos = tmp_path / "videos"
    result = runner.invoke(
        app, ["bench", "decoders", "--device", "cuda", "--videos-dir", str(videos)]
    )
    assert result.exit_code == 2
    assert "device 'cuda' requested but torch.cuda.is_available() is False" in result.output
    assert not videos.exists()  # refused before writing anything


def test_data_vs_step_says_whether_the_gpu_waits() -> None:
    rows = [
        _row("a", 10.0, "seek", 100.0),
        _row("a", 10.0, "cache", 1.0),
        _row("a", 10, "full", None),
    ]
    got = data_vs_step(rows, step_clips_per_s=50.0)
    assert [
        (g["decoder"], g["data_clips_per_s"], g["gpu_waits"], g["workers_needed"]) for g in got
    ] == [
        ("seek", pytest.approx(10.0), True, 5),
        ("cache", pytest.approx(1000.0), False, 1),
    ]
    # the share a trial at these rates waits: 1 - 10/50 (its loop runs at the data rate), or 0
    assert [g["data_wait_share"] for g in got] == [pytest.approx(0.8), 0.0]


def test_cli_bench_cuda_prints_the_data_rate_beside_the_step_rate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    import mpbench.bench.step as step_mod

    timing = step_mod.StepTiming("x3d_xs", "cuda", "full", 8, 8, 64, "none", 0.1, 0.09, 3)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(step_mod, "time_training_step", lambda **kw: timing)
    args = ["bench", "decoders", "--device", "cuda", "--backbone", "x3d_xs", "--durations", "1",
            "--height", "32", "--size", "16", "--no-xvid", "--decoders", "seek",
            "--videos-dir", str(tmp_path), "--clips", "1"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "data rate vs training step: x3d_xs" in result.output
    assert "100.0 ms/step = 80.0 clips/s" in result.output
    assert result.output.strip().splitlines()[-1].startswith("  cache vs seek")  # ratios last


def test_cli_bench_on_a_folder_measures_its_videos_and_has_no_ratios(tmp_path: Path) -> None:
    write_bench_video(BenchVideo("h264", 1, 28, 16), tmp_path / "mine" / "sub")
    args = ["bench", "decoders", "--folder", str(tmp_path / "mine"), "--decoders", "full",
            "--full-limit-gb", "1e-9", "--videos-dir", str(tmp_path / "videos")]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "h264-28x16-25fps-1s-gop250-v1.mp4: file 28x16, 1 s, 25 frames" in result.output
    assert result.output.strip().endswith("ratios: none (they are taken on the H.264 test videos)")
    result = runner.invoke(app, ["bench", "decoders", "--folder", str(tmp_path / "nothing")])
    assert result.exit_code == 2 and "is not a folder" in result.output
