"""The mpii_cooking2 dataset: its layout, reader, fake layout (for tests) and registration."""

from __future__ import annotations

import os
import re
from pathlib import Path

from mpbench.data.readers import (
    DEFAULT_VAL_FRACTION,
    GroupKey,
    Splits,
)
from mpbench.data.registry import register_dataset
from mpbench.data.sets._fake import write_video
from mpbench.data.sets.lists import read_lists

MPII_LAYOUT = """\
  ROOT/train.csv      "<path> <label>" per line (space-separated, no header), path relative to
  ROOT/val.csv        ROOT/videos: the TimeSformer-style split CSVs of the reference code
  ROOT/test.csv
  ROOT/classes.txt    optional: one class name per line in label order
  ROOT/videos/...     the clips cut from the MPII Cooking 2 videos
(all three lists are used as given; without test.csv, val.csv is the test split and val is
carved from train.csv; without val.csv, val is carved from train.csv: val_fraction of each
class's groups, a group being the subject (sNN of a recording name sNN-dNN in the path), else
the clip's folder, else the clip; whole groups, picked by a stable hash of the group)"""

_MPII_SUBJECT = re.compile(r"(?:^|[^A-Za-z0-9])s(\d+)-d\d+")


def mpii_group(video_dir: Path) -> GroupKey:
    """Group key of an MPII Cooking 2 clip: its subject, else its folder, else its path."""

    def key(path: str) -> str:
        rel = Path(os.path.relpath(path, video_dir))
        m = _MPII_SUBJECT.search(rel.as_posix())
        if m is not None:
            return f"s{int(m[1]):02d}"
        return (rel.parent if rel.parent != Path(".") else rel).as_posix()

    return key


def read_mpii_cooking2(
    root: Path,
    *,
    video_dir: str = "videos",
    split: str = "",
    val_fraction: float = DEFAULT_VAL_FRACTION,
) -> Splits:
    """MPII Cooking 2 clips from the reference code's "<path> <label>" split CSVs.

    ``split`` is an optional file-name prefix (``split="s1_"`` reads s1_train.csv, ...).
    """
    return read_lists(
        root,
        files={s: f"{split}{s}.csv" for s in ("train", "val", "test")},
        classes="classes.txt",
        video_dir=video_dir,
        layout=MPII_LAYOUT,
        val_fraction=val_fraction,
        group=(mpii_group(root / video_dir), "subject, else folder"),
    )


# --- a tiny copy of the layout with real videos (tests) --------------------------------------

MPII_CLIPS = {  # split -> (recording, label); subject s08 holds clips of both classes
    "train": [("s08-d02", 0), ("s08-d03", 0), ("s10-d02", 0), ("s12-d05", 1), ("s08-d05", 1)],
    "test": [("s13-d02", 0), ("s13-d05", 1)],
}


def make_mpii_cooking2(root: Path) -> dict:
    """MPII Cooking 2 layout: train.csv and test.csv (no val.csv), clips under videos/."""
    for split, clips in MPII_CLIPS.items():
        lines = []
        for i, (recording, label) in enumerate(clips):
            rel = f"{recording}-cam-002/clip_{i:04d}.avi"
            write_video(root / "videos" / rel, seed=i)
            lines.append(f"{rel} {label}")
        (root / f"{split}.csv").write_text("\n".join(lines) + "\n")
    (root / "classes.txt").write_text("cut apart\npeel\n")
    return {}


register_dataset(
    "mpii_cooking2",
    description="MPII Cooking 2 clips from the reference code's split CSVs",
    layout=MPII_LAYOUT,
    reader=read_mpii_cooking2,
    fake_layout=make_mpii_cooking2,
)
