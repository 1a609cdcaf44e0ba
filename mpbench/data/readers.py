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

import hashlib
import itertools
import logging
import os
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
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
        test_shift: videos of an appearance-shifted test split (reported only, never used to
            choose models); empty when the dataset names none.

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
    test_shift: list[VideoEntry] = field(default_factory=list)

    def __post_init__(self) -> None:
        named = (
            ("train", self.train),
            ("val", self.val),
            ("test", self.test),
            ("test_shift", self.test_shift),
        )
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


def numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, stripped line) of the non-blank, non-comment lines of a text file."""
    with path.open(encoding="utf-8") as fh:
        for number, raw in enumerate(fh, start=1):
            line = raw.strip()
            if line and not line.startswith("#"):
                yield number, line


def bad_line(path: Path, number: int, expected: str, line: str) -> ValueError:
    """The error for a malformed line: file, line number, expected format, the line."""
    return ValueError(f"{path}:{number}: expected {expected}, got {line!r}")


def read_entries(
    path: Path, parse: Callable[[str], VideoEntry | None], *, expected: str, layout: str
) -> list[VideoEntry]:
    """The entries of the list file ``path``, ``parse(line)`` of each line (None: a malformed
    line, a ValueError that shows ``expected``), less those whose video is missing on disk
    (:func:`keep_existing`); a missing ``path`` is a LayoutError showing ``layout``."""
    entries = []
    for number, line in numbered_lines(require(path, layout)):
        entry = parse(line)
        if entry is None:
            raise bad_line(path, number, expected, line)
        entries.append(entry)
    return keep_existing(entries, source=path, layout=layout)


def read_path_label_list(path: Path, *, video_dir: Path) -> list[VideoEntry]:
    """Read a "<path> <label>" list (PySlowFast/TimeSformer format); paths relative to video_dir.

    The label is the last whitespace-separated field, so paths may contain spaces.
    """
    entries = []
    for number, line in numbered_lines(path):
        parts = line.rsplit(None, 1)
        if len(parts) != 2 or not parts[1].isdigit():
            raise bad_line(path, number, "'<path> <label>' with a non-negative integer label", line)
        entries.append(VideoEntry(str(video_dir / parts[0]), int(parts[1])))
    return entries


def read_class_names(path: Path) -> list[str]:
    """One class name per line, in label order (an optional leading "<index> " is dropped)."""
    names = []
    for number, line in numbered_lines(path):
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


def carved_splits(
    train: list[VideoEntry],
    test: list[VideoEntry],
    *,
    group: GroupKey,
    fraction: float,
    class_names: list[str],
    source: Path | str,
    rule: tuple[str, str, str],
) -> Splits:
    """The splits of a dataset that ships train and test lists: val is carved from ``train`` by
    :func:`carve_val`; ``rule`` = (the test list, the train list, the group) names them in the
    rule text "test = <test list>; val = ... of <train list> (group = <group>)"."""
    train, val = carve_val(
        train, group=group, fraction=fraction, class_names=class_names, source=source
    )
    test_list, train_list, group_rule = rule
    text = f"test = {test_list}; " + carve_rule(fraction, train_list, group_rule)
    return Splits(train=train, val=val, test=test, class_names=class_names, rule=text)


def pattern_group(
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
