"""The decoded-clip cache: exactness against the decoder, staleness, atomic and locked builds,
broken videos, the CLI, DataLoader workers and the ``cache`` dataset option (real mp4 files)."""

from __future__ import annotations

import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader
from typer.testing import CliRunner

from mpbench.cli import app
from mpbench.config import TrialConfig
from mpbench.data import build_data, collate_clips, preset_spec, video, write_synth_dataset
from mpbench.data.cache import (
    CacheStore,
    build_store,
    default_cache_dir,
    ensure_store,
    stale_reason,
    store_path,
)
from mpbench.data.catalog import read_splits
from mpbench.data.datasets import FileSource, VideoEntry
from mpbench.data.synth import write_mp4
from mpbench.data.video import VideoDecodeError

SIZES = [(48, 64), (64, 48), (40, 40), (36, 90)]  # H x W of the test videos (all even)
SPLIT_OF = ["train", "train", "train", "train", "val", "val", "test", "test"]
PICK = [5, 0, 3, 3, 1]  # unsorted, repeated
ENV = {**os.environ, "COLUMNS": "250"}


def pick(n: int) -> list[int]:
    """Frame indices a clip might ask for: unsorted, repeated, the last one too."""
    return [i % n for i in PICK] + [n - 1]


def _write_list_dataset(root: Path, *, broken: bool = True) -> Path:
    """Eight noisy mp4 videos of four sizes in train/val/test lists, plus a broken file."""
    rng = np.random.default_rng(0)
    lines: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for i, split in enumerate(SPLIT_OF):
        h, w = SIZES[i % len(SIZES)]
        write_mp4(root / f"v{i}.mp4", rng.integers(0, 256, (8 + i, h, w, 3), np.uint8), fps=25)
        lines[split].append(f"v{i}.mp4 {i % 2}")
    if broken:
        (root / "bad.mp4").write_bytes(b"\x00garbage" * 50)
        lines["train"].append("bad.mp4 1")
    for split, rows in lines.items():
        (root / f"{split}.txt").write_text("\n".join(rows) + "\n")
    (root / "classes.txt").write_text("a\nb\n")
    return root


