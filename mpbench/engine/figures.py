"""The figures a trial logs: confusion matrix and the attention maps of one validation clip."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn


def plot_confusion(matrix: np.ndarray, class_names: list[str]) -> Any:
    """Row-normalised confusion matrix (true class by row) as a matplotlib Figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = matrix.sum(axis=1, keepdims=True).clip(min=1)
    k = len(class_names)
    fig, ax = plt.subplots(figsize=(1.2 + 0.45 * k, 1.0 + 0.45 * k))
    im = ax.imshow(matrix / rows, vmin=0.0, vmax=1.0, cmap="Blues")
    ax.set_xticks(range(k), class_names, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(k), class_names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("confusion (row-normalised)")
    fig.colorbar(im, ax=ax, fraction=0.046)
    return fig


@torch.no_grad()
def validation_strip(
    prompt: nn.Module,
    clip: torch.Tensor,
    *,
    mean: Sequence[float],
    std: Sequence[float],
    device: torch.device | str = "cpu",
) -> dict[str, np.ndarray] | None:
    """The strip arrays of one model input under ``prompt`` (None: a variant without attention).

    ``clip`` is a validation item as the loader gives it (3 x (T+1) x H x W, normalised): T+1
    frames ``sampling_rate`` apart from the centre of its video, so the figure shows exactly
    what the model sees. Arrays as :func:`mpbench.report.viz.strip_arrays` returns them.
    """
    from mpbench.report.viz import strip_arrays

    if clip.ndim != 4 or clip.shape[0] != 3:
        raise ValueError(f"clip must be 3 x (T+1) x H x W, got {tuple(clip.shape)}")
    was_training = prompt.training
    prompt.eval()
    out = prompt(clip[None].to(device))
    prompt.train(was_training)
    if out.attention is None:
        return None
    frames = clip.float().cpu() * torch.tensor(std).view(3, 1, 1, 1)
    frames = (frames + torch.tensor(mean).view(3, 1, 1, 1)).clamp(0, 1)  # 3 x (T+1) x H x W
    pixels = frames.permute(1, 2, 3, 0).numpy()  # (T+1) x H x W x 3
    return strip_arrays(pixels, out.attention[0].float().cpu().numpy())


def save_figure(fig: Any, path: Path, *, dpi: int = 120) -> Path:
    """Save a matplotlib figure as PNG at ``path`` (folders created) and close it."""
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path
