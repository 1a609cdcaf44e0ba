"""The attention data of one validation clip, as a trial logs it (``attention_clip.npz``);
:func:`mpbench.plots.plot_attention_strip` draws it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from mpbench.plots import strip_arrays


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
    what the model sees. Arrays as :func:`mpbench.plots.strip_arrays` returns them.
    """
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
