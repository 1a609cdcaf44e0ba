"""Readers that turn a dataset directory into labelled video lists (train, val, test).

Each reader checks the layout it documents: a missing file or folder is a FileNotFoundError that
names the path and shows the expected layout, and a malformed line of a split file is a
ValueError naming the file, the line number and the expected format. Videos listed in a split
file but absent on disk are dropped with a warning; more than 5% absent is an error (usually a
wrong root or video folder).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mpbench.data.datasets import VideoEntry
from mpbench.data.video import VIDEO_EXTENSIONS

log = logging.getLogger(__name__)

MAX_MISSING_FRACTION = 0.05


@dataclass
class Splits:
    """Labelled videos of each split; ``test`` falls back to ``val`` when a dataset has none."""

    train: list[VideoEntry]
    val: list[VideoEntry]
    class_names: list[str]
    test: list[VideoEntry] | None = None


class LayoutError(FileNotFoundError):
    """A dataset file or folder is missing; the message shows the expected layout."""


def require(path: Path, layout: str, *, kind: str = "file or folder") -> Path:
    """``path`` if it exists, else a LayoutError naming it and the expected layout."""
    if not path.exists():
        raise LayoutError(f"{kind} not found: {path}\nExpected layout:\n{layout}")
    return path


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, stripped line) of the non-blank, non-comment lines of a text file."""
    with path.open(encoding="utf-8") as fh:
        for number, raw in enumerate(fh, start=1):
            line = raw.strip()
            if line and not line.startswith("#"):
                yield number, line


def bad_line(path: Path, number: int, expected: str, line: str) -> ValueError:
    """The error for a malformed line: file, line number, expected format, the line."""
    return ValueError(f"{path}:{number}: expected {expected}, got {line!r}")


def read_path_label_list(path: Path, *, video_dir: Path) -> list[VideoEntry]:
    """Read a "<path> <label>" list (PySlowFast/TimeSformer format); paths relative to video_dir.

    The label is the last whitespace-separated field, so paths may contain spaces.
    """
    entries = []
    for number, line in _lines(path):
        parts = line.rsplit(None, 1)
        if len(parts) != 2 or not parts[1].isdigit():
            raise bad_line(path, number, "'<path> <label>' with a non-negative integer label", line)
        entries.append(VideoEntry(str(video_dir / parts[0]), int(parts[1])))
    return entries


def read_class_names(path: Path) -> list[str]:
    """One class name per line, in label order (an optional leading "<index> " is dropped)."""
    names = []
    for number, line in _lines(path):
        parts = line.split(None, 1)
        if parts[0].isdigit() and len(parts) == 2:
            if int(parts[0]) not in (len(names), len(names) + 1):  # 0- or 1-based
                raise bad_line(path, number, f"class index {len(names)} or {len(names) + 1}", line)
            names.append(parts[1])
        else:
            names.append(line)
    return names


def keep_existing(entries: list[VideoEntry], *, source: Path, layout: str) -> list[VideoEntry]:
    """Drop listed videos missing on disk (warning); more than 5% missing is a LayoutError."""
    present = [e for e in entries if os.path.exists(e.path)]
    missing = len(entries) - len(present)
    if missing > MAX_MISSING_FRACTION * len(entries):
        example = next(e.path for e in entries if not os.path.exists(e.path))
        raise LayoutError(
            f"{missing} of {len(entries)} videos listed in {source} are missing (e.g. {example})"
            f"\nExpected layout:\n{layout}"
        )
    if missing:
        log.warning(
            "%d of %d videos listed in %s are missing; skipped", missing, len(entries), source
        )
    return present


def check_labels(entries: list[VideoEntry], num_classes: int, *, source: Path) -> None:
    """Every label must index a class."""
    bad = [e for e in entries if e.label >= num_classes]
    if bad:
        raise ValueError(
            f"{source}: label {bad[0].label} of {bad[0].path} is out of range for "
            f"{num_classes} classes"
        )


def video_files(folder: Path) -> list[Path]:
    """Video files directly inside ``folder``, sorted."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS)


def index_videos(folder: Path) -> dict[str, str]:
    """Map file stem -> path of every video under ``folder`` (recursively)."""
    found = {}
    for dirpath, _, names in os.walk(folder):
        for name in names:
            stem, ext = os.path.splitext(name)
            if ext.lower() in VIDEO_EXTENSIONS:
                found[stem] = os.path.join(dirpath, name)
    return found


# ----------------------------------------------------------------------------------------------
# Generic readers

FOLDER_LAYOUT = """\
  ROOT/<class>/<video>.mp4           one folder per class; val = every 1/val_fraction-th video
