"""Datasets: the synthetic motion benchmark and real video datasets read from local files.

``build_data(name, root=..., frames=T, ...)`` returns a :class:`DataBundle` whose items are
``(video, label)`` with video float32 C x (T+1) x H x W, normalised RGB (test: V x C x (T+1) x H
x W). Undecodable videos are ``None`` items that :func:`collate_clips` drops and counts.
"""

from mpbench.data.catalog import DATASETS, DatasetInfo, build_data, list_datasets
from mpbench.data.datasets import (
    ClipDataset,
    DataBundle,
    TooManyBrokenVideos,
    VideoEntry,
    collate_clips,
)
from mpbench.data.registry import register_dataset
from mpbench.data.synth import MOTIONS, PRESETS, SynthSpec, preset_spec, write_synth_dataset

__all__ = [
    "DATASETS",
    "MOTIONS",
    "PRESETS",
    "ClipDataset",
    "DataBundle",
    "DatasetInfo",
    "SynthSpec",
    "TooManyBrokenVideos",
    "VideoEntry",
    "build_data",
    "collate_clips",
    "list_datasets",
    "preset_spec",
    "register_dataset",
    "write_synth_dataset",
]
