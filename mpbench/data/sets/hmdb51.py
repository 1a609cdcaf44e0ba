"""The hmdb51 dataset: its layout, reader, fake layout (for tests) and registration."""

from __future__ import annotations

import re
from pathlib import Path

from mpbench.data.datasets import VideoEntry
from mpbench.data.readers import (
    DEFAULT_VAL_FRACTION,
    LayoutError,
    Splits,
    bad_line,
    carve_rule,
    carve_val,
    keep_existing,
    numbered_lines,
    require,
)
from mpbench.data.registry import register_dataset
from mpbench.data.sets._fake import write_video

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
        for number, line in numbered_lines(path):
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


# --- a tiny copy of the layout with real videos (tests) --------------------------------------

HMDB_CLIPS = {  # (source video, clip index, split tag); April_09 gives clips to both classes
    "brush_hair": [("April_09", 0, "1"), ("April_09", 1, "1"), ("Boy_1", 0, "1"), ("Cat", 0, "2")],
    "cartwheel": [("April_09", 0, "1"), ("Gym_x", 0, "1"), ("Gym_x", 1, "2"), ("Park", 0, "0")],
}


def make_hmdb51(root: Path) -> dict:
    """HMDB-51 layout with 2 classes, split 2, real-style names <title>_<class>_<tags>_<n>.avi."""
    splits = root / "testTrainMulti_7030_splits"
    splits.mkdir(parents=True)
    for cls, clips in HMDB_CLIPS.items():
        lines = []
        for i, (source, index, tag) in enumerate(clips):
            name = f"{source}_{cls}_u_nm_np1_fr_goo_{index}.avi"
            write_video(root / "videos" / cls / name, seed=i)
            lines.append(f"{name} {tag} ")
        (splits / f"{cls}_test_split2.txt").write_text("\n".join(lines) + "\n")
    return {"split": 2}


register_dataset(
    "hmdb51",
    description="HMDB-51, official 70/30 splits 1-3",
    layout=HMDB51_LAYOUT,
    reader=read_hmdb51,
    fake_layout=make_hmdb51,
)
