"""Data-loading throughput: clips per second decoded and transformed, per worker count."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from mpbench.data import build_data, collate_clips


def time_loader(loader: DataLoader, *, batches: int) -> tuple[int, float, int]:
    """(clips, seconds, skipped) over ``batches`` batches after one warm-up batch.

    The warm-up batch absorbs worker start-up; the loader must yield ``batches`` + 1 batches.
    Workers keep producing while the warm-up batch is collated, so with W workers up to W
    batches are ready when the clock starts: short runs overstate multi-worker rates a little.
    """
    it = iter(loader)
    next(it)
    clips = skipped = 0
    start = time.perf_counter()
    for _ in range(batches):
        batch = next(it)
        clips += int(batch["label"].numel())
        skipped += int(batch["skipped"])
    return clips, time.perf_counter() - start, skipped


def bench_data(
    name: str,
    *,
    root: str | Path | None = None,
    frames: int = 8,
    sampling_rate: int = 1,
    crop: int = 64,
    batch: int = 8,
    workers: Sequence[int] = (0, 1, 2),
    batches: int = 10,
    seed: int = 0,
    options: Mapping[str, Any] | None = None,
    on_result: Callable[[dict[str, float]], None] | None = None,
) -> list[dict[str, float]]:
    """Train-split throughput (decode + sample + transform + collate) for each worker count.

    Returns one row per worker count: workers, clips, seconds, clips_per_s (total) and
    clips_per_s_per_worker (total / max(workers, 1); 0 workers = the main process).
    """
    if batches < 1 or batch < 1:
        raise ValueError(f"batches and batch must be >= 1, got {batches} and {batch}")
    if any(w < 0 for w in workers) or not workers:
        raise ValueError(f"workers must be a non-empty list of counts >= 0, got {list(workers)}")
    bundle = build_data(
        name,
        root=root,
        frames=frames,
        sampling_rate=sampling_rate,
        crop=crop,
        seed=seed,
        options=options or {},
    )
    needed = (batches + 1) * batch
    if len(bundle.train) < needed:
        raise ValueError(
            f"{name} has {len(bundle.train)} training clips; {batches} + 1 batches "
            f"of {batch} need {needed}: lower --batches or --batch"
        )
    rows = []
    for w in workers:
        torch.manual_seed(seed)
        loader = DataLoader(
            bundle.train,
            batch_size=batch,
            shuffle=True,
            num_workers=w,
            collate_fn=collate_clips,
            drop_last=True,
        )
        clips, seconds, skipped = time_loader(loader, batches=batches)
        rate = clips / seconds
        row = {
            "workers": w,
            "clips": clips,
            "seconds": seconds,
            "skipped": skipped,
            "clips_per_s": rate,
            "clips_per_s_per_worker": rate / max(w, 1),
        }
        rows.append(row)
        if on_result is not None:
            on_result(row)
    return rows