@pytest.fixture(scope="module")
def list_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A written list dataset shared by the tests that do not change it."""
    return _write_list_dataset(tmp_path_factory.mktemp("videos"))


@pytest.fixture
def own_root(list_root: Path, tmp_path: Path) -> Path:
    """A private copy of the list dataset (same files, same mtimes) for tests that change it."""
    return Path(shutil.copytree(list_root, tmp_path / "data", ignore=_no_cache))


def _no_cache(_dir: str, names: list[str]) -> list[str]:
    return [n for n in names if n == ".mpbench-cache"]


def _entries(root: Path) -> list[VideoEntry]:
    splits = read_splits("list", root=root)
    return [*splits.train, *splits.val, *splits.test]


def _many_videos(root: Path, n: int) -> Path:
    """A list dataset of ``n`` copies of one 64 x 64, 40-frame video (slow enough to kill)."""
    rng = np.random.default_rng(1)
    write_mp4(root / "v0.mp4", rng.integers(0, 256, (40, 64, 64, 3), np.uint8), fps=25)
    for i in range(1, n):
        shutil.copy(root / "v0.mp4", root / f"v{i}.mp4")
    thirds = {"train": range(0, n - 4), "val": range(n - 4, n - 2), "test": range(n - 2, n)}
    for split, idx in thirds.items():
        (root / f"{split}.txt").write_text("".join(f"v{i}.mp4 {i % 2}\n" for i in idx))
    return root


# ----------------------------------------------------------------------------------------------
# Exactness and broken videos


@pytest.mark.parametrize("short_side", [32, 64])
def test_cache_reads_exactly_what_the_decoder_reads(list_root: Path, short_side: int) -> None:
    entries = [e for e in _entries(list_root) if "bad" not in e.path]
    store, _ = ensure_store(
        entries, path=store_path(default_cache_dir(list_root), short_side), short_side=short_side
    )
    cached, files = store.source(entries), FileSource(entries, short_side=short_side)
    for i in range(len(entries)):
        got, want = cached.read(i, pick), files.read(i, pick)
        assert got.dtype == torch.uint8 and got.shape == want.shape
        assert torch.equal(got, want), entries[i].path
        assert cached.label(i) == files.label(i) and cached.describe(i) == entries[i].path
    assert min(cached.read(0, pick).shape[1:3]) == min(short_side, min(SIZES[0]))


def test_broken_video_is_stored_as_failed_and_not_retried(list_root: Path, tmp_path: Path) -> None:
    entries = _entries(list_root)
    path = tmp_path / "s32"
    store, reason = ensure_store(entries, path=path, short_side=32)
    assert reason is not None and store.failed == 1 and store.header["failed"] == 1
    bad = next(i for i, e in enumerate(entries) if "bad" in e.path)
    with pytest.raises(VideoDecodeError, match=r"bad\.mp4"):
        store.source(entries).read(bad, pick)
    again, reason = ensure_store(entries, path=path, short_side=32)
    assert reason is None and again.build_id == store.build_id  # not decoded again


def test_out_of_range_index_is_an_error_as_in_the_decoder(list_root: Path, tmp_path: Path) -> None:
    entries = _entries(list_root)[:1]
    store, _ = ensure_store(entries, path=tmp_path / "s32", short_side=32)
    with pytest.raises(ValueError, match="frame index 8 out of range for a video of 8 frames"):
        store.source(entries).read(0, lambda n: [0, n])


def test_source_pickles_without_frames_and_reads_after(list_root: Path, tmp_path: Path) -> None:
    entries = _entries(list_root)[:3]
    store, _ = ensure_store(entries, path=tmp_path / "s32", short_side=32)
    src = store.source(entries)
    first = src.read(1, pick)
    blob = pickle.dumps(src)
    assert len(blob) < 4000  # the index rows only, not the mapped frames
    assert torch.equal(pickle.loads(blob).read(1, pick), first)


# ----------------------------------------------------------------------------------------------
# Staleness


def test_touching_a_video_rebuilds_and_reuses_the_others(own_root: Path) -> None:
    entries, path = _entries(own_root), store_path(default_cache_dir(own_root), 32)
    first, _ = ensure_store(entries, path=path, short_side=32)
    st = os.stat(own_root / "v2.mp4")
    os.utime(own_root / "v2.mp4", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert "1 source files changed" in stale_reason(path, entries, short_side=32)
    second, reason = ensure_store(entries, path=path, short_side=32)
    assert reason is not None and "v2.mp4" in reason and second.build_id != first.build_id
    assert second.header["decoded"] == 1 and second.header["reused"] == len(entries) - 1


def test_rewritten_video_is_read_anew(own_root: Path) -> None:
    entries, path = _entries(own_root), store_path(default_cache_dir(own_root), 32)
    ensure_store(entries, path=path, short_side=32)
    frames = np.full((9, 40, 40, 3), 200, np.uint8)
    write_mp4(own_root / "v2.mp4", frames, fps=25)
    store, reason = ensure_store(entries, path=path, short_side=32)
    assert reason is not None
    i = next(k for k, e in enumerate(entries) if e.path.endswith("v2.mp4"))
    want = FileSource(entries, short_side=32).read(i, pick)
    assert torch.equal(store.source(entries).read(i, pick), want)
    assert store.index["frames"][i] == 9


def test_added_or_removed_video_rebuilds(list_root: Path, tmp_path: Path) -> None:
    entries, path = _entries(list_root), tmp_path / "s32"
    ensure_store(entries[:-1], path=path, short_side=32)
    assert "1 videos added, 0 removed" in stale_reason(path, entries, short_side=32)
    ensure_store(entries, path=path, short_side=32)
    assert "0 videos added, 2 removed" in stale_reason(path, entries[2:], short_side=32)


def test_other_short_side_builds_another_store(list_root: Path, tmp_path: Path) -> None:
    entries = _entries(list_root)
    a, _ = ensure_store(entries, path=store_path(tmp_path, 32), short_side=32)
    b, reason = ensure_store(entries, path=store_path(tmp_path, 40), short_side=40)
    assert reason == f"no store at {tmp_path / 's40'} yet"
    assert (a.path.name, b.path.name) == ("s32", "s40") and a.build_id != b.build_id
    assert "short side 32 != requested 40" in stale_reason(a.path, entries, short_side=40)
    assert stale_reason(a.path, entries, short_side=32) is None  # both stay usable


def test_decoder_change_rebuilds(
    list_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries, path = _entries(list_root)[:2], tmp_path / "s32"
    ensure_store(entries, path=path, short_side=32)
    monkeypatch.setattr(video, "DECODER_VERSION", video.DECODER_VERSION + 1)
    reason = stale_reason(path, entries, short_side=32)
    assert reason is not None and "decoder changed since the build" in reason
    assert f"mpbench_decoder {video.DECODER_VERSION - 1} -> {video.DECODER_VERSION}" in reason
    store, _ = ensure_store(entries, path=path, short_side=32)
    assert store.header["reused"] == 0  # other decoder: nothing copied


# ----------------------------------------------------------------------------------------------
# Atomic and locked builds


class Stop(Exception):
    """Raised from the progress callback to interrupt a build."""


@pytest.mark.slow
def test_parallel_build_writes_the_same_store(own_root: Path, tmp_path: Path) -> None:
    entries = _entries(own_root)
    one = build_store(entries, path=tmp_path / "one", short_side=32)
    shutil.copytree(one.path, tmp_path / "two")
    for name in ("v3.mp4", "bad.mp4"):  # changed: decoded by the workers, the rest copied
        os.utime(own_root / name)
    two = build_store(entries, path=tmp_path / "two", short_side=32, workers=2)
    assert (two.header["decoded"], two.header["reused"]) == (2, len(entries) - 2)
    assert (one.path / "frames.u8").read_bytes() == (two.path / "frames.u8").read_bytes()
    assert {k: v for k, v in one.index.items() if k != "mtime_ns"} == {
        k: v for k, v in two.index.items() if k != "mtime_ns"
    }
    assert two.failed == 1


def test_failed_build_leaves_the_old_store_and_no_debris(list_root: Path, tmp_path: Path) -> None:
    entries, path = _entries(list_root), tmp_path / "s32"

    def boom(_n: int) -> None:
        raise Stop

    with pytest.raises(Stop):
        build_store(entries, path=path, short_side=32, progress=boom)
    assert list(tmp_path.iterdir()) == []  # no store, no temporary folder
    old, _ = ensure_store(entries[:3], path=path, short_side=32)
    with pytest.raises(Stop):
        ensure_store(entries, path=path, short_side=32, progress=boom)
    assert CacheStore.open(path).build_id == old.build_id
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s32", "s32.lock"]


def test_build_refuses_to_replace_what_is_not_a_store(list_root: Path, tmp_path: Path) -> None:
    (tmp_path / "s32").mkdir()
    (tmp_path / "s32" / "precious.txt").write_text("keep")
    with pytest.raises(ValueError, match="exists and is not a cache store"):
        ensure_store(_entries(list_root), path=tmp_path / "s32", short_side=32)
    assert (tmp_path / "s32" / "precious.txt").read_text() == "keep"


def test_source_refuses_a_store_rebuilt_under_it(list_root: Path, tmp_path: Path) -> None:
    entries, path = _entries(list_root), tmp_path / "s32"
    store, _ = ensure_store(entries[:3], path=path, short_side=32)
    src = pickle.loads(pickle.dumps(store.source(entries[:3])))  # not mapped yet
    ensure_store(entries[:4], path=path, short_side=32)
    with pytest.raises(RuntimeError, match="was rebuilt"):
        src.read(0, pick)


def _cli(root: Path) -> list[str]:
    """The argv of ``mpbench data cache list --root ROOT`` in a fresh interpreter."""
    return [sys.executable, "-m", "mpbench", "data", "cache", "list", "--root", str(root)]


def test_killed_build_leaves_nothing_used(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    root = _many_videos(tmp_path / "data", 80)
    cache = default_cache_dir(root)
    proc = subprocess.Popen([*_cli(root), "--size", "32"], env=ENV, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # kill it once some frames are written
        parts = list(cache.glob(".s32.tmp-*/frames.u8")) if cache.is_dir() else []
        if parts and parts[0].stat().st_size > 0:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert parts, "the build finished before it could be killed"
    assert not (cache / "s32").exists()
    assert stale_reason(cache / "s32", _entries(root), short_side=32) is not None
    store, reason = ensure_store(_entries(root), path=cache / "s32", short_side=32)
    assert reason is not None and len(store) == 80 and store.failed == 0
    assert sorted(p.name for p in cache.iterdir()) == ["s32", "s32.lock"]  # debris cleaned


@pytest.mark.slow
def test_two_processes_build_the_store_once(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    root = _many_videos(tmp_path / "data", 24)
    procs = [
        subprocess.Popen([*_cli(root), "--size", "32"], env=ENV, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    both = "\n".join(outs)
    assert both.count("building the decoded-clip cache") == 1, both
    assert both.count("up to date") == 1
    ids = {m for out in outs for m in re.findall(r"build\s+([0-9a-f]{32})", out)}
    assert len(ids) == 1 and CacheStore.open(default_cache_dir(root) / "s32").build_id in ids


# ----------------------------------------------------------------------------------------------
# The dataset option, DataLoader workers, the cell key


TINY = {"classes": 2, "train_clips": 4, "val_clips": 4, "test_clips": 2, "video_frames": 8}


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic dataset written as mp4 files (the quickstart's kind of root)."""
    root = tmp_path_factory.mktemp("synth")
    write_synth_dataset(root, spec=preset_spec("easy", size=48, **TINY), seed=0)
    return root


