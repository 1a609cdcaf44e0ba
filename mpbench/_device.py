"""The device choice shared by the engine and the benchmarks."""

from __future__ import annotations

import torch

from mpbench.config import DEVICES


def resolve_device(device: str, *, index: int | None = None) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is a ValueError.

    ``index`` picks the CUDA device (a torchrun process's local rank).
    """
    if device not in DEVICES:
        choices = f"{', '.join(DEVICES[:-1])} or {DEVICES[-1]}"
        raise ValueError(f"device must be {choices}; got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but torch.cuda.is_available() is False")
    if device == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", index)
