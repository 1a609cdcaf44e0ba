"""Every dataset preset on a tiny fake directory in its documented layout, and its errors."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mpbench.cli import app
from mpbench.data import DATASETS, build_data, list_datasets
from mpbench.data.datasets import VideoEntry
from mpbench.data.readers import LayoutError, Splits, carve_val, stable_hash
from mpbench.data.sets._fake import write_video
from mpbench.data.sets.finegym import make_finegym
from mpbench.data.sets.folder import read_folder
from mpbench.data.sets.hmdb51 import hmdb_source_video, make_hmdb51
from mpbench.data.sets.kinetics import KINETICS_ROWS, make_kinetics, read_kinetics
from mpbench.data.sets.lists import make_list, read_list
from mpbench.data.sets.mpii_cooking2 import make_mpii_cooking2
from mpbench.data.sets.ssv2 import make_ssv2, read_ssv2
from mpbench.data.sets.ucf101 import make_ucf101, read_ucf101

runner = CliRunner()


# name -> (classes, train + val videos, test videos) of the fake layout its module writes
COUNTS = {
    "ucf101": (2, 8, 2),
    "hmdb51": (2, 5, 2),
    "kinetics": (2, 5, 2),
    "ssv2": (2, 4, 2),
    "finegym": (99, 5, 2),
    "mpii_cooking2": (2, 5, 2),
    "folder": (2, 8, 2),
    "list": (3, 8, 2),
}
# name -> (the fake layout writer of its registration, and its counts)
PRESETS = {d.name: (d.fake_layout, *COUNTS[d.name]) for d in list_datasets() if d.fake_layout}
# name -> the group of a video path, written independently of the readers: no group of a carved
# val split may also be in train
GROUP_OF = {
    "ucf101": lambda p: re.search(r"v_(.+_g\d+)_c\d+\.avi$", p)[1],
    "hmdb51": lambda p: re.match(r"(.+?)_(brush_hair|cartwheel)_", Path(p).name)[1],
    "kinetics": lambda p: Path(p).stem[:11],
    "ssv2": lambda p: Path(p).stem,
    "finegym": lambda p: Path(p).stem[:11],
    "mpii_cooking2": lambda p: re.search(r"/(s\d+)-d", p)[1],
    "folder": lambda p: p,
    "list": lambda p: p,
}


def test_every_registered_dataset_has_a_fake_layout_test() -> None:
    assert {d.name for d in list_datasets()} == set(PRESETS) | {"synth"}


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_loads_a_tiny_fake_directory(name: str, tmp_path: Path) -> None:
    make, classes, n_fit, n_test = PRESETS[name]
    options = make(tmp_path)
    bundle = build_data(
        name, root=tmp_path, frames=3, sampling_rate=1, crop=16, seed=0, options=options
    )
    assert bundle.num_classes == classes
    assert len(bundle.train) + len(bundle.val) == n_fit and len(bundle.val) >= 1
    assert len(bundle.test(1, 1)) == bundle.info["num_test"] == n_test
    video, label = bundle.train[0]
    assert video.shape == (3, 4, 16, 16)
    assert 0 <= label < classes
    assert bundle.test(1, 3)[0][0].shape == (3, 3, 4, 16, 16)
    assert bundle.train.skipped == 0


def _paths(splits: Splits, root: Path | None = None) -> dict[str, set[str]]:
    """The video paths of each split (relative to ``root`` when given)."""
    rel = (lambda p: str(Path(p).relative_to(root))) if root else str
    return {s: {rel(e.path) for e in getattr(splits, s)} for s in ("train", "val", "test")}


@pytest.mark.parametrize("name", list(PRESETS))
def test_splits_are_disjoint_deterministic_and_keep_groups_whole(name: str, tmp_path: Path) -> None:
    options = PRESETS[name][0](tmp_path / "a")
    reader = DATASETS.get(name).reader
    splits = reader(tmp_path / "a", **options)
    paths = _paths(splits)
    assert not paths["train"] & paths["val"]
    assert not paths["train"] & paths["test"]
    assert not paths["val"] & paths["test"]
    assert paths["val"] and paths["test"]
    groups = {s: {GROUP_OF[name](p) for p in paths[s]} for s in ("train", "val")}
    assert not groups["train"] & groups["val"], splits.rule
    if "as given" not in splits.rule:  # carved: every class keeps training clips and has val
        assert {e.label for e in splits.val} == {e.label for e in splits.train}
    assert reader(tmp_path / "a", **options) == splits
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    moved = reader(tmp_path / "b", **options)
    assert _paths(moved, tmp_path / "b") == _paths(splits, tmp_path / "a")


def test_preset_labels_follow_the_annotations(tmp_path: Path) -> None:
    make_ucf101(tmp_path / "ucf")
    ucf = build_data("ucf101", root=tmp_path / "ucf", frames=2, sampling_rate=1, crop=16, seed=0)
    assert ucf.class_names == ["ApplyLipstick", "Archery"]
    assert sorted(ucf.train.labels + ucf.val.labels) == [0, 0, 0, 0, 1, 1, 1, 1]
    assert ucf.test(1, 1).labels == [0, 1]
    assert ucf.info["splits"].startswith("test = testlist01.txt; val = 0.1 of each class's")
    make_ssv2(tmp_path / "ssv2")
    ssv2 = build_data("ssv2", root=tmp_path / "ssv2", frames=2, sampling_rate=1, crop=16, seed=0)
    assert ssv2.class_names == ["Holding something", "Pushing something from left to right"]
    assert sorted(ssv2.train.labels) == sorted(ssv2.val.labels) == [0, 1]
    assert [e.path[-6:] for e in ssv2.test(1, 1).source.entries] == ["5.webm", "6.webm"]
    assert ssv2.train.source.entries[0].path.endswith("20bn-something-something-v2/1.webm")
    make_finegym(tmp_path / "gym")
    gym = build_data("finegym", root=tmp_path / "gym", frames=2, sampling_rate=1, crop=16, seed=0)
    assert gym.class_names[:2] == [
        "(VT) round-off, flic-flac",
        "(VT) round-off, flic-flac with 0.5 turn",
    ]
    make_kinetics(tmp_path / "k")
    kin = build_data("kinetics", root=tmp_path / "k", frames=2, sampling_rate=1, crop=16, seed=0)
    assert kin.class_names == ["abseiling", "air drumming"] and kin.test(1, 1).labels == [0, 1]
    assert kin.info["splits"].startswith("test = val.csv; val = 0.1 of each class's groups")


def test_carve_is_a_pure_function_of_the_file_list() -> None:
    entries = [
        VideoEntry(f"v_C{c}_g{g:02d}_c{k}.avi", c)
        for c in range(2)
        for g in range(8, 13)
        for k in (1, 2)
    ]

    def group(path: str) -> str:
        return path[2:8]

    held = {}
    for fraction in (0.1, 0.5):
        kept, val = carve_val(
            entries, group=group, fraction=fraction, class_names=["a", "b"], source="x.txt"
        )
        assert len(kept) + len(val) == len(entries)
        held[fraction] = sorted({group(e.path) for e in val})
    # pinned: a stable hash (sha256) of the group key orders the groups in every process
    assert held[0.1] == ["C0_g09", "C1_g09"]
    assert held[0.5] == ["C0_g09", "C0_g11", "C1_g09", "C1_g11"]
    assert stable_hash("abc") == 13436514500253700074


def test_a_class_with_one_group_cannot_be_carved(tmp_path: Path) -> None:
    make_ucf101(tmp_path)
    trainlist = tmp_path / "ucfTrainTestlist" / "trainlist01.txt"
    lines = trainlist.read_text().splitlines()
    trainlist.write_text("\n".join(x for x in lines if "Archery_g08" in x or "Lip" in x) + "\n")
    with pytest.raises(
        ValueError,
        match=r"trainlist01.txt: class 'Archery' has its clips in 1 group \('Archery_g08'\); "
        r"carving a val split needs at least 2 groups per class \(one stays in training",
    ):
        build_data("ucf101", root=tmp_path, frames=2, sampling_rate=1, crop=16, seed=0)


def test_groups_shared_by_classes_that_block_every_val_pick_are_an_error() -> None:
    # class 0 in groups A, B; class 1 in A, C; class 2 in B, C: holding any group out leaves a
    # class with a single training group, so one class cannot get val clips
    entries = [VideoEntry(f"{g}/{c}.mp4", c) for c, gs in enumerate(["AB", "AC", "BC"]) for g in gs]
    with pytest.raises(ValueError, match=r"list.txt: no val clips could be carved for class 'c"):
        carve_val(
            entries,
            group=lambda p: p[0],
            fraction=0.5,
            class_names=["c0", "c1", "c2"],
            source="list.txt",
        )


def test_splits_refuse_shared_videos() -> None:
    a, b = VideoEntry("a.mp4", 0), VideoEntry("b.mp4", 0)
    with pytest.raises(
        ValueError,
        match=r"the val and test splits share 1 video file\(s\), e.g. b.mp4; train, val and "
        r"test must be disjoint",
    ):
        Splits(train=[a], val=[b], test=[b], class_names=["x"])
    with pytest.raises(TypeError):
        Splits(train=[a], val=[b], class_names=["x"])  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (
            0.0,
            r"val_fraction must be in \(0, 0.5\] \(the share of each class's training groups "
            r"held out\), got 0.0",
        ),
        (0.8, r"val_fraction must be in \(0, 0.5\]"),
        ("0.1", r"val_fraction must be a number in \(0, 0.5\], got '0.1'"),
    ],
)
def test_val_fraction_is_validated(value: object, match: str, tmp_path: Path) -> None:
    make_list(tmp_path, splits=("train", "val"))
    with pytest.raises(ValueError, match=match):
        build_data(
            "list",
            root=tmp_path,
            frames=2,
            sampling_rate=1,
            crop=16,
            seed=0,
            options={"val_fraction": value},
        )


def test_val_fraction_sets_the_share_of_held_out_groups(tmp_path: Path) -> None:
    make_ucf101(tmp_path)
    small = read_ucf101(tmp_path, val_fraction=0.1)
    large = read_ucf101(tmp_path, val_fraction=0.5)
    assert [len({GROUP_OF["ucf101"](e.path) for e in s.val}) for s in (small, large)] == [2, 4]
    assert small.test == large.test


def test_list_without_test_or_val_file(tmp_path: Path) -> None:
    make_list(tmp_path / "tv", splits=("train", "val"))
    splits = read_list(tmp_path / "tv")
    assert [Path(e.path).name for e in splits.test] == ["val clip 0.mp4", "val clip 1.mp4"]
    assert {Path(e.path).name[:5] for e in splits.val} == {"train"} and len(splits.val) == 3
    assert splits.rule.startswith("test = val.txt; val = 0.1 of each class's groups of train.txt")
    make_list(tmp_path / "tt", splits=("train", "test"))
    splits = read_list(tmp_path / "tt")
    assert [Path(e.path).name for e in splits.test] == ["test clip 0.mp4", "test clip 1.mp4"]
    assert len(splits.train) == len(splits.val) == 3
    make_list(tmp_path / "t", splits=("train",))
    with pytest.raises(LayoutError, match=r"neither .*val.txt nor .*test.txt found: a val or a"):
        read_list(tmp_path / "t")


def test_folder_split_folders_without_test(tmp_path: Path) -> None:
    for split, n in (("train", 2), ("val", 1)):
        for cls in ("a", "b"):
            for i in range(n):
                write_video(tmp_path / split / cls / f"{i}.mp4", seed=i)
    splits = read_folder(tmp_path)
    assert [Path(e.path).parent.parent.name for e in splits.test] == ["val", "val"]
    assert (len(splits.train), len(splits.val)) == (2, 2)
    assert splits.rule.startswith("test = val/; val = 0.1 of each class's groups of train/")


def test_kinetics_and_ssv2_use_a_labelled_test_when_present(tmp_path: Path) -> None:
    rows = {**KINETICS_ROWS, "test": [("abseiling", "testG000006", 0)]}
    make_kinetics(tmp_path / "k", rows)
    given = read_kinetics(tmp_path / "k")
    assert given.rule == "train, val, test = train.csv, val.csv, test.csv as given"
    assert [e.label for e in given.val] == [0, 1] and len(given.train) == 5
    (tmp_path / "k" / "test.csv").write_text("youtube_id,time_start,time_end,split\n")
    assert read_kinetics(tmp_path / "k").rule.startswith("test = val.csv; val = ")
    make_ssv2(tmp_path / "s")
    (tmp_path / "s/labels/something-something-v2-test.json").write_text(
        json.dumps([{"id": "7", "template": "Holding [something]"}])
    )
    write_video(tmp_path / "s/20bn-something-something-v2/7.webm")
    ssv2 = read_ssv2(tmp_path / "s")
    assert (len(ssv2.train), len(ssv2.val), len(ssv2.test)) == (4, 2, 1)
    assert ssv2.rule.endswith("as given")


def test_hmdb_source_video_is_the_title_before_the_class() -> None:
    assert hmdb_source_video("v/brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0.avi") == "April_09"
    assert hmdb_source_video("v/kiss/Kiss_me_kiss_h_cm_np2_le_goo_3.avi") == "Kiss_me"
    assert hmdb_source_video("v/run/odd_name_2.avi") == "odd_name"


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
    (tmp_path / "videos" / "cartwheel" / "Gym_x_cartwheel_u_nm_np1_fr_goo_0.avi").unlink()
    with pytest.raises(LayoutError, match=r"1 of 5 videos listed in .* are missing \(e\.g\. "):
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
    (tmp_path / "test.csv").write_text("s13-d02-cam-002/clip_0000.avi 5\n")
    with pytest.raises(ValueError, match=r"test.csv: label 5 of .* out of range for 2 classes"):
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
    for split, n in (("train", 3), ("val", 1), ("test", 1)):
        for cls in ("a", "b"):
            for i in range(n):
                write_video(tmp_path / split / cls / f"{i}.mp4", seed=i)
    bundle = build_data("folder", root=tmp_path, frames=2, sampling_rate=1, crop=16, seed=0)
    assert (len(bundle.train), len(bundle.val), bundle.class_names) == (6, 2, ["a", "b"])
    assert (
        bundle.info["num_test"] == 2 and bundle.info["splits"] == "train/, val/ and test/ as given"
    )


def test_cli_list_datasets_shows_every_layout() -> None:
    result = runner.invoke(app, ["list", "datasets"])
    assert result.exit_code == 0, result.output
    for info in list_datasets():
        assert f"{info.name}: {info.description}" in result.output
    assert "testTrainMulti_7030_splits/<class>_test_split<N>.txt" in result.output
    assert "options: split (default 1)" in result.output