or
  ROOT/train/<class>/<video>.mp4     explicit splits (test/ is optional: val is used)
  ROOT/val/<class>/<video>.mp4
  ROOT/test/<class>/<video>.mp4"""


def _class_folder_entries(folder: Path, class_names: list[str]) -> list[VideoEntry]:
    """Videos of folder/<class>/ labelled by the class's index."""
    entries = []
    for label, name in enumerate(class_names):
        cls_dir = require(folder / name, FOLDER_LAYOUT, kind="class folder")
        entries += [VideoEntry(str(p), label) for p in video_files(cls_dir)]
    return entries


def _every_kth(entries: list[VideoEntry], fraction: float) -> list[VideoEntry]:
    """An evenly spread ``fraction`` of ``entries`` (deterministic: no RNG)."""
    return [e for i, e in enumerate(entries) if int((i + 1) * fraction) > int(i * fraction)]


def read_folder(root: Path, *, val_fraction: float = 0.2) -> Splits:
    """Folder-per-class videos, with explicit split folders or a deterministic val share."""
    require(root, FOLDER_LAYOUT, kind="dataset root")
    if (root / "train").is_dir():
        names = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
        test_dir = root / "test"
        return Splits(
            train=_class_folder_entries(root / "train", names),
            val=_class_folder_entries(require(root / "val", FOLDER_LAYOUT), names),
            test=_class_folder_entries(test_dir, names) if test_dir.is_dir() else None,
            class_names=names,
        )
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    names = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not names:
        raise LayoutError(f"no class folders in {root}\nExpected layout:\n{FOLDER_LAYOUT}")
    train = _class_folder_entries(root, names)
    val = [
        e
        for label in range(len(names))
        for e in _every_kth([x for x in train if x.label == label], val_fraction)
    ]
    held = {e.path for e in val}
    return Splits(train=[e for e in train if e.path not in held], val=val, class_names=names)


LIST_LAYOUT = """\
  ROOT/train.txt        "<path> <label>" per line, path relative to ROOT/<video_dir>
  ROOT/val.txt          (same format)
  ROOT/test.txt         optional (val is used when absent)
  ROOT/classes.txt      optional: one class name per line in label order
  ROOT/<video_dir>/...  the videos (video_dir defaults to ROOT itself)"""


def read_list(
    root: Path,
    *,
    train: str = "train.txt",
    val: str = "val.txt",
    test: str = "test.txt",
    classes: str = "classes.txt",
    video_dir: str = ".",
) -> Splits:
    """ "<path> <label>" split lists (the PySlowFast / reference-code format)."""
    return _read_lists(
        root,
        train=train,
        val=val,
        test=test,
        classes=classes,
        video_dir=video_dir,
        layout=LIST_LAYOUT,
    )


def _read_lists(
    root: Path, *, train: str, val: str, test: str, classes: str, video_dir: str, layout: str
) -> Splits:
    """:func:`read_list` with the layout text of the calling preset."""
    require(root, layout, kind="dataset root")
    vdir = root / video_dir
    lists, files = {}, {"train": train, "val": val, "test": test}
    for split, name in files.items():
        path = root / name
        if split != "test" or path.exists():
            entries = read_path_label_list(
                require(path, layout, kind=f"{split} list"), video_dir=vdir
            )
            lists[split] = keep_existing(entries, source=path, layout=layout)
    class_file = root / classes
    if class_file.exists():
        names = read_class_names(class_file)
    else:
        top = max((e.label for v in lists.values() for e in v), default=-1)
        names = [f"class_{i}" for i in range(top + 1)]
    for split, entries in lists.items():
        check_labels(entries, len(names), source=root / files[split])
    return Splits(lists["train"], lists["val"], names, lists.get("test"))


# ----------------------------------------------------------------------------------------------
# Presets

UCF101_LAYOUT = """\
  ROOT/UCF-101/<Class>/v_<Class>_gXX_cYY.avi
  ROOT/ucfTrainTestlist/classInd.txt          "<1-based index> <Class>"
  ROOT/ucfTrainTestlist/trainlist0N.txt       "<Class>/<video>.avi <1-based index>"
  ROOT/ucfTrainTestlist/testlist0N.txt        "<Class>/<video>.avi"
(option split=1|2|3; val and test are testlist0N)"""


