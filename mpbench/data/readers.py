"""Readers that turn a dataset directory into three disjoint labelled video lists.

The splits: ``train`` (fitting), ``val`` (early stopping, pruning, searches) and ``test``
(reported only, never used to choose anything). A dataset that ships only train and test lists
gets a val split carved out of its training list by :func:`carve_val`: whole groups of clips
(one actor, one source video, one YouTube video, one subject) about ``val_fraction`` of each
class's groups, chosen by a stable hash of the group key, so the carve is a pure function of the
file list. Each layout text says which rule its reader applies.

Each reader checks the layout it documents: a missing file or folder is a FileNotFoundError that
names the path and shows the expected layout, and a malformed line of a split file is a
ValueError naming the file, the line number and the expected format. Videos listed in a split
file but absent on disk are dropped with a warning; more than 5% absent is an error (usually a
wrong root or video folder).
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import logging
import os
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mpbench.data.datasets import VideoEntry
from mpbench.data.video import VIDEO_EXTENSIONS

log = logging.getLogger(__name__)

MAX_MISSING_FRACTION = 0.05
DEFAULT_VAL_FRACTION = 0.1
DEFAULT_TEST_FRACTION = 0.2
MAX_HELD_FRACTION = 0.5

GroupKey = Callable[[str], str]  # video path -> group key (clips of one group stay together)


@dataclass(frozen=True)
class Splits:
    """Labelled videos of the three pairwise disjoint splits and how they were made.

    Args:
        train: videos the model is fitted on.
        val: videos for early stopping, pruning and searches.
        test: videos that are only reported.
        class_names: class names in label order.
        rule: one line saying where each split comes from (logged with the trial).

    Example:
        >>> a, b, c = (VideoEntry(p, 0) for p in ("a.mp4", "b.mp4", "c.mp4"))
        >>> len(Splits(train=[a], val=[b], test=[c], class_names=["x"]).test)
        1
    """

    train: list[VideoEntry]
    val: list[VideoEntry]
    test: list[VideoEntry]
    class_names: list[str]
    rule: str = ""

    def __post_init__(self) -> None:
        named = (("train", self.train), ("val", self.val), ("test", self.test))
        for (a, left), (b, right) in itertools.combinations(named, 2):
            shared = sorted({e.path for e in left} & {e.path for e in right})
            if shared:
                raise ValueError(
                    f"the {a} and {b} splits share {len(shared)} video file(s), e.g. "
                    f"{', '.join(shared[:3])}; train, val and test must be disjoint "
                    "(test is reported only, val chooses models)"
                )


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
# Carving a held-out split out of a list, whole groups at a time


def check_fraction(name: str, value: float) -> float:
    """``value`` as a float if it is a share in (0, 0.5], else a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number in (0, {MAX_HELD_FRACTION}], got {value!r}")
    if not 0.0 < value <= MAX_HELD_FRACTION:
        raise ValueError(
            f"{name} must be in (0, {MAX_HELD_FRACTION}] (the share of each class's training "
            f"groups held out), got {value!r}"
        )
    return float(value)


