"""The figures a trial and a report both draw, and the one way to save a figure.

This module sits below :mod:`mpbench.engine` and :mod:`mpbench.report` and imports neither: a
trial draws its confusion matrix and the attention strip of one validation clip with it, and
:mod:`mpbench.report.figures` draws the strip of a logged ``attention_clip.npz`` with the same
function. Figures are ``matplotlib.figure.Figure`` objects: no pyplot, no backend switch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import numpy as np
from matplotlib.figure import Figure

from mpbench._pixels import GREY_WEIGHTS

STRIP_ROWS: Final = ("frames", "diffs", "attention", "prompts")
# no software version or timestamp in the file: the same figure gives the same bytes
_METADATA: Final = {
    ".png": {"Software": None},
    ".pdf": {"CreationDate": None, "Creator": None, "Producer": None},
    ".svg": {"Date": None, "Creator": None},
}


def strip_arrays(frames: np.ndarray, attention: np.ndarray) -> dict[str, np.ndarray]:
    """frames (T+1) x H x W x 3 in [0, 1], attention T x H x W -> the strip's four arrays.

    diffs are the grey differences the layer sees; prompts are the attention times the later
    frame in pixel units (for display), as the ``attention_clip.npz`` artifact stores them.
    """
    if frames.ndim != 4 or attention.shape != (frames.shape[0] - 1, *frames.shape[1:3]):
        raise ValueError(
            f"need frames (T+1,H,W,3) and attention (T,H,W), got {frames.shape} and "
            f"{attention.shape}"
        )
    grey = frames @ np.asarray(GREY_WEIGHTS, dtype=frames.dtype)  # (T+1) x H x W
    return {
        "frames": frames,
        "diffs": grey[1:] - grey[:-1],
        "attention": attention,
        "prompts": attention[..., None] * frames[1:],
    }


def check_clip(clip: dict[str, np.ndarray]) -> int:
    """Validate the attention clip arrays; returns T."""
    missing = [k for k in STRIP_ROWS if k not in clip]
    if missing:
        raise ValueError(f"attention clip lacks arrays {missing}; expected {list(STRIP_ROWS)}")
    frames = clip["frames"]
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 2:
        raise ValueError(f"frames must be [T+1, H, W, 3] with T >= 1, got {frames.shape}")
    t, h, w = frames.shape[0] - 1, frames.shape[1], frames.shape[2]
    for key, shape in (("diffs", (t, h, w)), ("attention", (t, h, w)), ("prompts", (t, h, w, 3))):
        if clip[key].shape != shape:
            raise ValueError(f"{key} must have shape {shape}, got {clip[key].shape}")
    return t


def plot_attention_strip(clip: dict[str, np.ndarray]) -> Figure:
    """The attention strip of one clip: rows frames, diffs, attention, prompts; T+1 columns.

    Column t+1 of the lower rows holds the difference, attention and prompt of frames t, t+1;
    the first column of those rows is left blank (its axes are hidden).
    """
    t = check_clip(clip)
    fig = Figure(figsize=(1.3 * (t + 1), 1.4 * 4), layout="constrained")
    axes = fig.subplots(4, t + 1, squeeze=False)
    prompts = clip["prompts"]
    lo, hi = float(prompts.min()), float(prompts.max())
    shown_prompts = (prompts - lo) / (hi - lo) if hi > lo else np.zeros_like(prompts)
    limit = max(float(np.abs(clip["diffs"]).max()), 1e-6)
    for j in range(t + 1):
        axes[0, j].imshow(np.clip(clip["frames"][j], 0.0, 1.0))
        axes[0, j].set_title(f"t={j}", fontsize="small")
        if j == 0:
            continue
        axes[1, j].imshow(clip["diffs"][j - 1], cmap="RdBu_r", vmin=-limit, vmax=limit)
        axes[2, j].imshow(clip["attention"][j - 1], cmap="viridis", vmin=0.0, vmax=1.0)
        axes[3, j].imshow(shown_prompts[j - 1])
    for i, name in enumerate(STRIP_ROWS):
        for j in range(t + 1):
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
            axes[i, j].grid(False)
        axes[i, 0 if i == 0 else 1].set_ylabel(name)
        if i:
            axes[i, 0].set_visible(False)
    return fig


def plot_confusion(matrix: np.ndarray, class_names: list[str]) -> Figure:
    """Row-normalised confusion matrix (true class by row, K x K counts)."""
    rows = matrix.sum(axis=1, keepdims=True).clip(min=1)
    k = len(class_names)
    fig = Figure(figsize=(1.2 + 0.45 * k, 1.0 + 0.45 * k))
    ax = fig.subplots()
    im = ax.imshow(matrix / rows, vmin=0.0, vmax=1.0, cmap="Blues")
    ax.set_xticks(range(k), class_names, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(k), class_names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("confusion (row-normalised)")
    fig.colorbar(im, ax=ax, fraction=0.046)
    return fig


def save_figure(fig: Figure, path: str | Path, *, dpi: int = 150, tight: bool = False) -> Path:
    """Save ``fig`` at ``path`` in the format its suffix names (folders created), without
    timestamps or versions; ``tight`` crops the margins to the drawn content."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    bbox = "tight" if tight else None
    fig.savefig(path, dpi=dpi, metadata=_METADATA.get(path.suffix.lower()), bbox_inches=bbox)
    return path
