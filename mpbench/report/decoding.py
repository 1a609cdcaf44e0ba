"""The report's check that the runs of one table had their frames made alike.

Each run tags its decoder, the FFmpeg libraries PyAV links, its short side and resize method,
and a digest of its first validation clips' frames (:mod:`mpbench.data.provenance`).
:func:`decoding_warnings` compares the finished runs of each dataset of a table: a difference
in any of those settings is a warning, and so is a digest that differs between runs decoded
with the same settings from the same files at the same clip geometry (another build of the
decoder, or files changed on disk; runs rendered in memory are compared only with runs of the
same data seed and options). Frames served by the decoded-clip cache count as decoded:
the cache changes no pixel, so cached and uncached runs are alike.
"""

from __future__ import annotations

from typing import Final

import pandas as pd

from mpbench import tracking as tk

# decode.<field> column -> its name in the warning
SETTINGS: Final = {
    "decode.decoder": "decoder",
    "decode.ffmpeg": "FFmpeg",
    "decode.short_side": "short side",
    "decode.resize": "resize",
}
DIGEST: Final = "decode.frames_digest"
FRAMES: Final = "decode.frames"  # where a run's frames came from: decoded, cache or rendered
RENDERED: Final = tk.FRAMES_RENDERED
# what fixes the clips a digest covers: the files, the clip geometry, the dataset options and,
# for clips rendered in memory, the data seed they are rendered from
SAME_CLIPS: Final = ("param.data_root", "param.frames", "param.sampling_rate")
OPTIONS: Final = "param.dataset_options"  # compared without the execution-only ones (cache)
NOT_RECORDED: Final = "not recorded"
SHOWN_RUNS: Final = 3


def decoding_warnings(runs: pd.DataFrame) -> list[str]:
    """One warning per dataset whose finished runs in ``runs`` were decoded differently."""
    ok = runs[runs["status"] == tk.STATUS_FINISHED]
    out = []
    for dataset, group in ok.groupby("dataset", sort=True):
        diffs = [_difference(group, column, name) for column, name in SETTINGS.items()]
        diffs = [d for d in diffs if d] or _digest_differences(group)
        if diffs:
            out.append(
                f"the {len(group)} finished runs of dataset {dataset} in this table were decoded "
                f"differently: {'; '.join(diffs)}. Their numbers are not comparable as they "
                "stand: run them again with one decoder, FFmpeg, short side and resize (each "
                f"run's {tk.A_PROVENANCE} artifact holds the whole record)"
            )
    return out


def _values(group: pd.DataFrame, column: str) -> pd.Series:
    """The column's values as text, ``not recorded`` where a run has none."""
    if column not in group:
        return pd.Series(NOT_RECORDED, index=group.index)
    return group[column].map(lambda v: NOT_RECORDED if v is None or pd.isna(v) else str(v))


def _difference(group: pd.DataFrame, column: str, name: str) -> str | None:
    """``<name> A (runs) vs B (runs)`` when the runs of ``group`` differ in ``column``."""
    values = _values(group, column)
    if values.nunique() < 2:
        return None
    parts = [f"{v} ({_named(group[values == v])})" for v in sorted(values.unique())]
    return f"{name} " + " vs ".join(parts)


def _digest_differences(group: pd.DataFrame) -> list[str]:
    """Digests that differ between runs of the same files, settings and clip geometry."""
    keys = [_values(group, c) for c in SAME_CLIPS] + [_options(group), _rendered_from(group)]
    out = []
    for _, same in group.groupby(keys, sort=True):
        found = _difference(same, DIGEST, "the same settings but other pixels: frames digest")
        if found and _values(same, DIGEST).ne(NOT_RECORDED).all():
            out.append(found)
    return out


def _options(group: pd.DataFrame) -> pd.Series:
    """The dataset options as canonical JSON, without those that change no pixel (the cache)."""
    from mpbench.study.pairing import semantic_options_text

    return _values(group, OPTIONS).map(semantic_options_text)


def _rendered_from(group: pd.DataFrame) -> pd.Series:
    """The data seed of runs whose frames were rendered in memory (another seed, other clips),
    one value for runs that decoded files (their clips do not depend on it)."""
    seed = _values(group, "param.data_seed").replace("None", NOT_RECORDED)
    seed = seed.where(seed != NOT_RECORDED, _values(group, "param.seed"))
    rendered = _values(group, FRAMES) == RENDERED
    return seed.where(rendered, "files")


def _named(rows: pd.DataFrame) -> str:
    """``2 runs: baseline seed 0, learnable seed 0`` (the first few)."""
    names = [f"{v} seed {s}" for v, s in zip(rows["variant"], rows["seed"], strict=True)]
    more = f", {len(names) - SHOWN_RUNS} more" if len(names) > SHOWN_RUNS else ""
    return f"{len(names)} run{'s' * (len(names) > 1)}: " + ", ".join(names[:SHOWN_RUNS]) + more


README_START: Final = "<!-- mpbench report: decoding -->"
README_END: Final = "<!-- /mpbench report: decoding -->"


def readme_section(text: str, warnings: list[str]) -> str:
    """``text`` (a results README) with its decoding section replaced by ``warnings`` (removed
    when there are none)."""
    head, _, rest = text.partition(README_START)
    _, found, tail = rest.partition(README_END)
    body = head.rstrip("\n") + "\n" + (tail.lstrip("\n") if found else rest)
    if not warnings:
        return body
    lines = ["## Decoding warnings (`mpbench report`)", "", *(f"- Warning: {w}." for w in warnings)]
    return body.rstrip("\n") + "\n\n" + "\n".join([README_START, *lines, README_END]) + "\n"
