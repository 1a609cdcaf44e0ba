"""The ucf101 dataset: its layout, reader, fake layout (for tests) and registration."""

from __future__ import annotations

import re
from pathlib import Path

from mpbench.data.datasets import VideoEntry
from mpbench.data.readers import (
    DEFAULT_VAL_FRACTION,
    GroupKey,
    Splits,
    carved_splits,
    pattern_group,
    read_class_names,
    read_entries,
    require,
)
from mpbench.data.registry import register_dataset
from mpbench.data.sets._fake import write_video

UCF101_LAYOUT = """\
  ROOT/UCF-101/<Class>/v_<Class>_gXX_cYY.avi
  ROOT/ucfTrainTestlist/classInd.txt          "<1-based index> <Class>"
  ROOT/ucfTrainTestlist/trainlist0N.txt       "<Class>/<video>.avi <1-based index>"
  ROOT/ucfTrainTestlist/testlist0N.txt        "<Class>/<video>.avi"
(option split=1|2|3; test = testlist0N; val = val_fraction of each class's groups gXX of
trainlist0N, whole groups so that one actor's clips never straddle train and val, picked by a
stable hash of <Class>_gXX)"""

_UCF_NAME = re.compile(r"^v_(?P<cls>.+)_g(?P<g>\d+)_c\d+$")


def _ucf_group(source: Path) -> GroupKey:
    """Group key <Class>_gXX of a UCF-101 file name (ValueError naming ``source`` if none)."""
    return pattern_group(
        source,
        _UCF_NAME,
        build=lambda m: f"{m['cls']}_g{m['g']}",
        error="{name} does not match v_<Class>_gXX_cYY.avi; the val split is carved by group gXX",
    )


def read_ucf101(
    root: Path,
    *,
    split: int = 1,
    video_dir: str = "UCF-101",
    list_dir: str = "ucfTrainTestlist",
    val_fraction: float = DEFAULT_VAL_FRACTION,
) -> Splits:
    """UCF-101 with the official three train/test splits and a val split carved by group."""
    if split not in (1, 2, 3):
        raise ValueError(f"ucf101 split must be 1, 2 or 3, got {split!r}")
    lists = require(root / list_dir, UCF101_LAYOUT)
    vdir = require(root / video_dir, UCF101_LAYOUT)
    class_file = require(lists / "classInd.txt", UCF101_LAYOUT)
    names = read_class_names(class_file)
    label_of = {n: i for i, n in enumerate(names)}

    def entry(line: str) -> VideoEntry | None:
        rel = line.split()[0]
        cls = rel.split("/")[0]
        ok = "/" in rel and cls in label_of
        return VideoEntry(str(vdir / rel), label_of[cls]) if ok else None

    def read(name: str) -> list[VideoEntry]:
        expected = f"'<Class>/<video>.avi [label]' with a class of {class_file.name}"
        return read_entries(lists / name, entry, expected=expected, layout=UCF101_LAYOUT)

    train_list, test_list = f"trainlist0{split}.txt", f"testlist0{split}.txt"
    test = read(test_list)
    return carved_splits(
        read(train_list),
        test,
        group=_ucf_group(lists / train_list),
        fraction=val_fraction,
        class_names=names,
        source=lists / train_list,
        rule=(test_list, train_list, "<Class>_gXX"),
    )


# --- a tiny copy of the layout with real videos (tests) --------------------------------------


def make_ucf101(root: Path) -> dict:
    """UCF-101 layout with 2 classes, split 1: train groups g08-g10 (g08 has 2 clips), test g01."""
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_text("1 ApplyLipstick\n2 Archery\n")
    train, test = [], []
    for c, cls in enumerate(["ApplyLipstick", "Archery"]):
        for g, clip in (("01", 1), ("08", 1), ("08", 2), ("09", 1), ("10", 1)):
            rel = f"{cls}/v_{cls}_g{g}_c0{clip}.avi"
            write_video(root / "UCF-101" / rel, seed=int(g) + clip + 3 * c)
            if g == "01":
                test.append(rel)
            else:
                train.append(f"{rel} {c + 1}")
    (lists / "trainlist01.txt").write_text("\n".join(train) + "\n")
    (lists / "testlist01.txt").write_text("\n".join(test) + "\n")
    return {"split": 1}


register_dataset(
    "ucf101",
    description="UCF-101, official splits 1-3",
    layout=UCF101_LAYOUT,
    reader=read_ucf101,
    fake_layout=make_ucf101,
)
