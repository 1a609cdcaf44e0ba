"""Attention strips show motion: `mpbench viz` and the training figure sample one clip of
consecutive frames at a sampling rate, decoded from real mp4 files (only the clip's window)."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mpbench._pixels import GREY_WEIGHTS
from mpbench.cli import app
from mpbench.data.datasets import ClipDataset, FileSource, VideoEntry
from mpbench.engine.figures import validation_strip
from mpbench.prompt import MotionPrompt, NoPrompt
from mpbench.report.viz import fixed_sigmoid_strip, read_clip

GREY = np.array(GREY_WEIGHTS, dtype=np.float32)  # BT.601 luma, the layer's grey
PNG = b"\x89PNG\r\n\x1a\n"
FPS, N, SIDE, CUT, SQ, ROW = 25, 60, 144, 15, 12, 66  # 60 frames, a scene cut every 15


def street(i: int) -> np.ndarray:
    """Frame ``i``: a square moving 2 px per frame over a static scene that cuts every 15 frames."""
    rng = np.random.default_rng(i // CUT)  # one scene per segment
    tiles = rng.integers(0, 140, (SIDE // 16, SIDE // 16, 3), dtype=np.uint8)
    img = np.kron(tiles, np.ones((16, 16, 1), dtype=np.uint8))
    x = 4 + 2 * i
    img[ROW : ROW + SQ, x : x + SQ] = 255
    return img


def write_video(path: Path, frame: object = street, *, codec: str = "libx264") -> Path:
    """An mp4 of ``N`` frames at ``FPS`` with a keyframe at least every 10 frames (seekable)."""
    options = {"crf": "10", "bf": "2", "threads": "1"} if codec == "libx264" else {"qscale": "2"}
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream(codec, rate=FPS, options=options)
        stream.width, stream.height, stream.pix_fmt = SIDE, SIDE, "yuv420p"
        stream.codec_context.gop_size = 10
        for i in range(N):
            out = av.VideoFrame.from_ndarray(frame(i), format="rgb24")  # type: ignore[operator]
            out.pts, out.time_base = i, Fraction(1, FPS)
            for packet in stream.encode(out):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def decode_all(path: Path) -> np.ndarray:
    """Every frame of ``path`` as uint8 RGB, N x H x W x 3 (the reference: index = position)."""
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The street clip as H.264 with B-frames."""
    return write_video(tmp_path_factory.mktemp("viz") / "street.mp4")


@pytest.mark.parametrize("codec", ["libx264", "mpeg4"])
@pytest.mark.parametrize(
    ("start", "rate", "first"),
    [(0.0, 3, 0), (0.64, 3, 16), (0.62, 2, 16), (1.0, 4, 25), (None, 3, 24)],
)
def test_read_clip_takes_consecutive_samples_from_start(
    tmp_path: Path, codec: str, start: float | None, rate: int, first: int
) -> None:
    path = write_video(tmp_path / f"street_{codec}.mp4", codec=codec)
    clip = read_clip(path, frames=5, rate=rate, start=start, size=SIDE)
    assert clip.indices == tuple(first + k * rate for k in range(5))
    assert clip.fps == FPS and clip.start == pytest.approx(first / FPS)
    full = decode_all(path)
    pixels = np.round(clip.frames * 255).astype(np.uint8)
    np.testing.assert_array_equal(pixels, full[list(clip.indices)])
    if first >= 20:  # seeking skipped the frames before the clip's keyframe
        assert clip.decoded < clip.indices[-1] + 1 - 10


class RecordingSource(FileSource):
    """Training's file source, noting the frame indices each read asks for."""

    def __init__(self, entries: list[VideoEntry]) -> None:
        super().__init__(entries)
        self.asked: list[list[int]] = []

    def read(self, index: int, select: Any) -> torch.Tensor:
        """Read as training does; remember ``select(n)``."""

        def noted(n: int) -> list[int]:
            self.asked.append(list(select(n)))
            return self.asked[-1]

        return super().read(index, noted)


@pytest.mark.parametrize(("frames", "rate", "size"), [(9, 2, 112), (5, 3, 48), (4, 1, SIDE)])
def test_viz_reads_the_validation_clip_training_reads(
    video: Path, frames: int, rate: int, size: int
) -> None:
    """The default strip is the validation clip: the same frame indices, the same pixels."""
    source = RecordingSource([VideoEntry(str(video), 0)])
    val = ClipDataset(source, mode="val", frames=frames - 1, sampling_rate=rate, crop=size)
    x = val[0][0]  # 3 x (T+1) x size x size, normalised
    clip = read_clip(video, frames=frames, rate=rate, size=size)
    assert list(clip.indices) == source.asked[0]
    seen = (x.permute(1, 2, 3, 0).numpy() * np.array(val.std) + np.array(val.mean)).clip(0, 1)
    np.testing.assert_allclose(clip.frames, seen, atol=1e-6)


