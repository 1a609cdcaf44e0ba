"""build_data and the clip datasets: shapes, views, decoding of mp4 files, broken videos."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from mpbench.data import (
    ClipDataset,
    TooManyBrokenVideos,
    build_data,
    collate_clips,
    preset_spec,
    write_synth_dataset,
)
from mpbench.data.synth import SynthSource, render_clip, write_mp4
from mpbench.data.transforms import crop_boxes
from mpbench.data.video import clip_indices, uniform_starts

TINY = {
    "classes": 3,
    "train_clips": 6,
    "val_clips": 3,
    "test_clips": 3,
    "video_frames": 10,
    "size": 48,
}


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic dataset written as mp4 files."""
    root = tmp_path_factory.mktemp("synth")
    write_synth_dataset(root, spec=preset_spec("easy", **TINY), seed=0)
    return root


def test_in_memory_synth_items_have_t_plus_one_frames() -> None:
    bundle = build_data("synth", frames=4, sampling_rate=2, crop=32, seed=0, options=TINY)
    video, label = bundle.train[4]
    assert video.shape == (3, 5, 32, 32) and video.dtype == torch.float32
    assert label == 4 % 3
    assert bundle.num_classes == 3 and bundle.class_names == ["right", "left", "up"]
    assert bundle.mean == (0.45, 0.45, 0.45) and bundle.std == (0.225, 0.225, 0.225)
    assert bundle.val[0][0].shape == (3, 5, 32, 32)
    assert len(bundle.train) == 6 and len(bundle.val) == 3


def test_in_memory_videos_are_at_least_one_clip_long() -> None:
    bundle = build_data("synth", frames=16, sampling_rate=1, crop=32, seed=0)
    assert bundle.info["video_frames"] == 17
    assert bundle.val[0][0].shape == (3, 17, 32, 32)


def test_val_clip_is_the_normalised_centre_of_the_video() -> None:
    opts = {**TINY, "size": 32}
    bundle = build_data("synth", frames=4, sampling_rate=1, crop=32, seed=0, options=opts)
    frames, _ = render_clip(preset_spec("easy", **opts), seed=0, split="val", index=1)
    expected = (torch.from_numpy(frames[2:7]).permute(3, 0, 1, 2).float() / 255 - 0.45) / 0.225
    torch.testing.assert_close(bundle.val[1][0], expected)


def test_file_mode_decodes_mp4_to_t_plus_one_frames_of_crop_size(synth_root: Path) -> None:
    bundle = build_data("synth", root=synth_root, frames=8, sampling_rate=1, crop=40, seed=0)
    assert bundle.class_names == ["right", "left", "up"]
    assert bundle.info["preset"] == "easy"
    video, label = bundle.train[2]
    assert video.shape == (3, 9, 40, 40) and label == bundle.train.labels[2]
    # decoded files match the in-memory clips up to H.264 loss
    split, index = Path(bundle.val.source.describe(1)).stem.split("_")
    mem = ClipDataset(
        SynthSource(preset_spec("easy", **TINY), seed=0, split=split),
        mode="val",
        frames=8,
        sampling_rate=1,
        crop=40,
    )
    assert (bundle.val[1][0] - mem[int(index)][0]).abs().mean() < 0.1


def _list_file(path: Path) -> list[str]:
    """The video paths of a "<path> <label>" list, in order."""
    return [str(path.parent / line.rsplit(None, 1)[0]) for line in path.read_text().splitlines()]


def test_synth_root_reads_test_txt_and_carves_val_without_it(
    synth_root: Path, tmp_path: Path
) -> None:
    root = Path(shutil.copytree(synth_root, tmp_path / "with_test"))
    if not (root / "test.txt").exists():  # written by older versions of `mpbench data synth`
        val_lines = (root / "val.txt").read_text().splitlines()
        (root / "val.txt").write_text("".join(f"{x}\n" for x in val_lines[::2]))
        (root / "test.txt").write_text("".join(f"{x}\n" for x in val_lines[1::2]))
    bundle = build_data("synth", root=root, frames=2, sampling_rate=1, crop=16, seed=0)
    assert [e.path for e in bundle.test(1, 1).source.entries] == _list_file(root / "test.txt")
    assert [e.path for e in bundle.val.source.entries] == _list_file(root / "val.txt")
    assert bundle.info["splits"] == (
        "train, val, test = train.txt, val.txt, test.txt as given; test_shift = test_shift.txt"
    )
    (root / "test.txt").unlink()
    carved = build_data("synth", root=root, frames=2, sampling_rate=1, crop=16, seed=0)
    assert [e.path for e in carved.test(1, 1).source.entries] == _list_file(root / "val.txt")
    train_files, val_files = _list_file(root / "train.txt"), carved.val.source.entries
    assert val_files and {e.path for e in val_files} < set(train_files)
    assert len(carved.train) + len(carved.val) == len(train_files)
    assert carved.info["splits"].startswith("test = val.txt; val = 0.1 of each class's groups")


