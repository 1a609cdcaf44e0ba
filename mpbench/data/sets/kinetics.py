"""The kinetics dataset: its layout, reader, fake layout (for tests) and registration."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from mpbench.data.datasets import VideoEntry
from mpbench.data.readers import (
    DEFAULT_VAL_FRACTION,
    Splits,
    bad_line,
    carved_splits,
    check_fraction,
    index_videos,
    keep_existing,
    require,
)
from mpbench.data.registry import register_dataset
from mpbench.data.sets._fake import write_video

KINETICS_LAYOUT = """\
  ROOT/train.csv   header "label,youtube_id,time_start,time_end,split" (extra columns ignored)
  ROOT/val.csv
  ROOT/test.csv    optional: used only when every row has a label and ROOT/test/ exists
  ROOT/train/[<label>/]<youtube_id>_<start:06d>_<end:06d>.mp4   (flat or one folder per class)
  ROOT/val/[<label>/]<youtube_id>_<start:06d>_<end:06d>.mp4     (and ROOT/test/ alike)
(classes = the sorted labels of train.csv; with a labelled test: train, val and test as given;
otherwise test = val.csv and val = val_fraction of each class's YouTube videos of train.csv,
whole videos, picked by a stable hash of the youtube_id; videos missing on disk are skipped
with a warning, more than 5% missing is an error)"""

_KINETICS_COLUMNS = ("label", "youtube_id", "time_start", "time_end")


def _read_kinetics_csv(path: Path, videos: dict[str, str]) -> list[tuple[str, str]]:
    """(label, video path or '') per row of a Kinetics CSV."""
    rows = []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in _KINETICS_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(
                f"{path}:1: expected a header with columns "
                f"{','.join(_KINETICS_COLUMNS)}, got {reader.fieldnames}"
            )
        for number, row in enumerate(reader, start=2):
            try:
                stem = (
                    f"{row['youtube_id']}_{int(float(row['time_start'])):06d}_"
                    f"{int(float(row['time_end'])):06d}"
                )
            except (TypeError, ValueError):
                raise bad_line(
                    path,
                    number,
                    "numeric time_start and time_end",
                    ",".join(str(v) for v in row.values()),
                ) from None
            rows.append((row["label"], videos.get(stem, "")))
    return rows


def _kinetics_test_is_labelled(path: Path, video_dir: Path) -> bool:
    """Whether a Kinetics test CSV exists with a label in every row and its videos folder."""
    if not (path.is_file() and video_dir.is_dir()):
        return False
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if "label" not in (reader.fieldnames or []):
            return False
        return all((row.get("label") or "").strip() for row in reader)


def kinetics_youtube_id(path: str) -> str:
    """The YouTube id of a clip file <youtube_id>_<start>_<end>.mp4."""
    return re.sub(r"_\d+_\d+$", "", Path(path).stem)


def read_kinetics(
    root: Path,
    *,
    train_csv: str = "train.csv",
    val_csv: str = "val.csv",
    test_csv: str = "test.csv",
    train_dir: str = "train",
    val_dir: str = "val",
    test_dir: str = "test",
    val_fraction: float = DEFAULT_VAL_FRACTION,
) -> Splits:
    """Kinetics-400/600/700 from the official CSVs and downloaded clips."""
    check_fraction("val_fraction", val_fraction)
    parts = {"train": (train_csv, train_dir), "val": (val_csv, val_dir)}
    labelled_test = _kinetics_test_is_labelled(root / test_csv, root / test_dir)
    if labelled_test:
        parts["test"] = (test_csv, test_dir)
    tables = {}
    for split, (csv_name, dir_name) in parts.items():
        videos = index_videos(require(root / dir_name, KINETICS_LAYOUT))
        path = require(root / csv_name, KINETICS_LAYOUT)
        tables[split] = (path, _read_kinetics_csv(path, videos))
    names = sorted({label for label, _ in tables["train"][1]})
    label_of = {n: i for i, n in enumerate(names)}
    splits = {}
    for split, (path, rows) in tables.items():
        unknown = sorted({lab for lab, _ in rows} - set(label_of))
        if unknown:
            raise ValueError(f"{path}: labels {unknown[:3]} do not occur in {train_csv}")
        entries = [
            VideoEntry(p or f"{path}:missing-{i}", label_of[lab]) for i, (lab, p) in enumerate(rows)
        ]
        splits[split] = keep_existing(entries, source=path, layout=KINETICS_LAYOUT)
    if labelled_test:
        rule = f"train, val, test = {train_csv}, {val_csv}, {test_csv} as given"
        return Splits(class_names=names, rule=rule, **splits)
    return carved_splits(
        splits["train"],
        splits["val"],
        group=kinetics_youtube_id,
        fraction=val_fraction,
        class_names=names,
        source=root / train_csv,
        rule=(val_csv, train_csv, "YouTube video"),
    )


# --- a tiny copy of the layout with real videos (tests) --------------------------------------

KINETICS_ROWS = {  # split -> (label, youtube id, start); -a_b-x9_Q1z gives two train clips
    "train": [
        ("abseiling", "-a_b-x9_Q1z", 0),
        ("abseiling", "-a_b-x9_Q1z", 30),
        ("abseiling", "trainB00001", 0),
        ("air drumming", "trainC00002", 10),
        ("air drumming", "trainD00003", 20),
    ],
    "val": [("abseiling", "valE0000004", 0), ("air drumming", "valF0000005", 10)],
}


def make_kinetics(root: Path, rows: dict | None = None) -> dict:
    """Kinetics layout: CSVs and <youtube_id>_<start>_<end>.mp4 clips (flat and per class)."""
    header = "label,youtube_id,time_start,time_end,split\n"
    for split, split_rows in (rows or KINETICS_ROWS).items():
        lines = []
        for i, (label, yid, start) in enumerate(split_rows):
            lines.append(f'"{label}",{yid},{start},{start + 10},{split}\n')
            sub = f"{label}/" if split == "train" else ""
            write_video(root / split / f"{sub}{yid}_{start:06d}_{start + 10:06d}.mp4", seed=i)
        (root / f"{split}.csv").write_text(header + "".join(lines))
    return {}


register_dataset(
    "kinetics",
    description="Kinetics-400/600/700 from the official CSVs",
    layout=KINETICS_LAYOUT,
    reader=read_kinetics,
    fake_layout=make_kinetics,
)