def test_cache_option_end_to_end_with_dataloader_workers(synth_root: Path) -> None:
    kw = {"root": synth_root, "frames": 4, "sampling_rate": 1, "crop": 32, "seed": 0}
    cached = build_data("synth", **kw, options={"cache": True, "short_side": 40})
    plain = build_data("synth", **kw, options={"short_side": 40})
    assert cached.info["cache"] == str(default_cache_dir(synth_root) / "s40")
    assert type(cached.val.source).__name__ == "CacheSource"
    # the workers fork before the main process read a frame: each maps the store itself
    loader = DataLoader(cached.val, batch_size=2, num_workers=2, collate_fn=collate_clips)
    got = torch.cat([b["video"] for b in loader])
    want = torch.cat(
        [b["video"] for b in DataLoader(plain.val, batch_size=2, collate_fn=collate_clips)]
    )
    assert got.shape == (4, 3, 5, 32, 32) and torch.equal(got, want)
    assert torch.equal(cached.test(2, 1)[1][0], plain.test(2, 1)[1][0])
    again = build_data("synth", **kw, options={"cache": True, "short_side": 40})
    assert again.info["cache_build"] == cached.info["cache_build"]  # opened, not rebuilt


def test_cache_option_with_a_folder_and_default_short_side(
    synth_root: Path, tmp_path: Path
) -> None:
    bundle = build_data(
        "synth",
        root=synth_root,
        frames=2,
        sampling_rate=1,
        crop=28,
        seed=0,
        options={"cache": str(tmp_path / "c")},
    )
    assert bundle.info["cache"] == str(tmp_path / "c" / "s32")  # round(28 * 8 / 7)
    assert bundle.train[0][0].shape[1:] == (3, 28, 28)


