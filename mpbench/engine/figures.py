"""The figures a trial logs: confusion matrix and the attention maps of one validation clip."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

GREY = (0.299, 0.587, 0.114)


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
def attention_clip(trainer: Any, index: int = 0) -> dict[str, np.ndarray] | None:
    """Frames, grey differences, attention maps and prompts of validation clip ``index``.

    Arrays: frames (T+1) x H x W x 3 in [0, 1]; diffs and attention T x H x W; prompts
    T x H x W x 3, the attention times the later frame in pixel units (for display). None for
    a variant without attention (the baseline) or an unreadable clip.
    """
    item = trainer.data.val[index]
    prompt = trainer.module.prompt
    if item is None:
        return None
    video = item[0][None].to(trainer.device)  # 1 x 3 x (T+1) x H x W, normalised
    prompt.eval()
    out = prompt(video)
    if out.attention is None:
        return None
    mean = torch.tensor(trainer.data.mean).view(3, 1, 1, 1)
    std = torch.tensor(trainer.data.std).view(3, 1, 1, 1)
    frames = (video[0].float().cpu() * std + mean).clamp(0, 1)  # 3 x (T+1) x H x W
    grey = torch.einsum("c,cthw->thw", torch.tensor(GREY), frames)
    attention = out.attention[0].float().cpu()
    return {
        "frames": frames.permute(1, 2, 3, 0).numpy(),
        "diffs": (grey[1:] - grey[:-1]).numpy(),
        "attention": attention.numpy(),
        "prompts": (attention[None] * frames[:, 1:]).permute(1, 2, 3, 0).numpy(),
    }


def save_figure(fig: Any, path: Path, *, dpi: int = 120) -> Path:
    """Save a matplotlib figure as PNG at ``path`` (folders created) and close it."""
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path
