"""The dataset registry, ``list_datasets`` and ``build_data``.

Options (``build_data(..., options={...})``) common to every dataset:
``flip`` (random horizontal flip in training; off by default for synth and ssv2, whose classes
name directions), ``scale`` (area range of the training random resized crop, default
[0.4, 1.0]; [0.7, 1.0] for synth, whose actor moves on a torus and may straddle an edge) and
``max_failed_fraction`` (default 0.05), ``short_side`` and ``cache`` (decode every video once
into a memory-mapped store and read clips from it, see :mod:`mpbench.data.cache`). Every other
option goes to the dataset's reader (``mpbench list datasets`` shows them); an unknown option is
a ValueError listing the known ones.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mpbench.data import readers
from mpbench.data.datasets import ClipDataset, DataBundle, FileSource, VideoEntry
from mpbench.data.registry import (
    DATASETS,
    DatasetInfo,
    get_dataset,
    list_datasets,
    register_dataset,
)
from mpbench.data.sets import BUILT_IN
from mpbench.data.synth import PRESETS, SynthSource, SynthSpec, preset_spec
from mpbench.data.video import clip_span

SPLITS = ("train", "val", "test")
ALL_SPLITS = (*SPLITS, "test_shift")  # test_shift: appearance-shifted, reported only

COMMON_OPTIONS: dict[str, str] = {
    "flip": "random horizontal flip in training (bool)",
    "scale": "area range [min, max] of the training random resized crop",
    "jitter_scales": "[min, max] short side of the training scale jitter (PySlowFast's "
    "TRAIN_JITTER_SCALES): a random short side in the range, then a random crop; replaces the "
    "random resized crop (scale); the decode short side defaults to at least max",
    "max_failed_fraction": "error once more than this fraction of videos failed (0.05)",
    "short_side": "decode-time downscale of the short side in pixels (default: crop x 8/7, as "
    "256 for a 224 crop; never upscales)",
    "cache": "decode every video once at short_side into a memory-mapped store and read clips "
    "from it (false; true: ROOT/.mpbench-cache, or a folder path; changes no pixel, so not part "
    "of the cell key; needs a root)",
    "test_shift": "a '<path> <label>' list file (relative to the root) of an appearance-shifted "
    "test split, e.g. a held-out scene or subject: reported beside test, never used to choose "
    "models (synth files: test_shift.txt, read when present)",
}
SHIFT_LIST = "test_shift.txt"


SYNTH_LAYOUT = f"""\
root omitted: clips rendered in memory (options: preset, {
    ", ".join(k for k in SynthSpec.__dataclass_fields__ if k != "motions")
})
root given: the output of `mpbench data synth ROOT`:
  ROOT/videos/<class>/<split>_<index>.mp4
  ROOT/{{train,val,test}}.txt      "<path> <label>" per line (three disjoint splits)
  ROOT/test_shift.txt            the appearance-shifted test split (reported only)
  ROOT/classes.txt               class names in label order
  ROOT/metadata.json             generator version, preset, knobs and seed"""


def _render_synth(
    opts: dict[str, Any], *, frames: int, sampling_rate: int, seed: int
) -> tuple[dict[str, Any], list[str], dict[str, Any]]:
    """The synthetic clips rendered in memory: a source per split, class names, metadata."""
    preset, spec = _synth_spec(opts, frames=frames, sampling_rate=sampling_rate)
    sources = {s: SynthSource(spec, seed=seed, split=s) for s in ALL_SPLITS}
    return sources, spec.class_names, {"preset": preset, "in_memory": True, **spec.to_dict()}


def _read_synth_files(root: Path) -> readers.Splits:
    """The clips written by ``mpbench data synth ROOT``: its split lists."""
    from mpbench.data.sets.lists import read_list

    readers.require(root / "metadata.json", SYNTH_LAYOUT)
    return read_list(root, video_dir=".")


def _synth_metadata(root: Path) -> dict[str, Any]:
    """The generator's version, preset, knobs and seed of written synthetic clips."""
    return json.loads((root / "metadata.json").read_text(encoding="utf-8"))


register_dataset(
    "synth",
    description="synthetic motion benchmark, motion-only at every frame (default)",
    layout=SYNTH_LAYOUT,
    reader=_read_synth_files,
    flip=False,
    scale=(0.7, 1.0),
    render=_render_synth,
    render_options=("preset", "ladder", "level", *SynthSpec.__dataclass_fields__),
    metadata=_synth_metadata,
)
for _module in BUILT_IN:  # each registers itself: layout, reader, fake layout
    importlib.import_module(f"mpbench.data.sets.{_module}")


