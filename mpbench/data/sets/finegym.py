"""The finegym dataset: its layout, reader, fake layout (for tests) and registration."""

from __future__ import annotations

import re
from pathlib import Path

from mpbench.data.datasets import VideoEntry
from mpbench.data.readers import (
    DEFAULT_VAL_FRACTION,
    GroupKey,
    Splits,
    bad_line,
    carved_splits,
    numbered_lines,
    pattern_group,
    read_entries,
    require,
)
from mpbench.data.registry import register_dataset
from mpbench.data.sets._fake import write_video

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
    return pattern_group(
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

    def entry(line: str) -> VideoEntry | None:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            return None
        return VideoEntry(str(vdir / f"{parts[0]}.mp4"), int(parts[1]))

    splits = [
        read_entries(path, entry, expected="'<clip_id> <label>'", layout=FINEGYM_LAYOUT)
        for path in files
    ]
    names = _finegym_names(adir / f"{version}_categories.txt", splits, version=version)
    return carved_splits(
        splits[0],
        splits[1],
        group=_finegym_group(files[0]),
        fraction=val_fraction,
        class_names=names,
        source=files[0],
        rule=(files[1].name, files[0].name, "YouTube video"),
    )


def _finegym_names(cat_file: Path, splits: list[list[VideoEntry]], *, version: str) -> list[str]:
    """Class names from the categories file, ``class_<i>`` where it names none."""
    top = max(e.label for s in splits for e in s) + 1 if any(splits) else 0
    names = [f"class_{i}" for i in range(max(top, {"gym99": 99, "gym288": 288}[version]))]
    if cat_file.exists():
        for number, line in numbered_lines(cat_file):
            m = _GYM_CATEGORY.match(line)
            if not m or int(m[1]) >= len(names):
                raise bad_line(cat_file, number, "'Clabel: <i>; set: ..; Glabel: ..; <name>'", line)
            names[int(m[1])] = m[2].strip()
    return names


# --- a tiny copy of the layout with real videos (tests) --------------------------------------

GYM_TRAIN = [  # (YouTube id, label): A0xAXXysHUo holds clips of both classes
    ("A0xAXXysHUo", 0),
    ("A0xAXXysHUo", 0),
    ("x_9-Qb2cD1e", 0),
    ("PqR_-s7tUv0", 1),
    ("A0xAXXysHUo", 1),
]


def make_finegym(root: Path) -> dict:
    """FineGym layout (Gym99) with a categories file; clip ids <youtube_id>_E_..._A_...."""
    ann = root / "annotations"
    ann.mkdir(parents=True)
    val = [("zzTopVideo1", 0), ("zzTopVideo1", 1)]
    for name, clips in (
        ("gym99_train_element_v1.1.txt", GYM_TRAIN),
        ("gym99_val_element.txt", val),
    ):
        lines = []
        for vid, label in clips:
            clip = f"{vid}_E_00{len(lines)}407_00{len(lines)}435_A_0003_0005"
            write_video(root / "clips" / f"{clip}.mp4", seed=len(lines))
            lines.append(f"{clip} {label}")
        (ann / name).write_text("\n".join(lines) + "\n")
    (ann / "gym99_categories.txt").write_text(
        "Clabel: 0; set: 1; Glabel: 1; (VT) round-off, flic-flac\n"
        "Clabel: 1; set: 1; Glabel: 2; (VT) round-off, flic-flac with 0.5 turn\n"
    )
    return {}


register_dataset(
    "finegym",
    description="FineGym element clips, Gym99 or Gym288",
    layout=FINEGYM_LAYOUT,
    reader=read_finegym,
    fake_layout=make_finegym,
)
