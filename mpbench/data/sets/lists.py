"""The list dataset: its layout, reader, fake layout (for tests) and registration."""

from __future__ import annotations

from pathlib import Path

from mpbench.data.datasets import VideoEntry
from mpbench.data.readers import (
    DEFAULT_VAL_FRACTION,
    GroupKey,
    LayoutError,
    Splits,
    carved_splits,
    check_fraction,
    check_labels,
    keep_existing,
    read_class_names,
    read_path_label_list,
    relative_key,
    require,
)
from mpbench.data.registry import register_dataset
from mpbench.data.sets._fake import write_video

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
    return read_lists(
        root,
        files={"train": train, "val": val, "test": test},
        classes=classes,
        video_dir=video_dir,
        layout=LIST_LAYOUT,
        val_fraction=val_fraction,
        group=None,
    )


def read_lists(
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
    return carved_splits(
        lists["train"],
        lists[test_split],
        group=key,
        fraction=val_fraction,
        class_names=names,
        source=paths["train"],
        rule=(files[test_split], files["train"], group_rule),
    )


def _list_class_names(path: Path, lists: dict[str, list[VideoEntry]]) -> list[str]:
    """Names from the class file, else ``class_<i>`` up to the largest listed label."""
    if path.exists():
        return read_class_names(path)
    top = max((e.label for v in lists.values() for e in v), default=-1)
    return [f"class_{i}" for i in range(top + 1)]


# --- a tiny copy of the layout with real videos (tests) --------------------------------------


def make_list(root: Path, splits: tuple[str, ...] = ("train", "val", "test")) -> dict:
    """ "<path> <label>" lists with paths containing spaces (train: 2 videos per class)."""
    for split in splits:
        lines = []
        for i in range(6 if split == "train" else 2):
            rel = f"clips/{split} clip {i}.mp4"
            write_video(root / rel, seed=i)
            lines.append(f"{rel} {i % 3}")
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return {}


register_dataset(
    "list",
    description="'<path> <label>' split lists (PySlowFast / reference-code format)",
    layout=LIST_LAYOUT,
    reader=read_list,
    fake_layout=make_list,
)