def _split_options(info: DatasetInfo, options: Mapping[str, Any]) -> tuple[dict, dict]:
    """(common clip options with the dataset's defaults, reader options); unknown -> error."""
    known = set(COMMON_OPTIONS) | set(info.options) | set(info.render_options)
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(
            f"unknown option(s) {unknown} for dataset {info.name!r}; "
            f"known: {', '.join(sorted(known))}"
        )
    scale = tuple(float(v) for v in options.get("scale", info.scale))
    if len(scale) != 2 or not 0.0 < scale[0] <= scale[1] <= 1.0:
        raise ValueError(f"scale must be [min, max] with 0 < min <= max <= 1, got {scale}")
    common = {
        "flip": bool(options.get("flip", info.flip)),
        "scale": scale,
        "jitter": _jitter_option(options),
        "max_failed_fraction": float(options.get("max_failed_fraction", 0.05)),
        "short_side": options.get("short_side"),
        "cache": _cache_option(options.get("cache", False)),
        "test_shift": options.get("test_shift"),
    }
    return common, {k: v for k, v in options.items() if k not in COMMON_OPTIONS}


def _jitter_option(options: Mapping[str, Any]) -> tuple[int, int] | None:
    """The ``jitter_scales`` option: None, or (min, max) short sides; not with ``scale``."""
    value = options.get("jitter_scales")
    if value is None:
        return None
    if "scale" in options:
        raise ValueError("jitter_scales replaces the random resized crop: drop the scale option")
    if not (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        and 0 < value[0] <= value[1]
    ):
        raise ValueError(f"jitter_scales must be [min, max] integers, min <= max; got {value!r}")
    return int(value[0]), int(value[1])


def _cache_option(value: Any) -> bool | Path:
    """The ``cache`` option: False (off), True (under the root) or a cache folder."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str | Path) and str(value).strip():
        return Path(value).expanduser()
    raise ValueError(f"cache must be true, false or a folder path, got {value!r}")


def _synth_spec(opts: dict[str, Any], *, frames: int, sampling_rate: int) -> tuple[str, SynthSpec]:
    """The in-memory synth spec; videos are at least one clip span long."""
    preset = opts.pop("preset", "easy")
    if preset not in PRESETS:
        raise ValueError(f"unknown synth preset {preset!r}; expected one of {', '.join(PRESETS)}")
    span = clip_span(frames, sampling_rate)
    opts.setdefault("video_frames", max(PRESETS[preset].video_frames, span))
    return preset, preset_spec(preset, **opts)


def build_data(
    name: str,
    *,
    root: str | Path | None = None,
    frames: int,
    sampling_rate: int,
    crop: int,
    seed: int,
    options: Mapping[str, Any] | None = None,
) -> DataBundle:
    """Train/val/test datasets of clips with ``frames`` + 1 frames and ``crop`` x ``crop`` pixels.

    The three splits are disjoint (see :mod:`mpbench.data.readers`): val chooses models, test is
    reported only; ``info["splits"]`` says where each split of a dataset on disk comes from.

    ``seed`` fixes the synthetic clips (in-memory mode); temporal and spatial augmentation
    draw from torch's RNG (seed it, and DataLoader seeds its workers from it).
    """
    info = get_dataset(name)
    common, opts = _split_options(info, dict(options or {}))
    clip_kw = {
        "frames": frames,
        "sampling_rate": sampling_rate,
        "crop": crop,
        "max_failed_fraction": common["max_failed_fraction"],
        "name": name,
    }
    if root is None and info.render is not None:
        if common["cache"] is not False:
            raise ValueError(
                f"the cache option needs a dataset on disk, but the in-memory {name} renders its "
                f"clips: write them with `mpbench data {name} ROOT` and set that root (data_root)"
            )
        sources, names, meta = info.render(
            opts, frames=frames, sampling_rate=sampling_rate, seed=seed
        )
    else:
        splits, meta = _read_splits(info, root, opts)
        splits = with_shift_split(splits, root, common["test_shift"])
        short = decode_short_side(common["short_side"], crop, jitter=common["jitter"])
        if common["cache"] is False:
            sources = {s: FileSource(getattr(splits, s), short_side=short) for s in ALL_SPLITS}
        else:
            sources, cache_meta = _cached_sources(splits, root, short, common["cache"])
            meta = {**meta, **cache_meta}
        names, meta = splits.class_names, {"splits": splits.rule, **meta}
    train = ClipDataset(
        sources["train"],
        mode="train",
        flip=common["flip"],
        scale=common["scale"],
        jitter=common["jitter"],
        **clip_kw,
    )
    val = ClipDataset(sources["val"], mode="val", **clip_kw)

    def tester(split: str) -> Callable[[int, int], ClipDataset] | None:
        if not len(sources.get(split) or ()):
            return None
        return lambda num_clips, num_crops: ClipDataset(
            sources[split], mode="test", num_clips=num_clips, num_crops=num_crops, **clip_kw
        )

    info_dict = {
        "root": None if root is None else str(root),
        "num_train": len(train),
        "num_val": len(val),
        "num_test": len(sources["test"]),
        "num_test_shift": len(sources.get("test_shift") or ()),
        **meta,
    }
    return DataBundle(
        train,
        val,
        tester("test"),  # type: ignore[arg-type]
        names,
        name=name,
        info=info_dict,
        make_test_shift=tester("test_shift"),
    )


def with_shift_split(splits: readers.Splits, root: str | Path, value: Any) -> readers.Splits:
    """``splits`` with the test_shift videos of option ``value`` (a list file under ``root``;
    None: ROOT/test_shift.txt when present, else none)."""
    from dataclasses import replace

    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ValueError(f"test_shift must be a list file relative to the root, got {value!r}")
    path = Path(root).expanduser() / (value or SHIFT_LIST)
    if value is None and not path.is_file():
        return splits
    readers.require(path, "'<path relative to the root> <label>' per line", kind="test_shift list")
    entries = readers.read_path_label_list(path, video_dir=path.parent)
    return replace(splits, test_shift=entries, rule=f"{splits.rule}; test_shift = {path.name}")


def decode_short_side(value: Any, crop: int, *, jitter: tuple[int, int] | None = None) -> int:
    """The decode-time short side: ``value`` (an integer >= crop) or crop x 8/7, at least the
    largest short side of the scale ``jitter`` (frames are not decoded small to be scaled up)."""
    if value is None:
        return max(round(crop * 8 / 7), jitter[1] if jitter else 0)
    if not isinstance(value, int) or isinstance(value, bool) or value < crop:
        raise ValueError(f"short_side must be an integer >= crop ({crop}), got {value!r}")
    return value


def _cached_sources(
    splits: readers.Splits, root: str | Path | None, short: int, cache: bool | Path
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A CacheSource per split over one store of every video (built under a lock if needed)."""
    from mpbench.data.cache import default_cache_dir, ensure_store, store_path

    folder = default_cache_dir(root) if cache is True else cache  # type: ignore[arg-type]
    store, _ = ensure_store(
        [entry for split in ALL_SPLITS for entry in getattr(splits, split)],
        path=store_path(folder, short),  # type: ignore[arg-type]
        short_side=short,
    )
    sources = {s: store.source(getattr(splits, s)) for s in ALL_SPLITS}
    return sources, {"cache": str(store.path), "cache_build": store.build_id}