def test_test_views_stack_clips_times_crops(synth_root: Path) -> None:
    bundle = build_data("synth", root=synth_root, frames=4, sampling_rate=1, crop=32, seed=0)
    video, _ = bundle.test(2, 3)[0]
    assert video.shape == (6, 3, 5, 32, 32)
    assert bundle.test(num_clips=1, num_crops=1)[0][0].shape == (1, 3, 5, 32, 32)
    with pytest.raises(ValueError, match=r"num_crops must be 1 \(centre\) or 3"):
        bundle.test(1, 2)


def test_uniform_starts_and_crop_boxes() -> None:
    assert uniform_starts(20, frames=4, sampling_rate=1, clips=1) == [8]
    assert uniform_starts(20, frames=4, sampling_rate=1, clips=3) == [2, 8, 12]
    assert uniform_starts(3, frames=4, sampling_rate=1, clips=2) == [0, 0]
    assert clip_indices(3, frames=4, sampling_rate=1, start=0).tolist() == [0, 1, 2, 2, 2]
    assert crop_boxes(32, 48, crop=32, crops=3) == [(0, 0), (0, 8), (0, 16)]
    assert crop_boxes(48, 32, crop=32, crops=3) == [(0, 0), (8, 0), (16, 0)]


def test_train_sampling_is_controlled_by_torch_seed(synth_root: Path) -> None:
    bundle = build_data("synth", root=synth_root, frames=3, sampling_rate=1, crop=32, seed=0)
    torch.manual_seed(7)
    a = bundle.train[0][0]
    torch.manual_seed(7)
    b = bundle.train[0][0]
    torch.manual_seed(8)
    c = bundle.train[0][0]
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, c)


