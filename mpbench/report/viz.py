"""The attention strip of any video file (``mpbench viz``).

A strip shows one clip the way the model sees it: T+1 *consecutive samples*, every ``rate``-th
frame from a start time (training's ``sampling_rate``), not frames spread over the whole video
(on real footage those differences are scene cuts, not motion). The clip is read by training's
own reader (:mod:`mpbench.data.video`: the same frame index, the same seek that decodes only the
clip's window, the same pixels) with training's clip sampling (by default the validation clip,
the centred one) and validation transform (short side to ``size``, centre crop). Frame
differences and attention come from :class:`mpbench.prompt.MotionPrompt` with a fixed slope and
shift (the paper's sigmoid), applied to the frames normalised with mean 0.45 and std 0.225.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from mpbench import tracking as tk
from mpbench._pixels import MEAN, STD
from mpbench.plots import save_figure, strip_arrays

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


def _frame_rate(path: str) -> float:
    """The video's frame rate from its stream header (no decoding)."""
    import av

    with av.open(path) as container:
        if not container.streams.video:
            raise ValueError(f"video {path!r} has no video stream")
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 0)
    if fps <= 0:
        raise ValueError(f"video {path!r} declares no frame rate")
    return fps


def _clip_start(
    n: int, fps: float, *, name: str, frames: int, rate: int, start: float | None
) -> int:
    """First frame of the clip: training's validation clip (the centred one) when ``start`` is
    None, else the first frame at or after ``start`` seconds; checked against the video."""
    from mpbench.data.video import uniform_starts

    if start is None:
        first = uniform_starts(n, frames=frames - 1, sampling_rate=rate, clips=1)[0]
    else:
        first = math.ceil(start * fps - 1e-3)  # float slack
        if first >= n:
            raise ValueError(
                f"--start {start:g} s lies beyond the end of {name!r} ({n / fps:.2f} s)"
            )
    kept = min(frames, (n - 1 - first) // rate + 1)
    _check_fit(
        name, kept=kept, frames=frames, rate=rate, start=first / fps if start is None else start
    )
    return first


def _val_clip(path: str, *, frames: int, rate: int, start: float | None, size: int) -> VideoClip:
    """The clip as training's validation reader makes it: :func:`mpbench.data.video.read_frames`
    of :func:`~mpbench.data.video.clip_indices`, then the validation transform (short side to
    ``size``, centre crop)."""
    from mpbench.data.transforms import eval_transform
    from mpbench.data.video import clip_indices, read_frames, video_frame_count

    fps = _frame_rate(path)
    n = video_frame_count(path)
    first = _clip_start(n, fps, name=path, frames=frames, rate=rate, start=start)
    indices = clip_indices(n, frames=frames - 1, sampling_rate=rate, start=first).tolist()
    stats: dict[str, int] = {}
    raw = read_frames(path, lambda _: indices, stats=stats)  # (T+1) x H x W x 3 uint8
    x = eval_transform(crop=size)(raw)  # 3 x (T+1) x size x size, normalised
    pixels = (x.permute(1, 2, 3, 0).numpy() * STD + MEAN).clip(0.0, 1.0).astype(np.float32)
    return VideoClip(frames=pixels, indices=tuple(indices), fps=fps, decoded=stats["decoded"])


def _check_fit(name: str, *, kept: int, frames: int, rate: int, start: float) -> None:
    """Name the clip that the video cannot provide."""
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

    from mpbench.data.video import VideoDecodeError

    _check_request(frames=frames, rate=rate, start=start, size=size)
    if not Path(path).is_file():
        raise FileNotFoundError(f"video file not found: {path}")
    try:
        return _val_clip(str(path), frames=frames, rate=rate, start=start, size=size)
    except (av.FFmpegError, VideoDecodeError) as exc:
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