def stable_hash(key: str) -> int:
    """A hash of ``key`` that is the same in every process (unlike the salted ``hash()``)."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big")


def carve_val(
    entries: list[VideoEntry],
    *,
    group: GroupKey,
    fraction: float,
    class_names: list[str],
    source: Path | str,
    split: str = "val",
) -> tuple[list[VideoEntry], list[VideoEntry]]:
    """(kept, held): whole groups held out, about ``fraction`` of each class's groups.

    Groups are visited in the order of a stable hash of their key; a group is held while one of
    its classes is short of its quota (``round(fraction * groups)``, at least 1) and every class
    it holds clips of keeps at least one group. A class with fewer than 2 groups, or one left
    without held clips, is a ValueError naming ``source`` and the class.
    """
    fraction = check_fraction(f"{split}_fraction", fraction)
    keys = [group(e.path) for e in entries]
    groups_of: dict[int, set[str]] = defaultdict(set)
    classes_of: dict[str, set[int]] = defaultdict(set)
    for entry, key in zip(entries, keys, strict=True):
        groups_of[entry.label].add(key)
        classes_of[key].add(entry.label)
    for label, groups in sorted(groups_of.items()):
        if len(groups) < 2:
            raise ValueError(
                f"{source}: class {_class_name(class_names, label)!r} has its clips in "
                f"{len(groups)} group ({sorted(groups)[0]!r}); carving a {split} split needs at "
                "least 2 groups per class (one stays in training, one is held out)"
            )
    held = _held_groups(groups_of, classes_of, fraction)
    short = sorted(c for c, groups in groups_of.items() if not groups & held)
    if short:
        raise ValueError(
            f"{source}: no {split} clips could be carved for class "
            f"{_class_name(class_names, short[0])!r}: every group of it also holds the last "
            "training group of another class; give an explicit split list instead"
        )
    kept = [e for e, k in zip(entries, keys, strict=True) if k not in held]
    return kept, [e for e, k in zip(entries, keys, strict=True) if k in held]


def _held_groups(
    groups_of: dict[int, set[str]], classes_of: dict[str, set[int]], fraction: float
) -> set[str]:
    """The greedy pick of :func:`carve_val`: groups in stable-hash order, quotas per class."""
    quota = {c: min(len(g) - 1, max(1, round(fraction * len(g)))) for c, g in groups_of.items()}
    taken = dict.fromkeys(groups_of, 0)
    left = {c: len(g) for c, g in groups_of.items()}
    held = set()
    for key in sorted(classes_of, key=lambda k: (stable_hash(k), k)):
        classes = classes_of[key]
        if any(taken[c] < quota[c] for c in classes) and all(left[c] > 1 for c in classes):
            held.add(key)
            for c in classes:
                taken[c], left[c] = taken[c] + 1, left[c] - 1
    return held


def _class_name(class_names: list[str], label: int) -> str:
    """The name of ``label`` (its index when the names do not cover it)."""
    return class_names[label] if label < len(class_names) else str(label)


def relative_key(base: Path) -> GroupKey:
    """Group by file: the path relative to ``base`` (so moving the dataset keeps the carve)."""
    return lambda path: Path(os.path.relpath(path, base)).as_posix()


def carve_rule(fraction: float, source: str, group_rule: str) -> str:
    """The ``Splits.rule`` text of a carved val split."""
    return f"val = {fraction:g} of each class's groups of {source} (group = {group_rule})"


# ----------------------------------------------------------------------------------------------
# Generic readers

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
    train, val = carve_val(
        train,
        group=relative_key(root / "train"),
        fraction=val_fraction,
        class_names=names,
        source=root / "train",
    )
    rule = f"test = {test_name}/; " + carve_rule(val_fraction, "train/", "one file")
    return Splits(train=train, val=val, test=lists[test_name], class_names=names, rule=rule)


LIST_LAYOUT = """\
  ROOT/train.txt        "<path> <label>" per line, path relative to ROOT/<video_dir>
  ROOT/val.txt          (same format)
  ROOT/test.txt         (same format)
  ROOT/classes.txt      optional: one class name per line in label order
  ROOT/<video_dir>/...  the videos (video_dir defaults to ROOT itself)