def test_differences_show_motion_not_cuts(video: Path) -> None:
    clip = read_clip(video, frames=5, rate=3, start=0.64, size=SIDE)  # frames 16..28: one scene
    grey = clip.frames @ GREY
    diffs = np.abs(grey[1:] - grey[:-1])
    for t, (a, b) in enumerate(zip(clip.indices, clip.indices[1:], strict=False)):
        area = diffs[t, ROW : ROW + SQ, 4 + 2 * a : 4 + 2 * b + SQ]  # old and new square
        assert area.mean() > 0.15, (t, area.mean())  # the square moved
        assert diffs[t].mean() < 0.02, (t, diffs[t].mean())  # the scene did not change
    spread = decode_all(video)[np.linspace(0, N - 1, 5).round().astype(int)] @ GREY / 255
    cuts = np.abs(np.diff(spread, axis=0)).mean(axis=(1, 2)) > 0.1
    assert cuts.sum() >= 3  # spread over the whole video: differences are scene cuts


def test_fixed_sigmoid_strip_matches_the_paper(video: Path) -> None:
    frames = read_clip(video, frames=4, rate=2, start=0.64, size=32).frames
    strip = fixed_sigmoid_strip(frames, slope=20.0, shift=0.1)
    assert strip["frames"].shape == (4, 32, 32, 3) and strip["attention"].shape == (3, 32, 32)
    expected = 1 / (1 + np.exp(-20.0 * (strip["diffs"] - 0.1)))
    np.testing.assert_allclose(strip["attention"], expected, atol=1e-3)
    np.testing.assert_allclose(strip["prompts"], expected[..., None] * frames[1:], atol=1e-3)


def test_cli_viz_writes_the_strip(video: Path, tmp_path: Path) -> None:
    out = tmp_path / "strip.png"
    args = ["viz", str(video), "--slope", "12", "--shift", "0", "--frames", "5"]
    args += ["--rate", "3", "--start", "0.64", "--size", "48", "--out", str(out)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert out.read_bytes()[:8] == PNG and "wrote" in res.output
    res = CliRunner().invoke(app, ["viz", str(video), "--slope", "12", "--shift", "0"])
    assert res.exit_code == 0, res.output  # defaults: 9 frames at rate 2, centred
    assert video.with_suffix(".attention.png").read_bytes()[:8] == PNG


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--start", "5"], r"--start 5 s lies beyond the end of '.*street\.mp4' \(2\.40 s\)"),
        (
            ["--start", "2", "--frames", "5", "--rate", "3"],
            r"does not fit in '.*street\.mp4': from 2 s at rate 3 only 4 frames are available, "
            r"5 needed",
        ),
        (["--frames", "40"], r"from 0 s at rate 2 only 30 frames are available, 40 needed"),
        (["--rate", "0"], r"rate must be >= 1 \(every rate-th frame\), got 0"),
        (["--start", "-1"], r"start must be >= 0 seconds, got -1"),
    ],
)
def test_cli_viz_errors_name_file_and_value(video: Path, options: list[str], message: str) -> None:
    res = CliRunner().invoke(app, ["viz", str(video), "--slope", "12", "--shift", "0", *options])
    assert res.exit_code == 2, res.output
    assert re.search(message, " ".join(res.output.split())), res.output


def test_cli_viz_undecodable_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video" * 100)
    res = CliRunner().invoke(app, ["viz", str(bad), "--slope", "12", "--shift", "0"])
    assert res.exit_code == 2 and "cannot decode video" in res.output
    assert "broken.mp4" in res.output


def test_training_figure_uses_the_model_input(tmp_path: Path) -> None:
    def level(i: int) -> np.ndarray:
        """Frame ``i`` is flat grey 40 + 3 i: its brightness tells its index."""
        return np.full((SIDE, SIDE, 3), 40 + 3 * i, dtype=np.uint8)

    path = write_video(tmp_path / "ramp.mp4", level)
    dataset = ClipDataset(
        FileSource([VideoEntry(str(path), 0)]), mode="val", frames=4, sampling_rate=3, crop=32
    )
    prompt = MotionPrompt(slope=20.0, shift=0.0, mean=dataset.mean, std=dataset.std)
    prompt.train()
    strip = validation_strip(prompt, dataset[0][0], mean=dataset.mean, std=dataset.std)
    assert strip is not None and prompt.training
    seen = (strip["frames"].mean(axis=(1, 2, 3)) * 255 - 40) / 3
    expected = read_clip(path, frames=5, rate=3).indices  # the viz command's default clip
    np.testing.assert_allclose(seen, expected, atol=1.0)  # T+1 frames, rate 3, centred
    assert expected == (24, 27, 30, 33, 36)
    np.testing.assert_allclose(strip["diffs"], 9 / 255, atol=3 / 255)
    baseline = validation_strip(NoPrompt(), dataset[0][0], mean=dataset.mean, std=dataset.std)
    assert baseline is None
    with pytest.raises(ValueError, match=r"clip must be 3 x \(T\+1\) x H x W, got \(5, 32\)"):
        validation_strip(prompt, torch.zeros(5, 32), mean=dataset.mean, std=dataset.std)