def test_cache_option_errors() -> None:
    kw = {"frames": 2, "sampling_rate": 1, "crop": 32, "seed": 0}
    with pytest.raises(ValueError, match="cache option needs a dataset on disk"):
        build_data("synth", **kw, options={"cache": True})
    with pytest.raises(ValueError, match="cache must be true, false or a folder path, got 3"):
        build_data("synth", **kw, options={"cache": 3})


def test_cache_option_is_not_part_of_the_cell_key() -> None:
    base = TrialConfig(dataset_options={"short_side": 40})
    assert TrialConfig(dataset_options={"short_side": 40, "cache": True}).key() == base.key()
    assert TrialConfig(channels_last=True).key() == TrialConfig().key()
    assert TrialConfig(dataset_options={"short_side": 48}).key() != base.key()


# ----------------------------------------------------------------------------------------------
# The CLI


def test_cli_builds_reports_and_reuses(list_root: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["data", "cache", "list", "--root", str(list_root), "--size", "32"]
    res = runner.invoke(app, [*args, "--out", str(tmp_path / "c")], env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    assert "building the decoded-clip cache" in res.output
    assert "9 videos (1 failed, skipped), short side 32" in res.output
    assert re.search(r"[\d.]+ hours of video, [\d.]+ GB per hour of video", res.output)
    res = runner.invoke(app, [*args, "--out", str(tmp_path / "c")], env={"COLUMNS": "250"})
    assert res.exit_code == 0 and "up to date" in res.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--size", "4"], "--size"),
        (["--size", "32", "--workers", "0"], "--workers"),
        (["--size", "32", "--root", "/nonexistent/videos"], "/nonexistent/videos does not exist"),
        (["--size", "32", "--set", "nope=1"], "unknown option(s) ['nope']"),
    ],
)
def test_cli_bad_arguments_exit_2(list_root: Path, extra: list[str], message: str) -> None:
    args = ["data", "cache", "list", "--root", str(list_root), *extra]
    res = CliRunner().invoke(app, args, env={"COLUMNS": "250"})
    assert res.exit_code == 2 and message in res.output, res.output


