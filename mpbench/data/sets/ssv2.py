"""The ssv2 dataset: its layout, reader, fake layout (for tests) and registration."""

from __future__ import annotations

import json
from pathlib import Path

from mpbench.data.datasets import VideoEntry
from mpbench.data.readers import (
    DEFAULT_VAL_FRACTION,
    Splits,
    carved_splits,
    check_fraction,
    keep_existing,
    require,
)
from mpbench.data.registry import register_dataset
from mpbench.data.sets._fake import write_video

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
    return carved_splits(
        train,
        official_val,
        group=lambda p: Path(p).stem,
        fraction=val_fraction,
        class_names=names,
        source=train_file,
        rule=(val_file.name, train_file.name, "video id"),
    )


# --- a tiny copy of the layout with real videos (tests) --------------------------------------


def make_ssv2(root: Path) -> dict:
    """Something-Something v2 layout with JSON labels and webm videos (test unlabelled)."""
    labels = root / "labels"
    labels.mkdir(parents=True)
    table = {"Pushing something from left to right": "1", "Holding something": "0"}
    (labels / "something-something-v2-labels.json").write_text(json.dumps(table))
    templates = ["Pushing [something] from left to right", "Holding [something]"]
    for split, ids in (("train", [1, 2, 3, 4]), ("validation", [5, 6])):
        items = [
            {"id": str(i), "template": templates[i % 2], "label": "x", "placeholders": []}
            for i in ids
        ]
        (labels / f"something-something-v2-{split}.json").write_text(json.dumps(items))
        for i in ids:
            write_video(root / "20bn-something-something-v2" / f"{i}.webm", seed=i)
    (labels / "something-something-v2-test.json").write_text(json.dumps([{"id": "7"}]))
    return {}


register_dataset(
    "ssv2",
    description="Something-Something v2 (JSON labels, webm videos)",
    layout=SSV2_LAYOUT,
    reader=read_ssv2,
    fake_layout=make_ssv2,
    flip=False,
)
