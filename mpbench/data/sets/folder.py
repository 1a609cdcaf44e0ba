"""The folder dataset: its layout, reader, fake layout (for tests) and registration."""

from __future__ import annotations

from pathlib import Path

from mpbench.data.datasets import VideoEntry
from mpbench.data.readers import (
    DEFAULT_TEST_FRACTION,
    DEFAULT_VAL_FRACTION,
    LayoutError,
    Splits,
    carve_rule,
    carve_val,
    carved_splits,
    check_fraction,
    relative_key,
    require,
    video_files,
)
from mpbench.data.registry import register_dataset
from mpbench.data.sets._fake import write_video

FOLDER_LAYOUT = """\
  ROOT/<class>/<video>.mp4           one folder per class: test = test_fraction, then val =
                                     val_fraction of each class's videos (whole files, picked
                                     by a stable hash of the path below ROOT)
or
  ROOT/train/<class>/<video>.mp4     explicit splits, used as given when all three exist;
  ROOT/val/<class>/<video>.mp4       without test/, val/ is the test split; without test/ or
  ROOT/test/<class>/<video>.mp4      val/, val is carved from train/ (val_fraction of each
                                     class's videos, as above)"""


def _class_folder_entries(folder: Path, class_names: list[str]) -> list[VideoEntry]:
    """Videos of folder/<class>/ labelled by the class's index."""
    entries = []
    for label, name in enumerate(class_names):
        cls_dir = require(folder / name, FOLDER_LAYOUT, kind="class folder")
        entries += [VideoEntry(str(p), label) for p in video_files(cls_dir)]
    return entries


def read_folder(
    root: Path,
    *,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    test_fraction: float = DEFAULT_TEST_FRACTION,
) -> Splits:
    """Folder-per-class videos, with explicit split folders or carved test and val shares."""
    require(root, FOLDER_LAYOUT, kind="dataset root")
    check_fraction("val_fraction", val_fraction)
    check_fraction("test_fraction", test_fraction)
    if (root / "train").is_dir():
        return _read_split_folders(root, val_fraction=val_fraction)
    names = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not names:
        raise LayoutError(f"no class folders in {root}\nExpected layout:\n{FOLDER_LAYOUT}")
    key = relative_key(root)
    carve = {"group": key, "class_names": names, "source": root}
    rest, test = carve_val(
        _class_folder_entries(root, names), fraction=test_fraction, split="test", **carve
    )
    train, val = carve_val(rest, fraction=val_fraction, **carve)
    rule = f"test = {test_fraction:g} of each class's files, then " + carve_rule(
        val_fraction, "the rest", "one file"
    )
    return Splits(train=train, val=val, test=test, class_names=names, rule=rule)


def _read_split_folders(root: Path, *, val_fraction: float) -> Splits:
    """ROOT/train plus ROOT/val and/or ROOT/test (see FOLDER_LAYOUT)."""
    names = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
    given = {s: root / s for s in ("val", "test") if (root / s).is_dir()}
    if not given:
        raise LayoutError(
            f"neither {root / 'val'} nor {root / 'test'} found: explicit split folders need "
            f"train/ and val/ or test/\nExpected layout:\n{FOLDER_LAYOUT}"
        )
    train = _class_folder_entries(root / "train", names)
    lists = {s: _class_folder_entries(p, names) for s, p in given.items()}
    if len(lists) == 2:
        return Splits(
            train=train,
            val=lists["val"],
            test=lists["test"],
            class_names=names,
            rule="train/, val/ and test/ as given",
        )
    test_name = next(iter(lists))
    return carved_splits(
        train,
        lists[test_name],
        group=relative_key(root / "train"),
        fraction=val_fraction,
        class_names=names,
        source=root / "train",
        rule=(f"{test_name}/", "train/", "one file"),
    )


# --- a tiny copy of the layout with real videos (tests) --------------------------------------


def make_folder(root: Path) -> dict:
    """Folder-per-class layout, 5 videos per class: test and val carved from them."""
    for cls in ("jump", "run"):
        for i in range(5):
            write_video(root / cls / f"{cls}{i}.mkv", seed=i)
    return {}


register_dataset(
    "folder",
    description="any folder-per-class video collection",
    layout=FOLDER_LAYOUT,
    reader=read_folder,
    fake_layout=make_folder,
)
