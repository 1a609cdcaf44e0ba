"""The attention strip of any video file (``mpbench viz``).

The video is decoded with PyAV; ``frames`` frames (T+1) spaced evenly over the whole video are
resized (short side to ``size``) and centre-cropped to ``size`` x ``size``. Frame differences,
attention and prompts come from :class:`mpbench.prompt.MotionPrompt` with a fixed slope and shift
(the paper's sigmoid), applied to the frames normalised with mean 0.45 and std 0.225.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import numpy as np

from mpbench import tracking as tk

MEAN: Final = 0.45
STD: Final = 0.225
GREY: Final = np.array([0.299, 0.587, 0.114])


def _resized(frame: Any, size: int) -> np.ndarray:
    """One decoded frame as RGB uint8, short side ``size``, centre-cropped to a square."""
    scale = size / min(frame.width, frame.height)
    width, height = max(size, round(frame.width * scale)), max(size, round(frame.height * scale))
    rgb = frame.reformat(width=width, height=height, format="rgb24").to_ndarray()
    top, left = (height - size) // 2, (width - size) // 2
    return rgb[top : top + size, left : left + size]


def read_frames(path: str | Path, *, frames: int = 9, size: int = 112) -> np.ndarray:
    """``frames`` evenly spaced frames of a video: [frames, size, size, 3] floats in [0, 1]."""
    import av

    if frames < 2:
        raise ValueError(f"frames must be >= 2 (T+1 frames give T maps), got {frames}")
    if size < 8:
        raise ValueError(f"size must be >= 8 pixels, got {size}")
    if not Path(path).is_file():
        raise FileNotFoundError(f"video file not found: {path}")
    try:
        with av.open(str(path)) as container:
            decoded = [_resized(f, size) for f in container.decode(video=0)]
    except av.FFmpegError as exc:
        raise ValueError(f"cannot decode video {str(path)!r}: {exc}") from exc
    if len(decoded) < frames:
        raise ValueError(f"video {str(path)!r} has {len(decoded)} frames, fewer than {frames}")
    picks = np.linspace(0, len(decoded) - 1, frames).round().astype(int)
    return np.stack([decoded[i] for i in picks]).astype(np.float64) / 255.0


def attention_clip(frames: np.ndarray, *, slope: float, shift: float) -> dict[str, np.ndarray]:
    """frames [T+1,H,W,3] in [0,1] -> frames, diffs, attention, prompts (artifact layout)."""
    import torch

    from mpbench.prompt import MotionPrompt

    layer = MotionPrompt(slope=float(slope), shift=float(shift), mean=MEAN, std=STD)
    x = torch.from_numpy((frames - MEAN) / STD).float().permute(3, 0, 1, 2)[None]  # 1,3,T+1,H,W
    with torch.no_grad():
        out = layer(x)
    grey = frames @ GREY  # T+1 x H x W
    return {
        "frames": frames,
        "diffs": grey[1:] - grey[:-1],
        "attention": out.attention[0].double().numpy(),
        "prompts": out.prompts[0].permute(1, 2, 3, 0).double().numpy(),
    }


def run_slope_shift(run_id: str, *, tracking_uri: str | None = None) -> tuple[float, float]:
    """The final slope and shift metrics of the MLflow run ``run_id``."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=tracking_uri or tk.tracking_uri())
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
    size: int = 112,
    out: str | Path | None = None,
) -> Path:
    """Write the attention strip PNG of the video at ``path``; returns the PNG path."""
    from mpbench.report.figures import plot_attention_strip

    clip = attention_clip(read_frames(path, frames=frames, size=size), slope=slope, shift=shift)
    target = Path(out) if out is not None else Path(path).with_suffix(".attention.png")
    target.parent.mkdir(parents=True, exist_ok=True)
    fig = plot_attention_strip(clip)
    fig.suptitle(f"{Path(path).name}: a={slope:.3g}, b={shift:.3g}")
    fig.savefig(target, dpi=150, metadata={"Software": None})
    return target