def read_ucf101(
    root: Path, *, split: int = 1, video_dir: str = "UCF-101", list_dir: str = "ucfTrainTestlist"
) -> Splits:
    """UCF-101 with the official three train/test splits."""
    if split not in (1, 2, 3):
        raise ValueError(f"ucf101 split must be 1, 2 or 3, got {split!r}")
    lists = require(root / list_dir, UCF101_LAYOUT)
    vdir = require(root / video_dir, UCF101_LAYOUT)
    class_file = require(lists / "classInd.txt", UCF101_LAYOUT)
    names = read_class_names(class_file)
    label_of = {n: i for i, n in enumerate(names)}

    def read(name: str) -> list[VideoEntry]:
        path = require(lists / name, UCF101_LAYOUT)
        entries = []
        for number, line in _lines(path):
            rel = line.split()[0]
            cls = rel.split("/")[0]
            if "/" not in rel or cls not in label_of:
                raise bad_line(
                    path,
                    number,
                    f"'<Class>/<video>.avi [label]' with a class of {class_file.name}",
                    line,
                )
            entries.append(VideoEntry(str(vdir / rel), label_of[cls]))
        return keep_existing(entries, source=path, layout=UCF101_LAYOUT)

    test = read(f"testlist0{split}.txt")
    return Splits(read(f"trainlist0{split}.txt"), test, names, test)


HMDB51_LAYOUT = """\
  ROOT/videos/<class>/<video>.avi
  ROOT/testTrainMulti_7030_splits/<class>_test_split<N>.txt   "<video>.avi <0|1|2>"
(1 = train, 2 = test, 0 = unused; option split=1|2|3; val and test are the test videos)"""

_HMDB_FILE = re.compile(r"^(?P<cls>.+)_test_split(?P<n>[123])\.txt$")


def read_hmdb51(
    root: Path,
    *,
    split: int = 1,
    video_dir: str = "videos",
    split_dir: str = "testTrainMulti_7030_splits",
) -> Splits:
    """HMDB-51 with the official 70/30 splits."""
    if split not in (1, 2, 3):
        raise ValueError(f"hmdb51 split must be 1, 2 or 3, got {split!r}")
    sdir = require(root / split_dir, HMDB51_LAYOUT)
    vdir = require(root / video_dir, HMDB51_LAYOUT)
    files = sorted(
        p for p in sdir.iterdir() if (m := _HMDB_FILE.match(p.name)) and m["n"] == str(split)
    )
    if not files:
        raise LayoutError(
            f"no *_test_split{split}.txt files in {sdir}\nExpected layout:\n{HMDB51_LAYOUT}"
        )
    names = [_HMDB_FILE.match(p.name)["cls"] for p in files]  # type: ignore[index]
    train, test = [], []
    for label, (name, path) in enumerate(zip(names, files, strict=True)):
        for number, line in _lines(path):
            parts = line.split()
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise bad_line(path, number, "'<video>.avi <0|1|2>'", line)
            entry = VideoEntry(str(vdir / name / parts[0]), label)
            {"1": train, "2": test}.get(parts[1], []).append(entry)
    train = keep_existing(train, source=sdir, layout=HMDB51_LAYOUT)
    test = keep_existing(test, source=sdir, layout=HMDB51_LAYOUT)
    return Splits(train, test, names, test)


KINETICS_LAYOUT = """\
  ROOT/train.csv   header "label,youtube_id,time_start,time_end,split" (extra columns ignored)
  ROOT/val.csv
  ROOT/train/[<label>/]<youtube_id>_<start:06d>_<end:06d>.mp4   (flat or one folder per class)
  ROOT/val/[<label>/]<youtube_id>_<start:06d>_<end:06d>.mp4
(classes = the sorted labels of train.csv; val is also the test split; videos missing on disk
are skipped with a warning, more than 5% missing is an error)"""

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


def read_kinetics(
    root: Path,
    *,
    train_csv: str = "train.csv",
    val_csv: str = "val.csv",
    train_dir: str = "train",
    val_dir: str = "val",
) -> Splits:
    """Kinetics-400/600/700 from the official CSVs and downloaded clips."""
    tables = {}
    for split, csv_name, dir_name in (("train", train_csv, train_dir), ("val", val_csv, val_dir)):
        videos = index_videos(require(root / dir_name, KINETICS_LAYOUT))
        tables[split] = (
            root / csv_name,
            _read_kinetics_csv(require(root / csv_name, KINETICS_LAYOUT), videos),
        )
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
    return Splits(splits["train"], splits["val"], names, splits["val"])


SSV2_LAYOUT = """\
  ROOT/labels/something-something-v2-labels.json       {"<template without brackets>": "<id>"}
  ROOT/labels/something-something-v2-train.json        [{"id": "...", "template": "..."}, ...]
  ROOT/labels/something-something-v2-validation.json
  ROOT/20bn-something-something-v2/<id>.webm
(the short names labels.json, train.json, validation.json are accepted too; val is also the
test split; horizontal flip is off because some classes name left and right)"""


def _first_existing(folder: Path, names: tuple[str, ...]) -> Path:
    """The first of ``names`` that exists in ``folder`` (LayoutError naming the first if none)."""
    for name in names:
        if (folder / name).exists():
            return folder / name
    return require(folder / names[0], SSV2_LAYOUT)