def _dataset_with_broken(tmp_path: Path, *, good: int, broken: int) -> Path:
    """A list dataset of ``good`` tiny mp4 files plus ``broken`` corrupt ones."""
    spec = preset_spec("easy", classes=2, video_frames=5, size=16)
    lines = []
    for i in range(good):
        frames, label = render_clip(spec, seed=0, split="train", index=i)
        write_mp4(tmp_path / f"ok{i}.mp4", frames, fps=4)
        lines.append(f"ok{i}.mp4 {label}")
    whole = (tmp_path / "ok0.mp4").read_bytes()
    for i in range(broken):  # garbage, truncated, empty
        data = [b"\x00garbage" * 50, whole[: len(whole) // 3], b""][i % 3]
        (tmp_path / f"bad{i}.mp4").write_bytes(data)
        lines.append(f"bad{i}.mp4 {i % 2}")
    (tmp_path / "train.txt").write_text("\n".join(lines) + "\n")
    for split in ("val", "test"):  # their own files: the three splits must be disjoint
        (tmp_path / f"{split}0.mp4").write_bytes(whole)
        (tmp_path / f"{split}.txt").write_text(f"{split}0.mp4 0\n")
    return tmp_path


def test_corrupt_video_is_skipped_counted_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = _dataset_with_broken(tmp_path, good=20, broken=1)
    bundle = build_data("list", root=root, frames=2, sampling_rate=1, crop=16, seed=0)
    loader = DataLoader(bundle.train, batch_size=7, collate_fn=collate_clips)
    with caplog.at_level(logging.WARNING, logger="mpbench.data"):
        batches = list(loader)
    assert sum(b["skipped"] for b in batches) == 1
    assert sum(len(b["label"]) for b in batches) == 20
    assert bundle.train.skipped == 1
    assert batches[-1]["video"].shape == (6, 3, 3, 16, 16)
    assert "skipping unreadable video" in caplog.text and "bad0.mp4" in caplog.text


def test_broken_videos_are_counted_across_dataloader_workers(tmp_path: Path) -> None:
    root = _dataset_with_broken(tmp_path, good=4, broken=3)
    bundle = build_data(
        "list",
        root=root,
        frames=2,
        sampling_rate=1,
        crop=16,
        seed=0,
        options={"max_failed_fraction": 0.5},
    )
    loader = DataLoader(bundle.train, batch_size=4, num_workers=2, collate_fn=collate_clips)
    assert sum(b["skipped"] for b in loader) == 3
    assert bundle.train.skipped == 3  # flags live in shared memory


def test_more_than_five_percent_broken_is_an_error(tmp_path: Path) -> None:
    root = _dataset_with_broken(tmp_path, good=9, broken=2)
    bundle = build_data("list", root=root, frames=2, sampling_rate=1, crop=16, seed=0)
    loader = DataLoader(bundle.train, batch_size=11, collate_fn=collate_clips)
    with pytest.raises(TooManyBrokenVideos, match=r"list \(train\): 1 of 11 videos failed"):
        list(loader)


def test_collate_of_an_all_broken_batch_is_empty() -> None:
    batch = collate_clips([None, None])
    assert batch["skipped"] == 2 and batch["video"].numel() == 0
    assert batch["label"].dtype == torch.long


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"frames": 0}, r"frames must be an integer >= 1, got 0"),
        ({"crop": 4}, r"crop must be an integer >= 8, got 4"),
        ({"options": {"colour": 1}}, r"unknown option\(s\) \['colour'\] for dataset 'synth'"),
        ({"options": {"scale": [0.5, 2.0]}}, r"scale must be \[min, max\]"),
        ({"options": {"preset": "x"}}, r"unknown synth preset 'x'"),
    ],
)
def test_bad_arguments_are_rejected(kwargs: dict, match: str) -> None:
    args = {"frames": 4, "sampling_rate": 1, "crop": 32, "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=match):
        build_data("synth", **args)


def test_unknown_dataset_and_missing_root() -> None:
    with pytest.raises(ValueError, match=r"unknown dataset 'ucf'.*Did you mean 'ucf101'"):
        build_data("ucf", frames=4, sampling_rate=1, crop=32, seed=0)
    with pytest.raises(ValueError, match=r"dataset 'hmdb51' needs a root directory"):
        build_data("hmdb51", frames=4, sampling_rate=1, crop=32, seed=0)


def test_synth_root_rejects_in_memory_knobs(synth_root: Path) -> None:
    with pytest.raises(ValueError, match=r"apply only to the in-memory mode"):
        build_data(
            "synth",
            root=synth_root,
            frames=4,
            sampling_rate=1,
            crop=32,
            seed=0,
            options={"classes": 4},
        )


def test_normalisation_statistics_of_a_batch_are_sane() -> None:
    bundle = build_data("synth", frames=4, sampling_rate=1, crop=32, seed=0, options=TINY)
    batch = collate_clips([bundle.train[i] for i in range(6)])
    assert batch["video"].shape == (6, 3, 5, 32, 32)
    assert batch["label"].tolist() == [0, 1, 2, 0, 1, 2]
    assert np.isfinite(batch["video"].numpy()).all()
    assert float(batch["video"].min()) > -2.1 and float(batch["video"].max()) < 2.5


def _flat_video(path: Path, size: int, frames: int = 12) -> str:
    """An MPEG-4 video of ``frames`` grey frames of ``size`` x ``size`` pixels."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = size, size, "yuv420p"
        for k in range(frames):
            img = np.full((size, size, 3), 20 * k, np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(stream.encode())
    return str(path)


def test_tiny_video_loads_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A 1 x 1 video is scaled up to the crop with one warning naming the file, its size and
    the target short side; a video upscaled at most MAX_UPSCALE times loads without one."""
    from mpbench.data.datasets import FileSource, VideoEntry

    tiny, small = _flat_video(tmp_path / "tiny.mp4", 1), _flat_video(tmp_path / "small.mp4", 8)
    source = FileSource([VideoEntry(tiny, 0), VideoEntry(small, 1)])
    kw = {"frames": 4, "sampling_rate": 1, "crop": 16}
    with caplog.at_level(logging.WARNING, logger="mpbench.data"):
        for mode in ("val", "val", "train"):
            ds = ClipDataset(source, mode=mode, **kw)  # type: ignore[arg-type]
            clip, label = ds[0]
            assert clip.shape == (3, 5, 16, 16) and label == 0 and torch.isfinite(clip).all()
            assert ds[0] is not None and ds[1][0].shape == (3, 5, 16, 16)
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    expected = (
        f"{tiny}: its frames are 1x1 pixels, scaled up to the target short side 16 (crop) 16 "
        "times; the clip is used as it is (a tiny or damaged video?)"
    )
    assert warned == [expected] * 3  # once per video and dataset, never for small.mp4
