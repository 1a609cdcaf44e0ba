"""Every dataset preset on a tiny fake directory in its documented layout, and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mpbench.cli import app
from mpbench.data import build_data, list_datasets
from mpbench.data.readers import LayoutError
from mpbench.data.synth import write_mp4

runner = CliRunner()
CODECS = {".avi": ("avi", "mpeg4"), ".webm": ("webm", "libvpx-vp9"), ".mkv": ("matroska", "h264")}


def write_video(path: Path, *, seed: int = 0, frames: int = 6, size: int = 24) -> None:
    """A tiny real video (moving bright square) in the container that the extension names."""
    rng = np.random.default_rng(seed)
    video = np.full((frames, size, size, 3), 60, dtype=np.uint8)
    x0 = int(rng.integers(0, size // 2))
    for t in range(frames):
        video[t, 6:14, x0 + t : x0 + t + 8] = 220
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".mp4":
        write_mp4(path, video, fps=4)
        return
    import av

    fmt, codec = CODECS[path.suffix]
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=4)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for frame in video:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def make_ucf101(root: Path) -> dict:
    """UCF-101 layout with 2 classes, split 1."""
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_text("1 ApplyLipstick\n2 Archery\n")
    train, test = [], []
    for c, cls in enumerate(["ApplyLipstick", "Archery"]):
        for g in (1, 2, 3):
            rel = f"{cls}/v_{cls}_g0{g}_c01.avi"
            write_video(root / "UCF-101" / rel, seed=g + 3 * c)
            (train if g < 3 else test).append(rel)
            if g < 3:
                train[-1] += f" {c + 1}"
    (lists / "trainlist01.txt").write_text("\n".join(train) + "\n")
    (lists / "testlist01.txt").write_text("\n".join(test) + "\n")
    return {"split": 1}


def make_hmdb51(root: Path) -> dict:
    """HMDB-51 layout with 2 classes, split 2."""
    splits = root / "testTrainMulti_7030_splits"
    splits.mkdir(parents=True)
    for cls in ("brush_hair", "cartwheel"):
        lines = []
        for i, tag in enumerate(("1", "1", "2", "0")):
            name = f"{cls}_clip{i}.avi"
            write_video(root / "videos" / cls / name, seed=i)
            lines.append(f"{name} {tag} ")
        (splits / f"{cls}_test_split2.txt").write_text("\n".join(lines) + "\n")
    return {"split": 2}


def make_kinetics(root: Path) -> dict:
    """Kinetics layout: CSVs and <youtube_id>_<start>_<end>.mp4 clips (flat and per class)."""
    header = "label,youtube_id,time_start,time_end,split\n"
    for split in ("train", "val"):
        rows = []
        for i, label in enumerate(["abseiling", "air drumming", "abseiling", "air drumming"]):
            yid = f"{split}{i}xYz_-"
            rows.append(f'"{label}",{yid},{i * 10},{i * 10 + 10},{split}\n')
            sub = f"{label}/" if split == "train" else ""
            write_video(root / split / f"{sub}{yid}_{i * 10:06d}_{i * 10 + 10:06d}.mp4", seed=i)
        (root / f"{split}.csv").write_text(header + "".join(rows))
    return {}


def make_ssv2(root: Path) -> dict:
    """Something-Something v2 layout with JSON labels and webm videos."""
    labels = root / "labels"
    labels.mkdir(parents=True)
    table = {"Pushing something from left to right": "1", "Holding something": "0"}
    (labels / "something-something-v2-labels.json").write_text(json.dumps(table))
    templates = ["Pushing [something] from left to right", "Holding [something]"]
    for split, ids in (("train", [1, 2, 3, 4]), ("validation", [5, 6])):
        items = [
            {"id": str(i), "template": templates[i % 2], "label": "x", "placeholders": []}
            for i in ids
        ]
        (labels / f"something-something-v2-{split}.json").write_text(json.dumps(items))
        for i in ids:
            write_video(root / "20bn-something-something-v2" / f"{i}.webm", seed=i)
    return {}


def make_finegym(root: Path) -> dict:
    """FineGym layout (Gym99) with a categories file."""
    ann = root / "annotations"
    ann.mkdir(parents=True)
    for name, ids in (
        ("gym99_train_element_v1.1.txt", [0, 1, 2, 3]),
        ("gym99_val_element.txt", [4, 5]),
    ):
        lines = []
        for i in ids:
            clip = f"A0xAXXysHUo_E_00{i}407_00{i}435_A_0003_0005"
            write_video(root / "clips" / f"{clip}.mp4", seed=i)
            lines.append(f"{clip} {i % 2}")
        (ann / name).write_text("\n".join(lines) + "\n")
    (ann / "gym99_categories.txt").write_text(
        "Clabel: 0; set: 1; Glabel: 1; (VT) round-off, flic-flac\n"
        "Clabel: 1; set: 1; Glabel: 2; (VT) round-off, flic-flac with 0.5 turn\n"
    )
    return {}


def make_mpii_cooking2(root: Path) -> dict:
    """MPII Cooking 2 layout: "<path> <label>" split CSVs and clips under videos/."""
    for split, n in (("train", 4), ("val", 2), ("test", 2)):
        lines = []
        for i in range(n):
            rel = f"s{i % 2}/{split}_{i}.avi"
            write_video(root / "videos" / rel, seed=i)
            lines.append(f"{rel} {i % 2}")
        (root / f"{split}.csv").write_text("\n".join(lines) + "\n")
    (root / "classes.txt").write_text("cut apart\npeel\n")
    return {}


def make_folder(root: Path) -> dict:
    """Folder-per-class layout, 5 videos per class, val every 5th."""
    for cls in ("jump", "run"):
        for i in range(5):
            write_video(root / cls / f"{cls}{i}.mkv", seed=i)
    return {}


def make_list(root: Path) -> dict:
    """ "<path> <label>" lists with paths containing spaces."""
    for split, n in (("train", 4), ("val", 2)):
        lines = []
        for i in range(n):
            rel = f"clips/{split} clip {i}.mp4"
            write_video(root / rel, seed=i)
            lines.append(f"{rel} {i % 3}")
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return {}


PRESETS = {
    "ucf101": (make_ucf101, 2, 4, 2),
    "hmdb51": (make_hmdb51, 2, 4, 2),
    "kinetics": (make_kinetics, 2, 4, 4),
    "ssv2": (make_ssv2, 2, 4, 2),
    "finegym": (make_finegym, 99, 4, 2),
    "mpii_cooking2": (make_mpii_cooking2, 2, 4, 2),
    "folder": (make_folder, 2, 8, 2),
    "list": (make_list, 3, 4, 2),
}


def test_every_registered_dataset_has_a_fake_layout_test() -> None:
    assert {d.name for d in list_datasets()} == set(PRESETS) | {"synth"}


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_loads_a_tiny_fake_directory(name: str, tmp_path: Path) -> None:
    make, classes, n_train, n_val = PRESETS[name]
    options = make(tmp_path)
    bundle = build_data(
        name, root=tmp_path, frames=3, sampling_rate=1, crop=16, seed=0, options=options
    )
    assert bundle.num_classes == classes
    assert (len(bundle.train), len(bundle.val)) == (n_train, n_val)
    video, label = bundle.train[0]
    assert video.shape == (3, 4, 16, 16)
    assert 0 <= label < classes
    assert bundle.test(1, 3)[0][0].shape == (3, 3, 4, 16, 16)
    assert bundle.train.skipped == 0


def test_preset_labels_follow_the_annotations(tmp_path: Path) -> None:
    make_ucf101(tmp_path / "ucf")
    ucf = build_data("ucf101", root=tmp_path / "ucf", frames=2, sampling_rate=1, crop=16, seed=0)
    assert ucf.class_names == ["ApplyLipstick", "Archery"]
    assert ucf.train.labels == [0, 0, 1, 1] and ucf.val.labels == [0, 1]
    make_ssv2(tmp_path / "ssv2")
    ssv2 = build_data("ssv2", root=tmp_path / "ssv2", frames=2, sampling_rate=1, crop=16, seed=0)
    assert ssv2.class_names == ["Holding something", "Pushing something from left to right"]
    assert ssv2.train.labels == [0, 1, 0, 1]
    assert ssv2.train.source.entries[0].path.endswith("20bn-something-something-v2/1.webm")
    make_finegym(tmp_path / "gym")
    gym = build_data("finegym", root=tmp_path / "gym", frames=2, sampling_rate=1, crop=16, seed=0)
    assert gym.class_names[:2] == [
        "(VT) round-off, flic-flac",
        "(VT) round-off, flic-flac with 0.5 turn",
    ]
    make_kinetics(tmp_path / "k")
    kin = build_data("kinetics", root=tmp_path / "k", frames=2, sampling_rate=1, crop=16, seed=0)
    assert kin.class_names == ["abseiling", "air drumming"] and kin.val.labels == [0, 1, 0, 1]


def test_missing_folder_names_the_path_and_the_layout(tmp_path: Path) -> None:
    make_ucf101(tmp_path)
    with pytest.raises(LayoutError, match=r"not found: .*UCF101.*\nExpected layout:\n.*UCF-101/"):
        build_data(
            "ucf101",
            root=tmp_path,
            frames=2,
            sampling_rate=1,
            crop=16,
            seed=0,
            options={"video_dir": "UCF101"},
        )
    with pytest.raises(FileNotFoundError, match=r"testlist02.txt\nExpected layout"):
        build_data(
            "ucf101",
            root=tmp_path,
            frames=2,
            sampling_rate=1,
            crop=16,
            seed=0,
            options={"split": 2},
        )


def test_missing_listed_videos_beyond_five_percent_is_an_error(tmp_path: Path) -> None:
    make_hmdb51(tmp_path)
    (tmp_path / "videos" / "cartwheel" / "cartwheel_clip0.avi").unlink()
    with pytest.raises(LayoutError, match=r"1 of 4 videos listed in .* are missing \(e\.g\. "):
        build_data(
            "hmdb51",
            root=tmp_path,
            frames=2,
            sampling_rate=1,
            crop=16,
            seed=0,
            options={"split": 2},
        )


@pytest.mark.parametrize(
    ("name", "corrupt", "match"),
    [
        (
            "list",
            ("train.txt", "clips/a.mp4 x\n"),
            r"train.txt:1: expected '<path> <label>' with a non-negative integer label, "
            r"got 'clips/a.mp4 x'",
        ),
        (
            "ucf101",
            ("ucfTrainTestlist/testlist01.txt", "Archery/v.avi\nBowling/v.avi\n"),
            r"testlist01.txt:2: expected '<Class>/<video>.avi \[label\]'",
        ),
        (
            "hmdb51",
            ("testTrainMulti_7030_splits/cartwheel_test_split2.txt", "a.avi 7\n"),
            r"cartwheel_test_split2.txt:1: expected '<video>.avi <0\|1\|2>', got 'a.avi 7'",
        ),
        (
            "kinetics",
            ("val.csv", "label,youtube_id\nx,y\n"),
            r"val.csv:1: expected a header with columns label,youtube_id,time_start,time_end",
        ),
        (
            "finegym",
            ("annotations/gym99_val_element.txt", "clip_a 1\nclip_b\n"),
            r"gym99_val_element.txt:2: expected '<clip_id> <label>', got 'clip_b'",
        ),
        (
            "ssv2",
            ("labels/something-something-v2-validation.json", '[{"id": "5"}]'),
            r"validation.json: entry 1: expected an 'id' and a 'template'",
        ),
    ],
)
def test_malformed_split_files_name_file_line_and_format(
    name: str, corrupt: tuple[str, str], match: str, tmp_path: Path
) -> None:
    options = PRESETS[name][0](tmp_path)
    (tmp_path / corrupt[0]).write_text(corrupt[1])
    with pytest.raises(ValueError, match=match):
        build_data(name, root=tmp_path, frames=2, sampling_rate=1, crop=16, seed=0, options=options)


def test_out_of_range_label_and_bad_split_option(tmp_path: Path) -> None:
    make_mpii_cooking2(tmp_path)
    (tmp_path / "val.csv").write_text("s0/val_0.avi 5\n")
    with pytest.raises(ValueError, match=r"val.csv: label 5 of .* out of range for 2 classes"):
        build_data("mpii_cooking2", root=tmp_path, frames=2, sampling_rate=1, crop=16, seed=0)
    with pytest.raises(ValueError, match=r"hmdb51 split must be 1, 2 or 3, got 4"):
        build_data(
            "hmdb51",
            root=tmp_path,
            frames=2,
            sampling_rate=1,
            crop=16,
            seed=0,
            options={"split": 4},
        )
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['splt'\] for dataset 'ucf101'"):
        build_data(
            "ucf101", root=tmp_path, frames=2, sampling_rate=1, crop=16, seed=0, options={"splt": 1}
        )


def test_folder_with_explicit_split_folders(tmp_path: Path) -> None:
    for split, n in (("train", 3), ("val", 1)):
        for cls in ("a", "b"):
            for i in range(n):
                write_video(tmp_path / split / cls / f"{i}.mp4", seed=i)
    bundle = build_data("folder", root=tmp_path, frames=2, sampling_rate=1, crop=16, seed=0)
    assert (len(bundle.train), len(bundle.val), bundle.class_names) == (6, 2, ["a", "b"])


def test_cli_list_datasets_shows_every_layout() -> None:
    result = runner.invoke(app, ["list", "datasets"])
    assert result.exit_code == 0, result.output
    for info in list_datasets():
        assert f"{info.name}: {info.description}" in result.output
    assert "testTrainMulti_7030_splits/<class>_test_split<N>.txt" in result.output
    assert "options: split (default 1)" in result.output
