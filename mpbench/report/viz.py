"""The attention strip of any video file (``mpbench viz``).

A strip shows one clip the way the model sees it: T+1 *consecutive samples*, every ``rate``-th
frame from a start time (training's ``sampling_rate``), not frames spread over the whole video
(on real footage those differences are scene cuts, not motion). Only the clip's window is
decoded: seek to the keyframe before the start, decode forward, stop after the last sample.
Frames are resized (short side to ``size``) and centre-cropped to ``size`` x ``size``. Frame
differences and attention come from :class:`mpbench.prompt.MotionPrompt` with a fixed slope and
shift (the paper's sigmoid), applied to the frames normalised with mean 0.45 and std 0.225.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from mpbench import tracking as tk
from mpbench._pixels import GREY_WEIGHTS, MEAN, STD
from mpbench.plots import save_figure, strip_arrays

GREY: Final = np.array(GREY_WEIGHTS, dtype=np.float32)
DEFAULT_RATE: Final = 2  # 80 ms between samples at 25 fps: motion, not jumps


@dataclass(frozen=True)
class VideoClip:
    """T+1 frames of a video sampled ``rate`` frames apart, and where they came from.

    Args:
        frames: (T+1) x size x size x 3 float32 RGB in [0, 1].
        indices: source frame number of each sample (0 is the video's first frame).
        fps: the video's frame rate.
        decoded: frames the decoder produced (the seek skips the rest of the file).
    """

    frames: np.ndarray
    indices: tuple[int, ...]
    fps: float
    decoded: int

    @property
    def start(self) -> float:
        """Time of the first sample in seconds."""
        return self.indices[0] / self.fps


def fixed_sigmoid_strip(frames: np.ndarray, *, slope: float, shift: float) -> dict[str, np.ndarray]:
    """The strip arrays of ``frames`` ((T+1) x H x W x 3 in [0, 1]) under the paper's sigmoid."""
    import torch

    from mpbench.prompt import MotionPrompt

    layer = MotionPrompt(slope=float(slope), shift=float(shift), mean=MEAN, std=STD)
    x = torch.from_numpy((frames - MEAN) / STD).float().permute(3, 0, 1, 2)[None]  # 1,3,T+1,H,W
    with torch.no_grad():
        attention = layer(x).attention[0].numpy()  # T x H x W
    return strip_arrays(frames.astype(np.float32), attention.astype(np.float32))


def _resized(frame: Any, size: int) -> np.ndarray:
    """One decoded frame as RGB uint8, short side ``size``, centre-cropped to a square."""
    scale = size / min(frame.width, frame.height)
    width, height = max(size, round(frame.width * scale)), max(size, round(frame.height * scale))
    rgb = frame.reformat(width=width, height=height, format="rgb24").to_ndarray()
    top, left = (height - size) // 2, (width - size) // 2
    return rgb[top : top + size, left : left + size]


def _check_request(*, frames: int, rate: int, start: float | None, size: int) -> None:
    """Reject clip requests that no video can satisfy."""
    if frames < 2:
        raise ValueError(f"frames must be >= 2 (T+1 frames give T maps), got {frames}")
    if rate < 1:
        raise ValueError(f"rate must be >= 1 (every rate-th frame), got {rate}")
    if start is not None and not start >= 0.0:
        raise ValueError(f"start must be >= 0 seconds, got {start}")
    if size < 8:
        raise ValueError(f"size must be >= 8 pixels, got {size}")


def _duration(stream: Any, container: Any) -> float | None:
    """The video's length in seconds from its metadata (None when it declares none)."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000  # AV_TIME_BASE
    return None


def centre_start(num_frames: int, *, frames: int, rate: int) -> int:
    """First frame of the centred clip of ``frames`` samples, as training picks its validation
    clip (``mpbench.data.video.uniform_starts`` with one clip; importing it costs seconds)."""
    return round(max(num_frames - (frames - 1) * rate - 1, 0) * 0.5)


def _default_start(
    stream: Any, length: float | None, *, fps: float, frames: int, rate: int
) -> float:
    """Start in seconds of the centred clip (0 when the video declares no length)."""
    count = stream.frames or (round(length * fps) if length is not None else 0)
    return centre_start(count, frames=frames, rate=rate) / fps if count else 0.0


def _samples(
    container: Any, stream: Any, *, first: int, frames: int, rate: int, size: int
) -> tuple[list[np.ndarray], list[int], int, int]:
    """Decode on from the current position, keeping frames ``first``, ``first + rate``, ...

    Returns the kept frames (at most ``frames``), their indices, how many frames were decoded
    and the index of the first decoded frame (-1 if none).
    """
    kept: list[np.ndarray] = []
    indices: list[int] = []
    decoded, opened = 0, -1
    origin, fps = stream.start_time or 0, float(stream.average_rate or stream.guessed_rate)
    for frame in container.decode(stream):
        if frame.pts is None:
            raise ValueError("frames without timestamps: cannot seek in this video")
        index = round(float((frame.pts - origin) * stream.time_base) * fps)
        decoded, opened = decoded + 1, opened if decoded else index
        if index < first or (index - first) % rate:
            continue  # before the start, or between samples
        kept.append(_resized(frame, size))
        indices.append(index)
        if len(kept) == frames:
            break
    return kept, indices, decoded, opened


def _decode_clip(
    container: Any, name: str, *, frames: int, rate: int, start: float | None, size: int
) -> VideoClip:
    """Seek to the keyframe before ``start`` and decode forward until the clip is complete."""
    if not container.streams.video:
        raise ValueError(f"video {name!r} has no video stream")
    stream = container.streams.video[0]
    fps = float(stream.average_rate or stream.guessed_rate or 0)
    if fps <= 0 or stream.time_base is None:
        raise ValueError(f"video {name!r} declares no frame rate or time base")
    length = _duration(stream, container)
    if start is None:
        start = _default_start(stream, length, fps=fps, frames=frames, rate=rate)
    if length is not None and start >= length:
        raise ValueError(f"--start {start:g} s lies beyond the end of {name!r} ({length:.2f} s)")
    first = math.ceil(start * fps - 1e-3)  # the first frame at or after start (float slack)
    kw = {"first": first, "frames": frames, "rate": rate, "size": size}
    origin, decoded, opened = stream.start_time or 0, 0, 0
    if first > 0:  # offset in the stream's time base; backward: the keyframe at or before it
        container.seek(origin + int(start / stream.time_base), stream=stream, backward=True)
        kept, indices, decoded, opened = _samples(container, stream, **kw)
    if first == 0 or opened > first:  # no seek needed, or the seek overshot: from the start
        if first > 0:
            container.seek(origin, stream=stream, backward=True)
        kept, indices, more, _ = _samples(container, stream, **kw)
        decoded += more
    _check_fit(name, kept=len(kept), frames=frames, rate=rate, start=start)
    pixels = np.stack(kept).astype(np.float32) / 255.0
    return VideoClip(frames=pixels, indices=tuple(indices), fps=fps, decoded=decoded)


def _check_fit(name: str, *, kept: int, frames: int, rate: int, start: float) -> None:
    """Name the start or the clip that the video cannot provide."""
    if kept == 0:
        raise ValueError(f"--start {start:g} s lies beyond the end of {name!r}")
    if kept < frames:
        raise ValueError(
            f"the clip does not fit in {name!r}: from {start:g} s at rate {rate} only {kept} "
            f"frames are available, {frames} needed; choose an earlier --start, a lower --rate "
            "or fewer --frames"
        )


def read_clip(
    path: str | Path,
    *,
    frames: int = 9,
    rate: int = DEFAULT_RATE,
    start: float | None = None,
    size: int = 112,
) -> VideoClip:
    """``frames`` (T+1) samples every ``rate``-th frame from ``start`` s (None: centred clip)."""
    import av

    _check_request(frames=frames, rate=rate, start=start, size=size)
    if not Path(path).is_file():
        raise FileNotFoundError(f"video file not found: {path}")
    try:
        with av.open(str(path)) as container:
            return _decode_clip(
                container, str(path), frames=frames, rate=rate, start=start, size=size
            )
    except av.FFmpegError as exc:
        raise ValueError(f"cannot decode video {str(path)!r}: {exc}") from exc


def run_slope_shift(run_id: str, *, tracking_uri: str | None = None) -> tuple[float, float]:
    """The final slope and shift metrics of the MLflow run ``run_id``."""
    from mlflow.exceptions import MlflowException

    from mpbench.report.load import read_client

    client = read_client(tracking_uri)
    try:
        metrics = client.get_run(run_id).data.metrics
    except MlflowException as exc:
        raise ValueError(f"unknown MLflow run {run_id!r} at {client.tracking_uri!r}") from exc
    if tk.M_SLOPE not in metrics or tk.M_SHIFT not in metrics:
        raise ValueError(
            f"run {run_id!r} logged no {tk.M_SLOPE!r}/{tk.M_SHIFT!r} metrics (a baseline run?); "
            "pass --slope and --shift instead"
        )
    return float(metrics[tk.M_SLOPE]), float(metrics[tk.M_SHIFT])


def visualize_video(
    path: str | Path,
    *,
    slope: float,
    shift: float,
    frames: int = 9,
    rate: int = DEFAULT_RATE,
    start: float | None = None,
    size: int = 112,
    out: str | Path | None = None,
) -> Path:
    """Write the attention strip PNG of one clip of the video at ``path``; returns the PNG path."""
    from mpbench.report.figures import plot_attention_strip

    clip = read_clip(path, frames=frames, rate=rate, start=start, size=size)
    target = Path(out) if out is not None else Path(path).with_suffix(".attention.png")
    fig = plot_attention_strip(fixed_sigmoid_strip(clip.frames, slope=slope, shift=shift))
    fig.suptitle(
        f"{Path(path).name}: frames {clip.indices[0]}-{clip.indices[-1]} every {rate} "
        f"(from {clip.start:.2f} s), a={slope:.3g}, b={shift:.3g}"
    )
    return save_figure(fig, target)