def test_cli_unwritable_cache_folder_exits_2(list_root: Path, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("in the way")
    args = ["data", "cache", "list", "--root", str(list_root), "--size", "32"]
    res = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "file" / "c")])
    assert res.exit_code == 2
    assert f"cannot create the cache folder {tmp_path / 'file' / 'c'}" in res.output


def test_gb_per_hour_of_720p_video_in_the_docs(tmp_path: Path) -> None:
    """docs/datasets.md's disk cost of 1280 x 720 25 fps video, from stores of a 512 x 288 video:
    the same aspect ratio gives the same decoded frame size (228 x 128, 455 x 256), and the cost
    per hour depends only on that and the frame rate."""
    docs = (Path(__file__).resolve().parents[1] / "docs" / "datasets.md").read_text()
    rng = np.random.default_rng(2)
    write_mp4(tmp_path / "v.mp4", rng.integers(0, 256, (10, 288, 512, 3), np.uint8), fps=25)
    entries = [VideoEntry(str(tmp_path / "v.mp4"), 0)]
    for size, width in ((128, 228), (256, 455)):
        store, _ = ensure_store(entries, path=store_path(tmp_path / "c", size), short_side=size)
        assert (store.index["width"], store.index["height"]) == ([width], [size])
        assert f"| {size} | {width} x {size} | {store.gb_per_hour:.2f} |" in docs


def test_dry_run_step_count_builds_no_cache(synth_root: Path) -> None:
    from mpbench.study.dryrun import steps_of

    cfg = TrialConfig(
        data_root=str(synth_root), crop=32, batch_size=2, epochs=1, dataset_options={"cache": True}
    )
    assert steps_of(cfg) == (TINY["train_clips"] // 2, "")
    assert not (default_cache_dir(synth_root) / "s37").exists()