def read_splits(
    name: str, *, root: str | Path, options: Mapping[str, Any] | None = None
) -> readers.Splits:
    """The labelled videos of the train, val, test (and test_shift) splits of dataset ``name``
    at ``root`` (``options``: the reader's and test_shift; other clip options are ignored)."""
    info = get_dataset(name)
    if info.render is not None and root is None:
        raise ValueError(f"the in-memory {name} has no video files; pass the root of written ones")
    common, opts = _split_options(info, dict(options or {}))
    return with_shift_split(_read_splits(info, root, opts)[0], root, common["test_shift"])


def _read_splits(
    info: DatasetInfo, root: str | Path | None, opts: dict[str, Any]
) -> tuple[readers.Splits, dict[str, Any]]:
    """Run the dataset's reader on ``root``; its metadata, if it has any."""
    if root is None:
        raise ValueError(
            f"dataset {info.name!r} needs a root directory (--root / data_root) "
            f"laid out as:\n{info.layout}"
        )
    root = Path(root).expanduser()
    rendering = sorted(set(opts) & set(info.render_options))
    if rendering:
        raise ValueError(
            f"{info.name} options {rendering} apply only to the in-memory mode "
            f"(no root); {root} holds files written with fixed knobs"
        )
    if info.reader is None:
        raise ValueError(f"dataset {info.name!r} is rendered in memory: it takes no root")
    splits = info.reader(root, **opts)
    _check_nonempty(splits, root, info)
    return splits, info.metadata(root) if info.metadata is not None else {}


def _check_nonempty(splits: readers.Splits, root: Path, info: DatasetInfo) -> None:
    """A split without a single video is a layout error."""
    for split, entries in (("train", splits.train), ("val", splits.val), ("test", splits.test)):
        if not entries:
            raise readers.LayoutError(
                f"no {split} videos found under {root}\nExpected layout:\n{info.layout}"
            )


def cache_dataset(
    name: str,
    *,
    root: str | Path,
    short_side: int,
    cache_dir: str | Path | None = None,
    options: dict[str, Any] | None = None,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
    on_build: Callable[[str], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> tuple[Any, str | None]:
    """Ensure the store of every video of dataset ``name`` (train, val and test) at ``root``.

    ``cache_dir`` defaults to ``root/.mpbench-cache``; the store is ``cache_dir/s{short_side}``.
    ``options`` are the dataset reader's options; ``on_total`` is told the number of videos.
    Returns the :class:`~mpbench.data.cache.CacheStore` and why it was built (None: up to date).
    """
    from mpbench.data.cache import (
        check_short_side,
        default_cache_dir,
        ensure_store,
        store_path,
        unique_entries,
    )

    check_short_side(short_side)
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"dataset root {root} does not exist or is not a folder")
    splits = read_splits(name, root=root, options=options)
    entries = unique_entries([e for split in ALL_SPLITS for e in getattr(splits, split)])
    if on_total is not None:
        on_total(len(entries))
    folder = default_cache_dir(root) if cache_dir is None else Path(cache_dir).expanduser()
    return ensure_store(
        entries,
        path=store_path(folder, short_side),
        short_side=short_side,
        workers=workers,
        progress=progress,
        on_build=on_build,
    )


__all__ = [
    "DATASETS",
    "DatasetInfo",
    "VideoEntry",
    "build_data",
    "cache_dataset",
    "list_datasets",
    "read_splits",
]