def read_ssv2(
    root: Path, *, labels_dir: str = "labels", video_dir: str = "20bn-something-something-v2"
) -> Splits:
    """Something-Something v2 from its JSON annotations."""
    ldir, vdir = require(root / labels_dir, SSV2_LAYOUT), require(root / video_dir, SSV2_LAYOUT)
    label_file = _first_existing(ldir, ("something-something-v2-labels.json", "labels.json"))
    table = json.loads(label_file.read_text(encoding="utf-8"))
    names = [n for n, _ in sorted(table.items(), key=lambda kv: int(kv[1]))]
    splits = []
    for stem in ("train", "validation"):
        path = _first_existing(ldir, (f"something-something-v2-{stem}.json", f"{stem}.json"))
        entries = []
        for number, item in enumerate(json.loads(path.read_text(encoding="utf-8")), start=1):
            template = str(item.get("template", "")).replace("[", "").replace("]", "")
            if "id" not in item or template not in table:
                raise ValueError(
                    f"{path}: entry {number}: expected an 'id' and a 'template' "
                    f"listed in {label_file.name}, got {item!r}"
                )
            entries.append(VideoEntry(str(vdir / f"{item['id']}.webm"), int(table[template])))
        splits.append(keep_existing(entries, source=path, layout=SSV2_LAYOUT))
    return Splits(splits[0], splits[1], names, splits[1])


FINEGYM_LAYOUT = """\
  ROOT/annotations/gym99_train_element_v1.1.txt   "<clip_id> <label>" per line
  ROOT/annotations/gym99_val_element.txt          (same format)
  ROOT/annotations/gym99_categories.txt           optional class names, lines like
                                                  "Clabel: <i>; set: ..; Glabel: ..; <name>"
  ROOT/clips/<clip_id>.mp4                        the element clips, cut from the event videos
(option version=gym99|gym288 swaps the prefix; val is also the test split)"""

_GYM_CATEGORY = re.compile(r"^Clabel:\s*(\d+);(?:[^;]*;){2}\s*(.*)$")


def read_finegym(
    root: Path,
    *,
    version: str = "gym99",
    annotations: str = "annotations",
    video_dir: str = "clips",
) -> Splits:
    """FineGym element clips with the Gym99 or Gym288 annotations."""
    if version not in ("gym99", "gym288"):
        raise ValueError(f"finegym version must be 'gym99' or 'gym288', got {version!r}")
    adir = require(root / annotations, FINEGYM_LAYOUT)
    vdir = require(root / video_dir, FINEGYM_LAYOUT)
    splits = []
    for name in (f"{version}_train_element_v1.1.txt", f"{version}_val_element.txt"):
        path = require(adir / name, FINEGYM_LAYOUT)
        entries = []
        for number, line in _lines(path):
            parts = line.split()
            if len(parts) != 2 or not parts[1].isdigit():
                raise bad_line(path, number, "'<clip_id> <label>'", line)
            entries.append(VideoEntry(str(vdir / f"{parts[0]}.mp4"), int(parts[1])))
        splits.append(keep_existing(entries, source=path, layout=FINEGYM_LAYOUT))
    cat_file = adir / f"{version}_categories.txt"
    top = max(e.label for s in splits for e in s) + 1 if any(splits) else 0
    names = [f"class_{i}" for i in range(max(top, {"gym99": 99, "gym288": 288}[version]))]
    if cat_file.exists():
        for number, line in _lines(cat_file):
            m = _GYM_CATEGORY.match(line)
            if not m or int(m[1]) >= len(names):
                raise bad_line(cat_file, number, "'Clabel: <i>; set: ..; Glabel: ..; <name>'", line)
            names[int(m[1])] = m[2].strip()
    return Splits(splits[0], splits[1], names, splits[1])


MPII_LAYOUT = """\
  ROOT/train.csv      "<path> <label>" per line (space-separated, no header), path relative to
  ROOT/val.csv        ROOT/videos: the TimeSformer-style split CSVs of the reference code
  ROOT/test.csv       optional (val is used when absent)
  ROOT/classes.txt    optional: one class name per line in label order
  ROOT/videos/...     the clips cut from the MPII Cooking 2 videos"""


def read_mpii_cooking2(root: Path, *, video_dir: str = "videos", split: str = "") -> Splits:
    """MPII Cooking 2 clips from the reference code's "<path> <label>" split CSVs.

    ``split`` is an optional file-name prefix (``split="s1_"`` reads s1_train.csv, ...).
    """
    require(root, MPII_LAYOUT, kind="dataset root")
    for name in ("train", "val"):
        require(root / f"{split}{name}.csv", MPII_LAYOUT)
    return _read_lists(
        root,
        train=f"{split}train.csv",
        val=f"{split}val.csv",
        test=f"{split}test.csv",
        classes="classes.txt",
        video_dir=video_dir,
        layout=MPII_LAYOUT,
    )