(all three lists are used as given; without test.txt, val.txt is the test split and val is
carved from train.txt; without val.txt, val is carved from train.txt: val_fraction of each
class's videos, whole files picked by a stable hash of the listed path)"""


def read_list(
    root: Path,
    *,
    train: str = "train.txt",
    val: str = "val.txt",
    test: str = "test.txt",
    classes: str = "classes.txt",
    video_dir: str = ".",
    val_fraction: float = DEFAULT_VAL_FRACTION,
) -> Splits:
    """ "<path> <label>" split lists (the PySlowFast / reference-code format)."""
    return _read_lists(
        root,
        files={"train": train, "val": val, "test": test},
        classes=classes,
        video_dir=video_dir,
        layout=LIST_LAYOUT,
        val_fraction=val_fraction,
        group=None,
    )


def _read_lists(
    root: Path,
    *,
    files: dict[str, str],
    classes: str,
    video_dir: str,
    layout: str,
    val_fraction: float,
    group: tuple[GroupKey, str] | None,
) -> Splits:
    """:func:`read_list` with the layout text and (group key, rule text) of the calling preset.

    ``group`` None groups by file (the path relative to the video folder).
    """
    require(root, layout, kind="dataset root")
    check_fraction("val_fraction", val_fraction)
    vdir = root / video_dir
    paths = {s: root / n for s, n in files.items() if s == "train" or (root / n).exists()}
    if len(paths) == 1:
        raise LayoutError(
            f"neither {root / files['val']} nor {root / files['test']} found: a val or a test "
            f"list is needed besides {files['train']}\nExpected layout:\n{layout}"
        )
    lists = {}
    for split, path in paths.items():
        entries = read_path_label_list(require(path, layout, kind=f"{split} list"), video_dir=vdir)
        lists[split] = keep_existing(entries, source=path, layout=layout)
    names = _list_class_names(root / classes, lists)
    for split, entries in lists.items():
        check_labels(entries, len(names), source=paths[split])
    if len(lists) == 3:
        rule = f"train, val, test = {files['train']}, {files['val']}, {files['test']} as given"
        return Splits(class_names=names, rule=rule, **lists)
    test_split = "test" if "test" in lists else "val"
    key, group_rule = group or (relative_key(vdir), "one file")
    train, val = carve_val(
        lists["train"], group=key, fraction=val_fraction, class_names=names, source=paths["train"]
    )
    rule = f"test = {files[test_split]}; " + carve_rule(val_fraction, files["train"], group_rule)
    return Splits(train=train, val=val, test=lists[test_split], class_names=names, rule=rule)


def _list_class_names(path: Path, lists: dict[str, list[VideoEntry]]) -> list[str]:
    """Names from the class file, else ``class_<i>`` up to the largest listed label."""
    if path.exists():
        return read_class_names(path)
    top = max((e.label for v in lists.values() for e in v), default=-1)
    return [f"class_{i}" for i in range(top + 1)]


# ----------------------------------------------------------------------------------------------
# Presets

UCF101_LAYOUT = """\
  ROOT/UCF-101/<Class>/v_<Class>_gXX_cYY.avi
  ROOT/ucfTrainTestlist/classInd.txt          "<1-based index> <Class>"
  ROOT/ucfTrainTestlist/trainlist0N.txt       "<Class>/<video>.avi <1-based index>"
  ROOT/ucfTrainTestlist/testlist0N.txt        "<Class>/<video>.avi"
(option split=1|2|3; test = testlist0N; val = val_fraction of each class's groups gXX of
trainlist0N, whole groups so that one actor's clips never straddle train and val, picked by a
stable hash of <Class>_gXX)"""

_UCF_NAME = re.compile(r"^v_(?P<cls>.+)_g(?P<g>\d+)_c\d+$")


def _pattern_group(
    source: Path, pattern: re.Pattern[str], *, build: Callable[[re.Match[str]], str], error: str
) -> GroupKey:
    """Group key built from ``pattern``'s match on a file stem; ``error`` (formatted with the
    file's ``name`` and ``stem``) follows ``source`` in the ValueError of a name that fails."""

    def key(path: str) -> str:
        m = pattern.match(Path(path).stem)
        if m is None:
            raise ValueError(
                f"{source}: " + error.format(name=Path(path).name, stem=Path(path).stem)
            )
        return build(m)

    return key


def _ucf_group(source: Path) -> GroupKey:
    """Group key <Class>_gXX of a UCF-101 file name (ValueError naming ``source`` if none)."""
    return _pattern_group(
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

    train_list = lists / f"trainlist0{split}.txt"
    test = read(f"testlist0{split}.txt")
    train, val = carve_val(
        read(train_list.name),
        group=_ucf_group(train_list),
        fraction=val_fraction,
        class_names=names,
        source=train_list,
    )
    rule = f"test = {train_list.name.replace('train', 'test')}; " + carve_rule(
        val_fraction, train_list.name, "<Class>_gXX"
    )
    return Splits(train=train, val=val, test=test, class_names=names, rule=rule)


HMDB51_LAYOUT = """\
  ROOT/videos/<class>/<video>.avi
  ROOT/testTrainMulti_7030_splits/<class>_test_split<N>.txt   "<video>.avi <0|1|2>"
(1 = train, 2 = test, 0 = unused; option split=1|2|3; test = the videos marked 2; val =
val_fraction of each class's source videos among those marked 1, whole source videos so that
clips cut from one video stay together: a file <title>_<class>_<tags>_<n>.avi belongs to the
video <title> (else to its name without the trailing _<n>), picked by a stable hash of it)"""

_HMDB_FILE = re.compile(r"^(?P<cls>.+)_test_split(?P<n>[123])\.txt$")


def hmdb_source_video(path: str) -> str:
    """The source video of an HMDB-51 clip: the title before ``_<class>_`` in its file name."""
    p = Path(path)
    cut = p.stem.rfind(f"_{p.parent.name}_")
    return p.stem[:cut] if cut > 0 else re.sub(r"_\d+$", "", p.stem)


def read_hmdb51(
    root: Path,
    *,
    split: int = 1,
    video_dir: str = "videos",
    split_dir: str = "testTrainMulti_7030_splits",
    val_fraction: float = DEFAULT_VAL_FRACTION,
) -> Splits:
    """HMDB-51 with the official 70/30 splits and a val split carved by source video."""
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
    train, val = carve_val(
        keep_existing(train, source=sdir, layout=HMDB51_LAYOUT),
        group=hmdb_source_video,
        fraction=val_fraction,
        class_names=names,
        source=sdir / f"*_test_split{split}.txt",
    )
    test = keep_existing(test, source=sdir, layout=HMDB51_LAYOUT)
    rule = f"test = the videos marked 2 in split {split}; " + carve_rule(
        val_fraction, "the videos marked 1", "source video"
    )
    return Splits(train=train, val=val, test=test, class_names=names, rule=rule)


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
    train, val = carve_val(
        splits["train"],
        group=kinetics_youtube_id,
        fraction=val_fraction,
        class_names=names,
        source=root / train_csv,
    )
    rule = f"test = {val_csv}; " + carve_rule(val_fraction, train_csv, "YouTube video")
    return Splits(train=train, val=val, test=splits["val"], class_names=names, rule=rule)


SSV2_LAYOUT = """\
  ROOT/labels/something-something-v2-labels.json       {"<template without brackets>": "<id>"}
  ROOT/labels/something-something-v2-train.json        [{"id": "...", "template": "..."}, ...]
  ROOT/labels/something-something-v2-validation.json
  ROOT/labels/something-something-v2-test.json         optional: used only when every entry
                                                       has a template (the official one has none)
  ROOT/20bn-something-something-v2/<id>.webm
(the short names labels.json, train.json, validation.json, test.json are accepted too; without a
labelled test, test = validation and val = val_fraction of each class's videos of train, one
video per id, picked by a stable hash of the id; horizontal flip is off because some classes
name left and right)"""


def _first_existing(folder: Path, names: tuple[str, ...]) -> Path:
    """The first of ``names`` that exists in ``folder`` (LayoutError naming the first if none)."""
    for name in names:
        if (folder / name).exists():
            return folder / name
    return require(folder / names[0], SSV2_LAYOUT)


def _ssv2_names(stem: str) -> tuple[str, str]:
    """The long and the short file name of an SSv2 annotation file."""
    return f"something-something-v2-{stem}.json", f"{stem}.json"


def _ssv2_labelled_test(ldir: Path) -> Path | None:
    """The SSv2 test JSON if it exists and every entry has a template, else None."""
    path = next((ldir / n for n in _ssv2_names("test") if (ldir / n).exists()), None)
    if path is None:
        return None
    items = json.loads(path.read_text(encoding="utf-8"))
    return path if items and all("template" in item for item in items) else None


def _read_ssv2_split(path: Path, table: dict[str, str], vdir: Path) -> list[VideoEntry]:
    """The labelled videos of one SSv2 annotation file."""
    entries = []
    for number, item in enumerate(json.loads(path.read_text(encoding="utf-8")), start=1):
        template = str(item.get("template", "")).replace("[", "").replace("]", "")
        if "id" not in item or template not in table:
            raise ValueError(
                f"{path}: entry {number}: expected an 'id' and a 'template' "
                f"listed in the labels file, got {item!r}"
            )
        entries.append(VideoEntry(str(vdir / f"{item['id']}.webm"), int(table[template])))
    return keep_existing(entries, source=path, layout=SSV2_LAYOUT)


def read_ssv2(
    root: Path,
    *,
    labels_dir: str = "labels",
    video_dir: str = "20bn-something-something-v2",
    val_fraction: float = DEFAULT_VAL_FRACTION,
) -> Splits:
    """Something-Something v2 from its JSON annotations."""
    check_fraction("val_fraction", val_fraction)
    ldir, vdir = require(root / labels_dir, SSV2_LAYOUT), require(root / video_dir, SSV2_LAYOUT)
    table = json.loads(_first_existing(ldir, _ssv2_names("labels")).read_text(encoding="utf-8"))
    names = [n for n, _ in sorted(table.items(), key=lambda kv: int(kv[1]))]
    train_file = _first_existing(ldir, _ssv2_names("train"))
    val_file = _first_existing(ldir, _ssv2_names("validation"))
    train = _read_ssv2_split(train_file, table, vdir)
    official_val = _read_ssv2_split(val_file, table, vdir)
    test_file = _ssv2_labelled_test(ldir)
    if test_file is not None:
        test = _read_ssv2_split(test_file, table, vdir)
        rule = f"train, val, test = {train_file.name}, {val_file.name}, {test_file.name} as given"
        return Splits(train=train, val=official_val, test=test, class_names=names, rule=rule)
    train, val = carve_val(
        train,
        group=lambda p: Path(p).stem,
        fraction=val_fraction,
        class_names=names,
        source=train_file,
    )
    rule = f"test = {val_file.name}; " + carve_rule(val_fraction, train_file.name, "video id")
    return Splits(train=train, val=val, test=official_val, class_names=names, rule=rule)


FINEGYM_LAYOUT = """\
  ROOT/annotations/gym99_train_element_v1.1.txt   "<clip_id> <label>" per line, clip ids
                                                  <youtube_id>_E_<start>_<end>_A_<start>_<end>
  ROOT/annotations/gym99_val_element.txt          (same format)
  ROOT/annotations/gym99_categories.txt           optional class names, lines like
                                                  "Clabel: <i>; set: ..; Glabel: ..; <name>"
  ROOT/clips/<clip_id>.mp4                        the element clips, cut from the event videos
(option version=gym99|gym288 swaps the prefix; test = the official val list; val = val_fraction
of each class's YouTube videos of the train list, whole videos, picked by a stable hash of the
youtube_id)"""

_GYM_CATEGORY = re.compile(r"^Clabel:\s*(\d+);(?:[^;]*;){2}\s*(.*)$")
_GYM_CLIP = re.compile(r"^(?P<vid>.+?)_E_\d+_\d+")


def _finegym_group(source: Path) -> GroupKey:
    """Group key (the YouTube id) of a FineGym clip (ValueError naming ``source`` if none)."""
    return _pattern_group(
        source,
        _GYM_CLIP,
        build=lambda m: m["vid"],
        error="clip id {stem!r} does not start with <youtube_id>_E_<start>_<end>; the val split "
        "is carved by YouTube video",
    )


def read_finegym(
    root: Path,
    *,
    version: str = "gym99",
    annotations: str = "annotations",
    video_dir: str = "clips",
    val_fraction: float = DEFAULT_VAL_FRACTION,
) -> Splits:
    """FineGym element clips with the Gym99 or Gym288 annotations."""
    if version not in ("gym99", "gym288"):
        raise ValueError(f"finegym version must be 'gym99' or 'gym288', got {version!r}")
    adir = require(root / annotations, FINEGYM_LAYOUT)
    vdir = require(root / video_dir, FINEGYM_LAYOUT)
    files = [adir / f"{version}_train_element_v1.1.txt", adir / f"{version}_val_element.txt"]
    splits = []
    for path in files:
        require(path, FINEGYM_LAYOUT)
        entries = []
        for number, line in _lines(path):
            parts = line.split()
            if len(parts) != 2 or not parts[1].isdigit():
                raise bad_line(path, number, "'<clip_id> <label>'", line)
            entries.append(VideoEntry(str(vdir / f"{parts[0]}.mp4"), int(parts[1])))
        splits.append(keep_existing(entries, source=path, layout=FINEGYM_LAYOUT))
    names = _finegym_names(adir / f"{version}_categories.txt", splits, version=version)
    train, val = carve_val(
        splits[0],
        group=_finegym_group(files[0]),
        fraction=val_fraction,
        class_names=names,
        source=files[0],
    )
    rule = f"test = {files[1].name}; " + carve_rule(val_fraction, files[0].name, "YouTube video")
    return Splits(train=train, val=val, test=splits[1], class_names=names, rule=rule)


def _finegym_names(cat_file: Path, splits: list[list[VideoEntry]], *, version: str) -> list[str]:
    """Class names from the categories file, ``class_<i>`` where it names none."""
    top = max(e.label for s in splits for e in s) + 1 if any(splits) else 0
    names = [f"class_{i}" for i in range(max(top, {"gym99": 99, "gym288": 288}[version]))]
    if cat_file.exists():
        for number, line in _lines(cat_file):
            m = _GYM_CATEGORY.match(line)
            if not m or int(m[1]) >= len(names):
                raise bad_line(cat_file, number, "'Clabel: <i>; set: ..; Glabel: ..; <name>'", line)
            names[int(m[1])] = m[2].strip()
    return names


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
    return _read_lists(
        root,
        files={s: f"{split}{s}.csv" for s in ("train", "val", "test")},
        classes="classes.txt",
        video_dir=video_dir,
        layout=MPII_LAYOUT,
        val_fraction=val_fraction,
        group=(mpii_group(root / video_dir), "subject, else folder"),
    )
